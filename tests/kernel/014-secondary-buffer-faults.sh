#!/bin/bash
# A full buffer and a failing buffer device (dm-flakey under buffer_dev):
# the primary write that cannot save its chunk fails with EIO and never
# reaches the disk, the secondary goes `broken` and refuses checkpoint, and
# failover still returns the disk to the last checkpoint plus the
# secondary's writes, byte for byte.
# matrix: buffer full (a small buffer) -> the primary write that cannot save its chunk fails with EIO and never reaches the disk; broken; failover gives the checkpoint plus the secondary's writes
# matrix: buffer device I/O errors (dm-flakey) -> the same
# Only on deb612: buffer accounting, the same code on every disk and
# CPU; 018, 046 and 047 fill and grow the buffer on the debug kernel.
# kernels: deb612
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

C=$((64 * 1024)) CS=128 SLOTS=16
S=/dev/mapper/bf IN=/dev/mapper/bf-in
vm_test_on_exit /tmp/bf- bf-in bf cbuf

model_write() { dd if="$3" of="$1" bs=512 seek=$(($2 / 512)) conv=notrunc status=none; }
buffer_up() { dmsetup suspend --nolockfs cbuf && dmsetup load cbuf --table "0 $((SLOTS * CS)) flakey /dev/testdisk1 0 3600 0" && dmsetup resume cbuf; }
buffer_down() { dmsetup suspend --nolockfs cbuf && dmsetup load cbuf --table "0 $((SLOTS * CS)) flakey /dev/testdisk1 0 0 3600" && dmsetup resume cbuf; }
wait_standalone() {
	for _ in $(seq 100); do [ "$(colo_status bf 1)" = standalone ] && return 0; sleep 0.1; done
	return 1
}
# fresh: random disk image, a buffer of SLOTS chunks, replication started.
fresh() {
	dm_remove bf-in bf cbuf
	random_file /tmp/bf-initial $((64 * C))
	write_direct /dev/testdisk0 0 /tmp/bf-initial && cp /tmp/bf-initial /tmp/bf-view &&
	dmsetup create cbuf --table "0 $((SLOTS * CS)) flakey /dev/testdisk1 0 3600 0" &&
	secondary_setup /dev/testdisk0 /dev/mapper/cbuf $CS bf && dmsetup message bf 0 start
}

disk_setup 2 32
random_file /tmp/bf-p $C
random_file /tmp/bf-q 4096

ktap_plan 18
# --- buffer full
ktap_check "start with a buffer of $SLOTS chunks" fresh
fill() { local i; for i in $(seq 0 $((SLOTS - 1))); do write_direct $IN $((i * C)) /tmp/bf-p || return 1; done; }
ktap_check "primary writes fill all $SLOTS slots" fill
ktap_check "the next primary write to a new chunk fails" must_fail write_direct $IN $((40 * C)) /tmp/bf-p
dd if=/tmp/bf-initial of=/tmp/bf-c40 bs=$C skip=40 count=1 status=none
ktap_check "and never reached the disk" same_bytes /dev/testdisk0 $((40 * C)) /tmp/bf-c40
ktap_check "state broken, error buffer_full" test "$(colo_status bf 1) $(colo_status bf 7)" = "broken buffer_full"
ktap_check "primary writes to saved chunks still pass" write_direct $IN $((3 * C + 4096)) /tmp/bf-q
ktap_check "secondary write to a buffered chunk works" \
	bash -c "$(declare -f write_direct); write_direct $S $((2 * C)) /tmp/bf-q"
model_write /tmp/bf-view $((2 * C)) /tmp/bf-q
ktap_check "secondary write to an unbuffered chunk fails (no slot)" must_fail write_direct $S $((50 * C)) /tmp/bf-q
ktap_check "checkpoint refused while broken" must_fail dmsetup message bf 0 checkpoint
ktap_check "failover from broken" bash -c "dmsetup message bf 0 failover && $(declare -f wait_standalone colo_status); wait_standalone"
ktap_check "disk = checkpoint image + secondary writes" same_bytes /dev/testdisk0 0 /tmp/bf-view

# --- the buffer device fails
ktap_check "start again over a fresh image" fresh
write_direct $IN 0 /tmp/bf-p
buffer_down
ktap_check "primary write whose chunk cannot be saved fails" must_fail write_direct $IN $((7 * C)) /tmp/bf-p
ktap_check "state broken, error copy_failed" test "$(colo_status bf 1) $(colo_status bf 7)" = "broken copy_failed"
ktap_check "secondary read of a buffered chunk fails while the buffer is down" must_fail read_direct $S 0 4096
buffer_up
dd if=/tmp/bf-initial of=/tmp/bf-c0 bs=$C count=1 status=none
ktap_check "after the buffer is back the secondary reads the saved original" \
	same_bytes $S 0 /tmp/bf-c0
ktap_check "failover" bash -c "dmsetup message bf 0 failover && $(declare -f wait_standalone colo_status); wait_standalone"
ktap_check "disk = checkpoint image (primary writes rolled back, failed one never landed)" \
	same_bytes /dev/testdisk0 0 /tmp/bf-initial
ktap_finish
