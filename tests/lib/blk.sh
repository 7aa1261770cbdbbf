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

# write_direct DEV OFFSET FILE: write FILE at byte OFFSET; OFFSET and the
# size of FILE are multiples of 512. Up to 1 MiB per request.
write_direct() {
	dd if="$3" of="$1" bs=1M seek="$2" oflag=direct,seek_bytes \
		conv=notrunc,nocreat,fsync status=none
}

# write_odirect DEV OFFSET FILE: FILE at byte OFFSET in one O_DIRECT write
# (bs = FILE's size: FILE up to a few MiB, a multiple of 512), no fsync.
# write_direct is not that for a FILE under 1 MiB: GNU dd clears O_DIRECT
# for a last block shorter than bs, so such a write goes through the page
# cache and reaches the device at writeback (in page-sized bios) or at the
# fsync, and a failed write shows only as a failed fsync.
write_odirect() {
	dd if="$3" of="$1" bs="$(stat -c %s "$3")" seek="$2" oflag=direct,seek_bytes \
		conv=notrunc,nocreat status=none
}

# read_direct DEV OFFSET BYTES > FILE
read_direct() {
	dd if="$1" bs=1M skip="$2" count="$3" iflag=direct,skip_bytes,count_bytes status=none
}

# same_bytes DEV OFFSET FILE: the device holds FILE's bytes at OFFSET.
same_bytes() {
	local got
	got=$(mktemp)
	read_direct "$1" "$2" "$(stat -c %s "$3")" > "$got" &&
		cmp "$got" "$3"
	local rc=$?
	rm -f "$got"
	return $rc
}

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
