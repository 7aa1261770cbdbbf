# shellcheck shell=bash
# Block device helpers for the VM tests. Every data check compares exact
# bytes: patterns are random data kept in files, devices are read back with
# O_DIRECT (no page cache between the device and the check).

SECTOR=512

# brd_setup COUNT SIZE_MB: COUNT ramdisks /dev/ram0.. of SIZE_MB each.
brd_setup() {
	modprobe brd rd_nr="$1" rd_size=$(($2 * 1024)) max_part=0
}

brd_teardown() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rmmod brd 2>/dev/null && return 0
		sleep 0.2
	done
	rmmod brd
}

# random_file FILE BYTES
random_file() { head -c "$2" /dev/urandom > "$1"; }

# colo-dio (tests/tools/colo-dio.c): O_DIRECT at exact offsets and
# lengths, one pwrite/pread per request, DEV never created. Exported for
# the helpers' copies in `bash -c "$(declare -f ...)"`.
COLO_DIO=${COLO_DIO:-${DMCOLO_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/build/tests/colo-dio}
export COLO_DIO

# write_direct DEV OFFSET FILE: write FILE at byte OFFSET with O_DIRECT,
# then fsync (a flush); OFFSET and the size of FILE are multiples of 512.
# Up to 1 MiB per request: a FILE of 512 bytes is one 512-byte write.
write_direct() { "$COLO_DIO" write "$1" "$2" "$3" --fsync; }

# write_odirect DEV OFFSET FILE: FILE at byte OFFSET in one O_DIRECT write
# (one request of FILE's size: FILE up to a few MiB, a multiple of 512), no
# fsync: a failed write fails here, not at a later flush.
write_odirect() {
	local n
	n=$(stat -c %s "$3") || return 1
	"$COLO_DIO" write "$1" "$2" "$3" --max-io "$((n > 0 ? n : 512))"
}

# read_direct DEV OFFSET BYTES > FILE: O_DIRECT, 1 MiB per request; fails
# when the device ends before OFFSET + BYTES.
read_direct() { "$COLO_DIO" read "$1" "$2" "$3"; }

# same_bytes DEV OFFSET FILE: the device holds FILE's bytes at OFFSET (read
# with O_DIRECT; the first difference is printed).
same_bytes() { "$COLO_DIO" cmp "$1" "$2" "$3"; }

# dm_remove NAME...: remove devices that exist, retrying while udev-less
# openers (blkid, a just-closed dd) let go.
dm_remove() {
	local d i
	for d in "$@"; do
		dmsetup info "$d" > /dev/null 2>&1 || continue
		for i in 1 2 3 4 5 6 7 8 9 10; do
			dmsetup remove "$d" 2>/dev/null && break
			sleep 0.2
		done
		dmsetup info "$d" > /dev/null 2>&1 && dmsetup remove "$d"
	done
	return 0
}
