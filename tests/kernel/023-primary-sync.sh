#!/bin/bash
# The initial sync: a local disk full of random data, a secondary disk
# full of other data; `start` copies every region (the last one partial:
# the target ends 64 KiB before the disks do, and nothing past its end is
# touched), with and without writes racing the copy; then `nosync` over
# identical disks goes straight to replicating with nothing copied. Exact
# compares of the three disks after each two-node checkpoint.
# Not on the debug kernel: 029 copies every region there, twice, and
# 022 and 046 start the pair.
# kernels: deb61 deb612
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

MiB=$((1 << 20))
DISK=$((32 * MiB)) LEN=$((32 * MiB - 65536))	# bytes: the disks, the target
NR=16	# regions of 4096 sectors (2 MiB): 15 whole, the last 64 KiB short
pair_test /tmp/psy-

fields() { colo_fields pri "$@"; }
# primary OPTION...: colo-primary over the first LEN bytes.
primary() { dmsetup create pri --table "0 $((LEN / 512)) colo-primary $LOCAL $NBD $# $*"; }
# tail_is DEV FILE: the 64 KiB past the target's end hold FILE's last 64 KiB.
tail_is() {
	tail -c 65536 "$2" > /tmp/psy-tail
	same_bytes "$1" $LEN /tmp/psy-tail
}
head_is() {
	head -c $LEN "$2" > /tmp/psy-head
	same_bytes "$1" 0 /tmp/psy-head
}

disk_setup 3 32
random_file /tmp/psy-local $DISK
random_file /tmp/psy-remote $DISK
write_direct $LOCAL 0 /tmp/psy-local
write_direct $SDISK 0 /tmp/psy-remote

ktap_plan 31
bed() { pair_net && pair_secondary sec $SDISK $SBUF && pair_connect sec $NBD; }
ktap_check "two-node bed (no colo-primary yet)" bed
ktap_check "colo-primary over $((LEN / 512)) sectors, region_sectors 4096" primary region_sectors 4096
ktap_check "idle, 0/$NR regions in sync (a new log without nosync)" test "$(fields 1 3)" = "idle 0/$NR"
ev=$(dm_events pri)
ktap_check "start" dmsetup message pri 0 start
ktap_check "syncing, then replicating" colo_wait_state pri replicating 300
ktap_check "all $NR regions copied, $NR/$NR in sync" test "$(fields 4 3)" = "$NR $NR/$NR"
ktap_check "events for idle->syncing and syncing->replicating" test "$(dm_events pri)" -ge $((ev + 2))
ktap_check "nothing was forwarded (no writes), no error" test "$(fields 5 9 10)" = "0 0 -"
ktap_check "two-node checkpoint" two_node_checkpoint pri sec
ktap_check "primary disk = secondary disk = secondary view (the target's length)" \
	three_way_same $LOCAL $SDISK $S $LEN
ktap_check "which is the local image" head_is $SDISK /tmp/psy-local
ktap_check "past the target's end the secondary disk is untouched" tail_is $SDISK /tmp/psy-remote
ktap_check "and the local disk too" tail_is $LOCAL /tmp/psy-local

# A whole new image written while stopped, then a sync that races writes.
ktap_check "stop" dmsetup message pri 0 stop
random_file /tmp/psy-new $LEN
ktap_check "stopped: a new image over the whole target" write_direct_dev $P 0 /tmp/psy-new
ktap_check "0/$NR in sync" test "$(fields 1 3)" = "idle 0/$NR"
# The writer runs before, during and after the whole sync: SIGUSR1 ends it
# (then it checks every sector) once replicating.
"$OVERLAP" --dev $P --offset $((8 * MiB)) --area $((2 * MiB)) --threads 4 --writes 100000000 \
	--seconds 900 > /tmp/psy-overlap.log 2>&1 &
load=$!
sleep 1
ktap_check "start while overlapping writes run" dmsetup message pri 0 start
ktap_check "replicating" colo_wait_state pri replicating 300
ktap_check "the writes ran through the whole sync" kill -0 $load
sleep 1
kill -USR1 $load
ktap_wait "overlapping writes across the sync, every sector exact" $load /tmp/psy-overlap.log
sed 's/^/# /' /tmp/psy-overlap.log
ktap_check "every region copied at least once" test "$(colo_status pri 4)" -ge $NR
echo "# regions copied: $(colo_status pri 4)"
ktap_check "two-node checkpoint" two_node_checkpoint pri sec
ktap_check "primary disk = secondary disk = secondary view" three_way_same $LOCAL $SDISK $S $LEN

# nosync over identical disks.
dm_remove pri
ktap_check "colo-primary with nosync over the identical disks" primary region_sectors 4096 nosync
ktap_check "idle, $NR/$NR in sync" test "$(fields 1 3)" = "idle $NR/$NR"
nosync_start() { pair_start 10 && test "$(colo_status pri 4)" = 0; }
ktap_check "start: replicating at once, 0 regions copied" nosync_start
random_file /tmp/psy-w $((3 * MiB))
ktap_check "a 3 MiB write across two regions" write_direct_dev $P $((3 * MiB)) /tmp/psy-w
checkpoint_same() { two_node_checkpoint pri sec && three_way_same $LOCAL $SDISK $S $LEN; }
ktap_check "two-node checkpoint, three disks identical" checkpoint_same

# start full: a new secondary disk; the log knows nothing of it.
full_start() {
	dmsetup message pri 0 stop && dmsetup message pri 0 start full &&
	colo_wait_state pri replicating 300
}
ktap_check "stop, then start full" full_start
ktap_check "start full copied all $NR regions" test "$(fields 3 4)" = "$NR/$NR $NR"
ktap_check "two-node checkpoint, three disks identical after start full" checkpoint_same
ktap_finish
