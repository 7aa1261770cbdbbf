#!/bin/bash
# QEMU's tests/unit/test-replication.c, secondary side, with exact byte
# compares: start, primary writes through colo-ingress, secondary writes,
# checkpoint, failover, and what is refused after failover.
# Only on the debug kernel (a 6.12 kernel with memory and lock checks):
# the secondary's data paths, which the model tests (050, 051) take on
# Only on deb612: the secondary's data paths, which every secondary
# test on the debug kernel takes, and the model tests (050, 051) on deb61
# with random data.
# kernels: deb612
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

MiB=$((1 << 20))
SIZE=$((16 * MiB)) HALF=$((8 * MiB))
S=/dev/mapper/rep IN=/dev/mapper/rep-in
vm_test_on_exit /tmp/rep- rep-in rep

disk_setup 2 32
fill_file /tmp/rep-11 $HALF 021
fill_file /tmp/rep-22 $HALF 042
fill_file /tmp/rep-33 $HALF 063

# Fresh disk full of 0x11, both targets, replication started.
fresh() {
	secondary_teardown rep
	write_direct /dev/testdisk0 0 /tmp/rep-11 && write_direct /dev/testdisk0 $HALF /tmp/rep-11 &&
	secondary_setup /dev/testdisk0 /dev/testdisk1 128 rep
}

ktap_plan 24
ktap_check "create secondary and ingress over a 0x11 disk" fresh
ktap_check "idle: secondary write fails" must_fail write_direct $S 0 /tmp/rep-33
ktap_check "idle: disk untouched by it" same_bytes /dev/testdisk0 0 /tmp/rep-11
ktap_check "idle: state" test "$(colo_status rep 1)" = idle
ktap_check "start" dmsetup message rep 0 start
ktap_check "secondary reads 0x11 (first half)" same_bytes $S 0 /tmp/rep-11
ktap_check "secondary reads 0x11 (second half)" same_bytes $S $HALF /tmp/rep-11
ktap_check "primary writes 0x22 to the second half" write_direct $IN $HALF /tmp/rep-22
ktap_check "secondary still reads 0x11 there" same_bytes $S $HALF /tmp/rep-11
ktap_check "the disk holds 0x22 there" same_bytes /dev/testdisk0 $HALF /tmp/rep-22
ktap_check "secondary writes 0x33 to the first half" write_direct $S 0 /tmp/rep-33
ktap_check "secondary reads 0x33 there" same_bytes $S 0 /tmp/rep-33
ktap_check "the disk still holds 0x11 there" same_bytes /dev/testdisk0 0 /tmp/rep-11
ktap_check "status: 256 of 512 chunks buffered, 128 copies, 128 secondary writes" \
	test "$(colo_status rep 3) $(colo_status rep 5) $(colo_status rep 6)" = "256/512 128 128"
ktap_check "checkpoint" dmsetup message rep 0 checkpoint
ktap_check "after checkpoint the secondary reads 0x22 in the second half" same_bytes $S $HALF /tmp/rep-22
ktap_check "after checkpoint the secondary reads the disk's 0x11 in the first half" same_bytes $S 0 /tmp/rep-11
ktap_check "epoch 1, buffer empty" test "$(colo_status rep 2) $(colo_status rep 3)" = "1 0/512"

# Failover before any checkpoint: primary writes are rolled back.
fresh
dmsetup message rep 0 start
write_direct $IN $HALF /tmp/rep-22
write_direct $S 0 /tmp/rep-33
# `dmsetup wait` must wake for the merge's end (an event after the message's).
events=$(dmsetup info -c --noheadings -o events rep)
ktap_check "failover" dmsetup message rep 0 failover
wait_standalone() {
	local e=$((events + 1))
	while [ "$(colo_status rep 1)" != standalone ]; do
		timeout 30 dmsetup wait rep $e > /dev/null || { dmsetup status rep; return 1; }
		e=$((e + 1))
	done
}
ktap_check "dmsetup wait wakes until the merge ends in standalone" wait_standalone
ktap_check "disk holds 0x33 in the first half" same_bytes /dev/testdisk0 0 /tmp/rep-33
ktap_check "disk holds 0x11 in the second half (primary write rolled back)" same_bytes /dev/testdisk0 $HALF /tmp/rep-11
ktap_check "after failover start and checkpoint are refused" \
	bash -c "! dmsetup message rep 0 start 2>/dev/null && ! dmsetup message rep 0 checkpoint 2>/dev/null"
ktap_check "after failover the ingress returns EIO" must_fail read_direct $IN 0 4096
ktap_finish
