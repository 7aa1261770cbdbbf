#!/bin/bash
# Failover while the secondary hammers a few buffered chunks, with a slow
# buffer device (dm-delay, 20 ms) so secondary I/O is in flight whenever
# the merge reaches those chunks: the merge must still finish (a busy chunk
# is held, drained, then copied) while the load still runs, reads and
# writes stay exact throughout, and the disk ends as the secondary view.
# matrix: failover merge under secondary I/O, slow buffer device (dm-delay) -> the merge finishes, every read exact, disk = secondary view
# Not on the debug kernel: 017 and 046 take the merge paths there;
# deb61 runs the hot merge with its vCPUs in parallel.
# kernels: deb61 deb612
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

SIZE=$((4 << 20))
S=/dev/mapper/hot
test_stop() { load_stop /tmp/hot-stop; }
vm_test_on_exit /tmp/hot- hot slowbuf

disk_setup 2 32
random_file /tmp/hot-initial $SIZE
random_file /tmp/hot-view $SIZE
write_direct /dev/testdisk0 0 /tmp/hot-initial
dmsetup create slowbuf --table "0 65536 delay /dev/testdisk1 0 20"
dmsetup create hot --table "0 $((SIZE / 512)) colo-secondary /dev/testdisk0 /dev/mapper/slowbuf 128"
dmsetup message hot 0 start

ktap_plan 7
ktap_check "the secondary rewrites every chunk" write_direct $S 0 /tmp/hot-view
# The load runs until /tmp/hot-stop exists (touched once the merge is over
# and checked): it cannot end before the failover, however fast the
# machine. /tmp/hot-progress counts its operations.
rm -f /tmp/hot-stop
"$DMCOLO_TOP/build/tests/colo-stress" --disk /dev/testdisk0 --secondary $S --no-ingress \
	--hot $((256 << 10)) --size $SIZE --initial /tmp/hot-view --view-model /tmp/hot-view \
	--ops 100 --until /tmp/hot-stop --progress /tmp/hot-progress --seed 5 \
	--out-disk /tmp/hot-unused --out-view /tmp/hot-final > /tmp/hot-load.log 2>&1 &
load=$!
progress() { local n; n=$(od -An -tu8 /tmp/hot-progress 2> /dev/null | tr -d ' '); echo "${n:-0}"; }
for _ in $(seq 100); do [ "$(progress)" -gt 20 ] && break; sleep 0.1; done
ops_before=$(progress)
ktap_check "failover while 4 chunks are hot" dmsetup message hot 0 failover
ops_failover=$(progress)
wait_standalone() {
	for _ in $(seq 300); do [ "$(colo_status hot 1)" = standalone ] && return 0; sleep 0.2; done
	dmsetup status hot; return 1
}
ktap_check "the merge finishes under the load" wait_standalone
ops_merged=$(progress)
alive=no
kill -0 $load 2> /dev/null && alive=yes
echo "# load: $ops_before operations before the failover, $ops_failover after it, $ops_merged when standalone; running then: $alive"
ran_through() {
	[ "$ops_before" -gt 0 ] || { echo "the load had not started at the failover"; return 1; }
	[ $alive = yes ] || { echo "the load had ended when the merge did"; return 1; }
	[ "$ops_merged" -gt "$ops_failover" ] || { echo "no operation during the merge"; return 1; }
}
ktap_check "the load ran all through the merge" ran_through
touch /tmp/hot-stop
ktap_wait "reads and writes exact during the merge" $load /tmp/hot-load.log
ktap_check "all 64 chunks merged" test "$(colo_status hot 4)" = "64/64"
ktap_check "the disk is the secondary view" same_bytes /dev/testdisk0 0 /tmp/hot-final
ktap_finish
