#!/bin/bash
# Failover while the secondary hammers a few buffered chunks, with a slow
# buffer device (dm-delay, 20 ms) so secondary I/O is in flight whenever
# the merge reaches those chunks: the merge must still finish (a busy chunk
# is held, drained, then copied), reads and writes stay exact throughout,
# and the disk ends as the secondary view.
# matrix: failover merge under secondary I/O, slow buffer device (dm-delay) -> the merge finishes, every read exact, disk = secondary view
# timeout: 300
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../lib/blk.sh"
. "$(dirname "$0")/../lib/colo.sh"

SIZE=$((4 << 20))
S=/dev/mapper/hot
cleanup() { dm_remove hot slowbuf; disk_teardown; rm -f /tmp/hot-*; }
trap cleanup EXIT

disk_setup 2 32
random_file /tmp/hot-initial $SIZE
random_file /tmp/hot-view $SIZE
write_direct /dev/testdisk0 0 /tmp/hot-initial
dmsetup create slowbuf --table "0 65536 delay /dev/testdisk1 0 20"
dmsetup create hot --table "0 $((SIZE / 512)) colo-secondary /dev/testdisk0 /dev/mapper/slowbuf 128"
dmsetup message hot 0 start

ktap_plan 6
ktap_check "the secondary rewrites every chunk" write_direct $S 0 /tmp/hot-view
"$DMCOLO_TOP/build/tests/colo-stress" --disk /dev/testdisk0 --secondary $S --no-ingress \
	--hot $((256 << 10)) --size $SIZE --initial /tmp/hot-view --view-model /tmp/hot-view \
	--ops 300 --seed 5 --out-disk /tmp/hot-unused --out-view /tmp/hot-final \
	> /tmp/hot-load.log 2>&1 &
load=$!
sleep 1
ktap_check "failover while 4 chunks are hot" dmsetup message hot 0 failover
wait_standalone() {
	for _ in $(seq 300); do [ "$(colo_status hot 1)" = standalone ] && return 0; sleep 0.2; done
	dmsetup status hot; return 1
}
ktap_check "the merge finishes under the load" wait_standalone
wait $load
rc=$?
if [ $rc -eq 0 ]; then ktap_ok "reads and writes exact during the merge"
else ktap_fail "reads and writes exact during the merge" "$(cat /tmp/hot-load.log)"; fi
ktap_check "all 64 chunks merged" test "$(colo_status hot 4)" = "64/64"
ktap_check "the disk is the secondary view" same_bytes /dev/testdisk0 0 /tmp/hot-final
ktap_finish
