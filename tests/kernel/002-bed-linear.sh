#!/bin/bash
# dm-linear over a ramdisk round-trips a random pattern, byte for byte,
# through the dm device and directly on the ramdisk.
# timeout: 120
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../lib/blk.sh"

cleanup() { dm_remove bed-linear; disk_teardown; rm -f /tmp/bed-pat; }
trap cleanup EXIT

ktap_plan 4
disk_setup 1 64
ktap_check "create linear" dmsetup create bed-linear --table \
	"0 $((32 * 2048)) linear /dev/testdisk0 $((16 * 2048))"
random_file /tmp/bed-pat $((4 << 20))
ktap_check "write 4 MiB at 8 MiB" write_direct /dev/mapper/bed-linear $((8 << 20)) /tmp/bed-pat
ktap_check "read back through dm" same_bytes /dev/mapper/bed-linear $((8 << 20)) /tmp/bed-pat
ktap_check "bytes on the ramdisk at +16 MiB" same_bytes /dev/testdisk0 $((24 << 20)) /tmp/bed-pat
ktap_finish
