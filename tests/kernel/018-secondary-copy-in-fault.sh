#!/bin/bash
# A copy-in that a secondary write starts fails: the buffer device (a
# dm-linear slice that becomes dm-error) fails the copy of the chunk's
# disk content into its new slot. As for a failing disk read (042): the
# partial secondary write fails with EIO, at once; the secondary is broken
# (copy_failed: a node whose buffer fails is no failover target to
# checkpoint); nothing is committed (buffered count unchanged) and the
# secondary view still reads the chunk's old content; primary writes to
# saved chunks pass. A failed fill gives its slot back: 40 more failures
# (the buffer has 31 free slots) leave room. With the buffer back, the same
# write succeeds, and a failover gives the disk the secondary view.
# Fails on the old code, which stayed running (seen in every earlier run).
# Fails with the slot not released (copy_in_done() without
# colo_buffer_release(), run on deb612): the write after the repair finds
# the buffer full (EIO, result 11), and the failover does not report 2/2
# merged (12).
# matrix: buffer device fails under the copy-in of a partial secondary write -> EIO to the writer, broken, copy_failed, nothing buffered, view unchanged, the slot reused; after repair the write works and failover gives disk = view
# Only on the debug kernel (6.12 with memory and lock checks): injected
# copy-in faults (dm-error), the same on every disk.
# kernels: debug
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

C=$((64 * 1024)) CS=128 SLOTS=32
S=/dev/mapper/cif IN=/dev/mapper/cif-in
vm_test_on_exit /tmp/cif- cif-in cif cifbuf

model_write() { dd if="$3" of="$1" bs=512 seek=$(($2 / 512)) conv=notrunc status=none; }
# buffer_table linear|error
buffer_table() {
	local t="0 $((SLOTS * CS)) linear /dev/testdisk1 0"
	[ "$1" = linear ] || t="0 $((SLOTS * CS)) error"
	dmsetup suspend --nolockfs cifbuf && dmsetup load cifbuf --table "$t" &&
		dmsetup resume cifbuf
}

disk_setup 2 16
random_file /tmp/cif-initial $((64 * C))
random_file /tmp/cif-a 4096
random_file /tmp/cif-b 8192
random_file /tmp/cif-p 4096
write_direct /dev/testdisk0 0 /tmp/cif-initial
cp /tmp/cif-initial /tmp/cif-view
dmsetup create cifbuf --table "0 $((SLOTS * CS)) linear /dev/testdisk1 0"

ktap_plan 13
ktap_check "colo-secondary, 64 KiB chunks, running" \
	secondary_start /dev/testdisk0 /dev/mapper/cifbuf $CS cif $((64 * CS))
ktap_check "a partial secondary write buffers chunk 1" \
	eval 'write_odirect $S $((C + 4096)) /tmp/cif-a && model_write /tmp/cif-view $((C + 4096)) /tmp/cif-a'
ktap_check "the buffer device fails (dm-error)" buffer_table error
ktap_check "a partial secondary write to unbuffered chunk 3: EIO at once" \
	must_fail_quickly 60 write_odirect $S $((3 * C + 8192)) /tmp/cif-b
echo "# after the failed copy-in: $(dmsetup status cif | cut -d' ' -f4-)"
ktap_check "broken, error copy_failed, 1 chunk buffered" \
	test "$(colo_fields cif 1 3 7)" = "broken 1/$SLOTS copy_failed"
more_failures() {
	local _
	for _ in $(seq 40); do
		must_fail write_odirect $S $((3 * C + 8192)) /tmp/cif-b || { echo "a write succeeded"; return 1; }
	done
	test "$(colo_fields cif 1 3 7)" = "broken 1/$SLOTS copy_failed"
}
ktap_check "40 more failed copy-ins: still 1 chunk buffered, copy_failed (not buffer_full)" more_failures
ktap_check "the disk never saw it" same_bytes /dev/testdisk0 0 /tmp/cif-initial
ktap_check "a primary write to chunk 1 (saved) passes" write_odirect $IN $((C + 32768)) /tmp/cif-p
ktap_check "the buffer device is back" buffer_table linear
ktap_check "the secondary view reads chunk 3 unchanged, chunk 1 with its write" \
	same_bytes $S 0 /tmp/cif-view
ktap_check "the same write now succeeds; the view has it" \
	eval 'write_odirect $S $((3 * C + 8192)) /tmp/cif-b && model_write /tmp/cif-view $((3 * C + 8192)) /tmp/cif-b &&
		same_bytes $S 0 /tmp/cif-view'
ktap_check "failover: standalone, 2/2 merged" \
	eval 'dmsetup message cif 0 failover && colo_wait_state cif standalone 60 &&
		test "$(colo_status cif 4)" = 2/2'
ktap_check "the disk is the secondary view" same_bytes /dev/testdisk0 0 /tmp/cif-view
ktap_finish
