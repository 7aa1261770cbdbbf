#!/bin/bash
# Suspend/resume and a table reload keep the buffer, the state and the
# epoch; TABLE status reproduces the constructor line; `dmsetup remove` while
# running drops the buffer cleanly (the disk keeps the primary's writes)
# and the disk can take a new colo-secondary at once.
# matrix: suspend/resume, table reload, dmsetup remove of a running colo-secondary -> buffer, state and epoch kept; remove drops the buffer, the disk keeps the primary's writes
# Only on the debug kernel (6.12 with memory and lock checks): lifecycle
# steps one after another; 043 and 047 do them under I/O.
# kernels: debug
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

C=$((64 * 1024))
S=/dev/mapper/lc IN=/dev/mapper/lc-in
vm_test_on_exit /tmp/lc- lc-in lc
model_write() { dd if="$3" of="$1" bs=512 seek=$(($2 / 512)) conv=notrunc status=none; }

disk_setup 2 32
random_file /tmp/lc-initial $((64 * C))
random_file /tmp/lc-p $((2 * C))
random_file /tmp/lc-q 8192
write_direct /dev/testdisk0 0 /tmp/lc-initial
cp /tmp/lc-initial /tmp/lc-view; cp /tmp/lc-initial /tmp/lc-disk
model_write /tmp/lc-view 4096 /tmp/lc-p
model_write /tmp/lc-disk $((5 * C + 512)) /tmp/lc-q

ktap_plan 16
ktap_check "create and start" bash -c "$(declare -f secondary_setup); secondary_setup /dev/testdisk0 /dev/testdisk1 128 lc && dmsetup message lc 0 start"
ktap_check "TABLE status reproduces the constructor line" \
	test "$(dmsetup table lc | cut -d' ' -f3-)" = "colo-secondary $(cat /sys/block/$(disk_name /dev/testdisk0)/dev) $(cat /sys/block/$(disk_name /dev/testdisk1)/dev) 128"
ktap_check "ingress TABLE status" test "$(dmsetup table lc-in | cut -d' ' -f3-)" = "colo-ingress $(cat /sys/block/$(disk_name /dev/testdisk0)/dev)"
write_direct $S 4096 /tmp/lc-p
write_direct $IN $((5 * C + 512)) /tmp/lc-q
before=$(dmsetup status lc | cut -d' ' -f4-)
ktap_check "status before: running, 4 chunks buffered" test "$(colo_status lc 1) $(colo_status lc 3)" = "running 4/512"
ktap_check "suspend and resume" bash -c "dmsetup suspend lc && dmsetup resume lc"
ktap_check "status unchanged" test "$(dmsetup status lc | cut -d' ' -f4-)" = "$before"
ktap_check "view unchanged" same_bytes $S 0 /tmp/lc-view
ktap_check "reload the same table" bash -c "dmsetup load lc --table \"$(dmsetup table lc)\" && dmsetup suspend lc && dmsetup resume lc"
ktap_check "status unchanged after reload" test "$(dmsetup status lc | cut -d' ' -f4-)" = "$before"
ktap_check "view unchanged after reload" same_bytes $S 0 /tmp/lc-view
ktap_check "checkpoint after reload" dmsetup message lc 0 checkpoint
ktap_check "epoch 1, view = disk" bash -c "[ \"\$(dmsetup status lc | cut -d' ' -f5)\" = 1 ] && $(declare -f same_bytes read_direct); same_bytes $S 0 /tmp/lc-disk"
# remove while running, with buffered chunks
write_direct $S $((9 * C)) /tmp/lc-q
write_direct $IN $((20 * C)) /tmp/lc-q
model_write /tmp/lc-disk $((20 * C)) /tmp/lc-q
ktap_check "remove both devices while running" bash -c "dmsetup remove lc-in && dmsetup remove lc"
ktap_check "the disk keeps the primary's writes only" same_bytes /dev/testdisk0 0 /tmp/lc-disk
ktap_check "the disk takes a new colo-secondary" bash -c "$(declare -f secondary_setup); secondary_setup /dev/testdisk0 /dev/testdisk1 64 lc"
ktap_check "which starts idle at epoch 0" test "$(colo_status lc 1) $(colo_status lc 2)" = "idle 0"
ktap_finish
