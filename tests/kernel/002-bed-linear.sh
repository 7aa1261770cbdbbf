#!/bin/bash
# dm-linear over a ramdisk round-trips a random pattern, byte for byte,
# through the dm device and directly on the ramdisk. The tests' O_DIRECT
# helper (colo-dio) is direct: a 512-byte write is one 1-sector write on
# the device and no read (the dm device's I/O counters; brd keeps none),
# where a buffered write reads the page and writes 8 sectors.
# Not on the debug kernel: no dm-colo code runs here.
# kernels: deb61 deb612
# timeout: 120
. "$(dirname "$0")/../lib/vm-test.sh"

vm_test_on_exit /tmp/bed- bed-linear

ktap_plan 6
disk_setup 1 64
ktap_check "create linear" dmsetup create bed-linear --table \
	"0 $((32 * 2048)) linear /dev/testdisk0 $((16 * 2048))"
random_file /tmp/bed-pat $((4 << 20))
ktap_check "write 4 MiB at 8 MiB" write_direct /dev/mapper/bed-linear $((8 << 20)) /tmp/bed-pat
ktap_check "read back through dm" same_bytes /dev/mapper/bed-linear $((8 << 20)) /tmp/bed-pat
ktap_check "bytes on the ramdisk at +16 MiB" same_bytes /dev/testdisk0 $((24 << 20)) /tmp/bed-pat

# io_counts DEV: reads, sectors read, writes, sectors written (sysfs stat).
io_counts() {
	awk '{ print $1, $3, $5, $7 }' "/sys/dev/block/$((0x$(stat -c %t "$1"))):$((0x$(stat -c %T "$1")))/stat"
}
# one_sector DEV OFFSET HELPER WRITES: a 512-byte write with HELPER at
# OFFSET adds WRITES writes ("1", or "1|2": an fsync's empty flush may be
# counted as a write), exactly 1 sector written, no read; it lands there.
one_sector() {
	local b a
	random_file /tmp/bed-one 512
	read -ra b <<< "$(io_counts "$1")" && "$3" "$1" "$2" /tmp/bed-one &&
		read -ra a <<< "$(io_counts "$1")" || return 1
	echo "# $3 of 512 B: $1 reads, sectors read, writes, sectors written: ${b[*]} -> ${a[*]}"
	[ "${a[0]}" = "${b[0]}" ] && [ "${a[1]}" = "${b[1]}" ] &&
		[[ $((a[2] - b[2])) =~ ^($4)$ ]] && [ "${a[3]}" = $((b[3] + 1)) ] &&
		same_bytes "$1" "$2" /tmp/bed-one
}
dio_write() { "$COLO_DIO" write "$@"; }
ktap_check "512 B O_DIRECT write at an odd sector: one 1-sector write, no read" \
	one_sector /dev/mapper/bed-linear $(((8 << 20) + 3 * 512)) dio_write 1
ktap_check "512 B write_direct (O_DIRECT, fsync): 1 sector written, no read" \
	one_sector /dev/mapper/bed-linear $(((9 << 20) + 512)) write_direct '1|2'
ktap_finish
