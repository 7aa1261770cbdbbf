#!/bin/bash
# Primary writers (colo-ingress), secondary writers and secondary readers on
# the same chunks at once, from several processes with O_DIRECT
# (build/tests/colo-stress). Exact compares of the disk and the secondary
# view against the model after each epoch, after a checkpoint, and after a
# failover whose merge runs under secondary load with reads verified.
# Not on the debug kernel: a stress of the secondary's paths; deb61
# runs it with its vCPUs in parallel.
# kernels: deb61 deb612
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

STRESS=$DMCOLO_TOP/build/tests/colo-stress
SIZE=$((16 << 20)) SECTORS=$((16 << 11))
S=/dev/mapper/cc IN=/dev/mapper/cc-in
OPS=${COLO_STRESS_OPS:-1500}
test_stop() { load_stop /tmp/cc-stop; }
vm_test_on_exit /tmp/cc- cc-in cc

disk_setup 2 32
random_file /tmp/cc-initial $SIZE
write_direct /dev/testdisk0 0 /tmp/cc-initial
secondary_start /dev/testdisk0 /dev/testdisk1 128 cc $SECTORS

stress() {
	"$STRESS" --disk /dev/testdisk0 --secondary $S --size $SIZE --ops "$OPS" "$@"
}

ktap_plan 9
ktap_check "epoch 1: 2 primary + 2 secondary writers + 2 readers, disk and view exact" \
	stress --ingress $IN --initial /tmp/cc-initial --seed 1 \
		--out-disk /tmp/cc-disk1 --out-view /tmp/cc-view1
ktap_check "checkpoint" dmsetup message cc 0 checkpoint
ktap_check "after checkpoint the secondary view is the disk image" same_bytes $S 0 /tmp/cc-disk1
ktap_check "epoch 2: same load, disk and view exact" \
	stress --ingress $IN --initial /tmp/cc-disk1 --seed 2 \
		--out-disk /tmp/cc-disk2 --out-view /tmp/cc-view2

# Failover while the secondary keeps writing and reading: the load goes on
# until the merge has ended (/tmp/cc-stop), so the merge surely runs under it.
rm -f /tmp/cc-stop
stress --no-ingress --hot $((256 << 10)) --initial /tmp/cc-disk1 --view-model /tmp/cc-view2 --seed 3 \
	--ops $((OPS * 4)) --until /tmp/cc-stop --out-disk /tmp/cc-unused --out-view /tmp/cc-view3 \
	> /tmp/cc-load.log 2>&1 &
load=$!
sleep 0.3
ktap_check "failover under secondary load" dmsetup message cc 0 failover
ktap_check "the load was still running after the failover message" kill -0 $load
wait_standalone() {
	for _ in $(seq 300); do
		[ "$(colo_status cc 1)" = standalone ] && return 0
		sleep 0.1
	done
	dmsetup status cc; return 1
}
ktap_check "merge ends in standalone" wait_standalone
touch /tmp/cc-stop
ktap_wait "secondary reads and writes exact during the merge" $load /tmp/cc-load.log
ktap_check "the disk is the secondary view: last checkpoint + secondary writes" \
	same_bytes /dev/testdisk0 0 /tmp/cc-view3
ktap_finish
