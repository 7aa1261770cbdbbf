#!/bin/bash
# Lifecycle operations while O_DIRECT writes run, on the two-node bed of
# tests/lib/colo.sh (async mode). Two colo-overlap writers record what they
# wrote and check every sector at the end: W1 on the primary (forwarded
# through NBD to colo-ingress), W2 on colo-secondary (the secondary VM's
# own writes, into the buffer; it ends before the first checkpoint, which
# drops them by design). While both run:
#  - `rmmod dm_colo` fails (in use) and changes nothing (module refcount,
#    tables, states);
#  - 3 suspend/resume cycles of colo-secondary, colo-ingress and
#    colo-primary, then a reload of each with its own table: all succeed,
#    tables and states unchanged;
#  - `dmsetup remove` of colo-ingress while nbd-server has it open fails
#    with EBUSY and changes nothing.
# W2 then ends: every sector exact. With W1 paused (SIGSTOP: the VM paused)
# a two-node checkpoint gives three identical disks byte for byte.
# `dmsetup remove --force` of the open colo-ingress (dm replaces its table
# with `error`) under W1: the primary never fails a write of its VM, its
# next checkpoint fails and it is degraded; nbd-server killed, the ingress
# removed (closed now) and created again, served again, the primary
# reconnected with `resync full` (nbd-server may have acknowledged writes
# that its page cache could then not write, as in a secondary crash):
# replicating, all regions copied, a checkpoint gives three identical disks.
# W1 ends: every sector exact; a last checkpoint, three identical disks.
# With all I/O stopped everything is removed and `rmmod dm_colo` succeeds;
# the module is loaded again (also when the test fails half-way).
# Only on deb61 (parallel vCPUs): on 6.12, 046 and 047 take its
# I/O-under-lifecycle paths on the debug kernel, 015 and 025 its
# suspend, resume and reload.
# kernels: deb61
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

export NBD_TIMEOUT=60
MiB=$((1 << 20))
w1="" w2=""
stop_writer() {	# stop_writer PID: end it (cleanup)
	[ -n "$1" ] || return 0
	kill -CONT "$1" 2>/dev/null
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
test_stop() {
	stop_writer "$w1"
	stop_writer "$w2"
	grep -q '^dm_colo ' /proc/modules || insmod "$DMCOLO_MODULE"
}
pair_test /tmp/flu- /dev/nbd0 /dev/nbd1

# paused_checkpoint: W1 paused, two-node checkpoint, three identical disks,
# W1 goes on.
paused_checkpoint() {
	local rc=0
	kill -STOP "$w1" && threads_stopped "$w1" || return 1
	two_node_checkpoint pri sec && three_way_same $LOCAL $SDISK $S || rc=1
	kill -CONT "$w1"
	return $rc
}
# writer_done NAME PID LOG: end the writer with SIGUSR1; ok when its exact
# check passes (not through ktap_check: wait needs the parent shell).
writer_done() {
	if kill -USR1 "$2" && wait "$2"; then ktap_ok "$1"; else ktap_fail "$1" "$(cat "$3")"; fi
	sed 's/^/# /' "$3"
}
snapshot() {	# tables, states and the module's refcount, in one text
	dmsetup table | sort
	echo "$(colo_status pri 1) $(colo_status sec 1) $(colo_status sec-in 1)"
	awk '$1 == "dm_colo" { print "refcount " $3 }' /proc/modules
}

disk_setup 3 16

ktap_plan 24
bed_up() {
	pair_setup pri $LOCAL sec $SDISK $SBUF /dev/nbd0 nosync &&
	pair_start 60
}
ktap_check "two-node bed, replicating" bed_up
"$OVERLAP" --dev $P --offset 0 --area $((4 * MiB)) --threads "$(colo_load 2 1)" --writes 100000000 \
	--min 4096 --max 131072 --seed 43 > /tmp/flu-w1.log 2>&1 &
w1=$!
"$OVERLAP" --dev $S --offset $((8 * MiB)) --area $((2 * MiB)) --threads 1 --writes 100000000 \
	--min 512 --max 65536 --seed 44 > /tmp/flu-w2.log 2>&1 &
w2=$!
sleep 2
before=$(snapshot)
echo "# before: $(echo "$before" | tail -n 2 | tr '\n' ' ')"
rmmod_refused() {
	local out
	if out=$(rmmod dm_colo 2>&1); then echo "rmmod succeeded"; return 1; fi
	case $out in *"in use"*) ;; *) echo "rmmod: $out"; return 1 ;; esac
}
ktap_check "rmmod dm_colo fails: in use" rmmod_refused
ktap_check "and changed nothing (tables, states, module refcount)" test "$(snapshot)" = "$before"
cycles() {
	local d
	for _ in 1 2 3; do
		for d in sec sec-in pri; do
			dmsetup suspend $d || { echo "suspend $d failed"; return 1; }
			dmsetup resume $d || { echo "resume $d failed"; return 1; }
		done
	done
}
ktap_check "3 suspend/resume cycles of colo-secondary, colo-ingress, colo-primary" cycles
ktap_check "tables and states unchanged" test "$(snapshot)" = "$before"
reloads() {
	local d
	for d in sec sec-in pri; do
		if ! { dmsetup load $d --table "$(dmsetup table $d)" && dmsetup suspend $d &&
		       dmsetup resume $d; }; then
			echo "reload of $d failed"
			return 1
		fi
	done
}
ktap_check "a reload of each with its own table" reloads
ktap_check "tables and states unchanged" test "$(snapshot)" = "$before"
remove_busy() {
	local out
	if out=$(dmsetup remove sec-in 2>&1); then echo "removed"; return 1; fi
	case $out in *"busy"*) ;; *) echo "dmsetup remove: $out"; return 1 ;; esac
	dmsetup info sec-in > /dev/null
}
ktap_check "dmsetup remove of colo-ingress, open by nbd-server: EBUSY" remove_busy
ktap_check "nothing changed" test "$(snapshot)" = "$before"
writer_done "W2 (secondary writes) ends: every sector exact" "$w2" /tmp/flu-w2.log
w2=""
ktap_check "W1 paused: two-node checkpoint, three identical disks" paused_checkpoint
ktap_check "W1 runs again: still replicating" test "$(colo_status pri 1)" = replicating

