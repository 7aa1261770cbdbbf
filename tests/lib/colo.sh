# shellcheck shell=bash
# Helpers for the dm-colo targets in the VM tests.

# fill_file FILE BYTES BYTEVALUE (octal, e.g. 021 for 0x11)
fill_file() { head -c "$2" /dev/zero | tr '\0' "\\$3" > "$1"; }

# colo_status NAME FIELD: one field (1-based) of `dmsetup status` after the
# target name.
colo_status() { dmsetup status "$1" | awk -v f="$2" '{ print $(3 + f) }'; }

# secondary_setup DISK BUFFER CHUNK_SECTORS NAME: NAME (colo-secondary over
# the whole DISK) and NAME-in (colo-ingress).
secondary_setup() {
	local size
	size=$(blockdev --getsz "$1")
	dmsetup create "$4" --table "0 $size colo-secondary $1 $2 $3" &&
	dmsetup create "$4-in" --table "0 $size colo-ingress $1"
}

secondary_teardown() { dm_remove "$1-in" "$1"; }

# must_fail CMD...: succeeds when CMD fails.
must_fail() { ! "$@" > /dev/null 2>&1; }
