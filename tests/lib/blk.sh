# shellcheck shell=bash
# Block device helpers for the VM tests. Every data check compares exact
# bytes: patterns are random data kept in files, devices are read back with
# O_DIRECT (no page cache between the device and the check).

SECTOR=512

# brd_setup COUNT SIZE_MB: COUNT ramdisks /dev/ram0.. of SIZE_MB each.
brd_setup() {
	modprobe brd rd_nr="$1" rd_size=$(($2 * 1024)) max_part=0
}

# rmmod_retry MODULE: unload MODULE, retrying for 2 s while udev-less
# openers (blkid, a just-closed dd) let go; the last try's error shows.
rmmod_retry() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		rmmod "$1" 2>/dev/null && return 0
		sleep 0.2
	done
	rmmod "$1"
}

brd_teardown() { rmmod_retry brd; }

# --- the test disks: /dev/testdisk0.. of the kind DMCOLO_DISKS names
#
#   brd     ramdisks: no write cache, so the block layer completes every
#           REQ_PREFLUSH and strips every REQ_FUA before the disk sees it;
#           no write-zeroes (blkdev_issue_zeroout writes zero pages)
#   sdebug  scsi_debug, one RAM store per disk (per_host_store): a
#           volatile write cache (SYNCHRONIZE CACHE reaches it, counted in
#           "flush I/Os"), FUA (scsi_debug always sets DPOFUA), discard
#           (UNMAP; unmapped blocks read as zeroes: lbprz) and
#           write-zeroes (WRITE SAME(16));
#           completions come from an hrtimer (ndelay), as a disk's
#           interrupt would, not from the submitter's context
#
# DMCOLO_DISKS names the kind: tests/vm/run sets it from the kernel's test
# bed (scripts/kernels: KDISKS), or from the caller's DMCOLO_DISKS. Tests
# name the disks only through these links, so one test runs on either
# kind unchanged; a test that needs one kind sets DMCOLO_DISKS itself.

disk_kind() { echo "${DMCOLO_DISKS:-brd}"; }

# disk_setup COUNT SIZE_MB: COUNT zeroed disks /dev/testdisk0.. of SIZE_MB.
disk_setup() {
	local n=$1 mb=$2 kind i dev
	kind=$(disk_kind)
	disk_teardown
	case $kind in
	brd)
		brd_setup "$n" "$mb" || return 1
		for i in $(seq 0 $((n - 1))); do ln -sf "/dev/ram$i" "/dev/testdisk$i"; done
		;;
	sdebug)
		# sd_mod: no udev here to load it when the SCSI disks appear.
		modprobe sd_mod 2>/dev/null
		# The write cache is on by default (WCE in its caching mode
		# page; there is no module parameter for it): 019 checks that
		# the disks say "write back".
		modprobe scsi_debug add_host="$n" per_host_store=1 dev_size_mb="$mb" \
			num_tgts=1 max_luns=1 lbpu=1 lbpws=1 lbprz=1 \
			delay=0 ndelay=20000 || return 1
		for i in $(seq 0 $((n - 1))); do
			dev=$(sdebug_disk "$i") || { echo "disk_setup: scsi_debug disk $i missing" >&2; return 1; }
			ln -sf "/dev/$dev" "/dev/testdisk$i"
		done
		;;
	*) echo "disk_setup: unknown DMCOLO_DISKS '$kind' (brd, sdebug)" >&2; return 1 ;;
	esac
}

# sdebug_disk I: the block device name of scsi_debug's I-th host (hosts
# appear in order; the disk node may take a moment without udev).
sdebug_disk() {
	local i=$1 host try d
	host=$(ls -d /sys/bus/pseudo/drivers/scsi_debug/adapter*/host* 2>/dev/null |
		sort -V | sed -n "$((i + 1))p")
	[ -n "$host" ] || return 1
	for try in $(seq 50); do
		for d in "$host"/target*/*/block/*; do
			[ -e "$d" ] && [ -b "/dev/${d##*/}" ] && { echo "${d##*/}"; return 0; }
		done
		sleep 0.1
	done
	return 1
}

disk_teardown() {
	rm -f /dev/testdisk[0-9]*
	[ ! -d /sys/module/brd ] || rmmod_retry brd
	[ ! -d /sys/module/scsi_debug ] || rmmod_retry scsi_debug
	return 0
}

# disk_name DEV: the kernel's name of DEV (testdisk0 -> ram0 or sdb), for
# /sys/block/NAME.
disk_name() { basename "$(readlink -f "$1")"; }

# disk_stat DEV FIELD: one field of /sys/block/NAME/stat, by its name in
# Documentation/block/stat.rst: read_ios write_ios write_sectors
# discard_ios discard_sectors flush_ios.
disk_stat() {
	local col
	case $2 in
	read_ios) col=1 ;; write_ios) col=5 ;; write_sectors) col=7 ;;
	discard_ios) col=12 ;; discard_sectors) col=14 ;; flush_ios) col=16 ;;
	*) echo "disk_stat: unknown field $2" >&2; return 1 ;;
	esac
	awk -v c=$col '{ print $c }' "/sys/block/$(disk_name "$1")/stat"
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

# dm_swap NAME TABLE: load TABLE into the live device NAME (suspended
# without freezing a file system, reloaded, resumed): a disk that starts or
# stops failing under its users.
dm_swap() {
	dmsetup suspend --nolockfs "$1" && dmsetup load "$1" --table "$2" && dmsetup resume "$1"
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