# --- remove --force of the open ingress
sleep 1
out=$(dmsetup remove --force sec-in 2>&1)
rc=$?
echo "dmsetup remove --force sec-in: exit $rc: $out" | sed 's/^/# /'
echo "# sec-in: $(dmsetup table sec-in 2>&1)"
forced() { dmsetup info sec-in > /dev/null 2>&1 && test "$(dmsetup table sec-in | cut -d' ' -f3)" = error; }
ktap_check "remove --force of the open colo-ingress: refused, its table is now error" forced
failed_checkpoint() {
	local rc=0
	kill -STOP "$w1" && threads_stopped "$w1" || return 1
	must_fail_quickly 120 dmsetup message pri 0 checkpoint || rc=1
	kill -CONT "$w1"
	return $rc
}
ktap_check "the primary's next checkpoint fails" failed_checkpoint
echo "# primary: $(dmsetup status pri | cut -d' ' -f4-)"
ktap_check "the primary is degraded" test "$(colo_status pri 1)" = degraded
new_ingress() {
	nbd_kill sec && nbd_stop sec && dmsetup remove sec-in &&
	dmsetup create sec-in --table "0 $(blockdev --getsz $SDISK) colo-ingress $SDISK" &&
	PAIR_PORT=$((PAIR_PORT + 1)) &&
	nbd_serve sec /dev/mapper/sec-in "$PAIR_ADDR_SEC" "$PAIR_PORT" col-sec &&
	pair_connect sec /dev/nbd1
}
ktap_check "nbd-server killed; the ingress, closed now, removed and created again; served; /dev/nbd1" new_ingress
resync_full() {
	dmsetup load pri --table "$(dmsetup table pri | awk '{ $5 = "/dev/nbd1"; print }')" &&
	dmsetup suspend pri && dmsetup resume pri &&
	dmsetup message pri 0 resync full && colo_wait_state pri replicating 300 &&
	nbd_disconnect /dev/nbd0
}
ktap_check "the primary over /dev/nbd1, resync full: replicating" resync_full
ktap_check "all 32 regions copied" test "$(colo_fields pri 3 4)" = "32/32 32"
ktap_check "W1 paused: two-node checkpoint, three identical disks" paused_checkpoint
writer_done "W1 (primary writes) ends: every sector exact" "$w1" /tmp/flu-w1.log
w1=""
final() { two_node_checkpoint pri sec && three_way_same $LOCAL $SDISK $S; }
ktap_check "a last checkpoint, three identical disks" final

# --- all I/O stopped
remove_all() {
	dmsetup remove pri && nbd_disconnect /dev/nbd1 && nbd_kill sec && nbd_stop sec &&
	dmsetup remove sec-in && dmsetup remove sec
}
ktap_check "primary removed, NBD down; colo-ingress (closed) and colo-secondary removed" remove_all
ktap_check "rmmod dm_colo succeeds" rmmod dm_colo
reload_module() { insmod "$DMCOLO_MODULE" && dmsetup targets | grep -q '^colo-secondary '; }
ktap_check "insmod: loaded again" reload_module
ktap_finish
