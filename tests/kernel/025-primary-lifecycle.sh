#!/bin/bash
# colo-primary across suspend/resume and table reloads: TABLE status
# reproduces the constructor line (options in canonical order); a reload
# with the same table keeps the dirty log and the state; a reload with a new
# remote degrades with an event until `resync`; stop and start raise
# events. `dmsetup remove` while forwards are in flight to a slow remote
# (dm-delay under the secondary disk, nbd-server writing through) waits
# for them and succeeds (the remote has every forwarded write), loses
# nothing on the local disk, releases the NBD device, and the local disk
# takes a new colo-primary at once.
# matrix: suspend/resume, reload, a new remote, dmsetup remove with forwards in flight -> dirty log and state kept, degraded until resync, remove loses nothing local
# Only on the debug kernel (6.12 with memory and lock checks): lifecycle
# steps one after another; 043 does them under I/O on deb61.
# kernels: debug
# timeout: 900
. "$(dirname "$0")/../lib/vm-test.sh"

export NBD_EXPORT_EXTRA="sync = true"
export NBD_TIMEOUT=60
MiB=$((1 << 20)) RG=$((512 << 10))
PAIR_UNDER=slowdisk
pair_test /tmp/plc- /dev/nbd0 /dev/nbd1 /dev/nbd2

fields() { colo_fields pri "$@"; }
info() { dmsetup status pri | cut -d' ' -f4-; }
slow() {
	dmsetup suspend slowdisk && dmsetup load slowdisk --table "0 65536 delay $SDISK 0 $1" &&
	dmsetup resume slowdisk
}
reload_same() { dmsetup load pri --table "$(dmsetup table pri)" && dmsetup suspend pri && dmsetup resume pri; }
dev_of() { cat "/sys/block/$(disk_name "$1")/dev"; }

disk_setup 3 32
dmsetup create slowdisk --table "0 65536 delay $SDISK 0 0"
for f in a:$MiB b:4096 c:65536 d:$MiB e:65536; do
	random_file "/tmp/plc-${f%%:*}" "${f#*:}"
done

ktap_plan 34
ktap_check "two-node bed; options given as 'nosync mode async'" \
	pair_setup pri $LOCAL sec /dev/mapper/slowdisk $SBUF /dev/nbd0 nosync mode async
ktap_check "TABLE: the constructor line, options in canonical order" \
	test "$(dmsetup table pri | cut -d' ' -f3-)" = "colo-primary $(dev_of $LOCAL) $(dev_of /dev/nbd0) 3 mode async nosync"

# --- the dirty log survives suspend/resume and a reload
idle_writes() { write_direct_dev $P $((5 * RG)) /tmp/plc-a && write_direct_dev $P $((20 * RG + 8192)) /tmp/plc-b; }
ktap_check "idle: writes into 3 regions" idle_writes
ktap_check "61/64 in sync" test "$(fields 1 3)" = "idle 61/64"
before=$(info)
suspend_resume() { dmsetup suspend pri && dmsetup resume pri; }
ktap_check "suspend and resume" suspend_resume
ktap_check "status unchanged" test "$(info)" = "$before"
ktap_check "reload the same table" reload_same
ktap_check "status unchanged after the reload (idle, 61/64)" test "$(info)" = "$before"
idle_data() { same_bytes $P $((5 * RG)) /tmp/plc-a && same_bytes $P $((20 * RG + 8192)) /tmp/plc-b; }
ktap_check "data unchanged" idle_data
start_copy3() { pair_start 60 && test "$(fields 4 3)" = "3 64/64"; }
ktap_check "start copies the 3 logged regions; replicating" start_copy3
replicating_kept() {
	suspend_resume && [ "$(colo_status pri 1)" = replicating ] &&
	reload_same && [ "$(colo_status pri 1)" = replicating ]
}
ktap_check "suspend/resume and a reload while replicating keep it replicating" replicating_kept
checkpoint_same() {
	write_direct_dev $P "$1" "$2" && two_node_checkpoint pri sec && three_way_same $LOCAL $SDISK $S
}
ktap_check "a write, two-node checkpoint, three disks identical" checkpoint_same $((30 * RG)) /tmp/plc-c

# --- events on state changes
ev=$(dm_events pri)
stop_event() { dmsetup message pri 0 stop && colo_event_after pri "$ev" 5; }
ktap_check "stop: idle, with an event" stop_event
ktap_check "idle" test "$(colo_status pri 1)" = idle
ev=$(dm_events pri)
start_again() { pair_start 10 && colo_event_after pri "$ev" 5; }
ktap_check "start (nothing logged): replicating at once, with an event" start_again

# --- a new remote: degraded until resync
ktap_check "a second NBD connection to the export: /dev/nbd1" pair_connect sec /dev/nbd1
ev=$(dm_events pri)
new_remote() {
	dmsetup load pri --table "$(dmsetup table pri | awk '{ $5 = "/dev/nbd1"; print }')" &&
	dmsetup suspend pri && dmsetup resume pri &&
	[ "$(colo_status pri 1)" = degraded ] && colo_event_after pri "$ev" 5
}
ktap_check "reload with the new remote: degraded, with an event" new_remote
echo "# after the remote changed: $(info)"
ktap_check "last error: remote_changed" test "$(colo_status pri 10)" = remote_changed
resync_none() {
	dmsetup message pri 0 resync && colo_wait_state pri replicating 60 && test "$(colo_status pri 4)" = 0
}
ktap_check "resync: replicating, nothing copied (nothing was written)" resync_none
nbd_disconnect /dev/nbd0
ktap_check "a write, two-node checkpoint, three disks identical" checkpoint_same $((40 * RG)) /tmp/plc-e

# --- remove while forwards are in flight to a slow remote: 1.5 s a write
# there, so that they are still in flight when dd has returned and the
# status is read, even on the debug kernel (200 ms left none there once
# the forwards were submitted apart from the local writes)
slow 1500
ktap_check "16 writes of 64 KiB (async: they return with the local writes)" \
	timeout 60 "$COLO_DIO" write $P $((10 * MiB)) /tmp/plc-d --max-io $((64 << 10))
inflight=$(fields 6 7)
echo "# in flight when the remove starts: $inflight"
ktap_check "forwards in flight when the remove starts" test "${inflight%% *}" -gt 0
t0=$(date +%s)
out=$(timeout 120 dmsetup remove pri 2>&1)
rc=$?
echo "# dmsetup remove: exit $rc after $(($(date +%s) - t0)) s${out:+: $out}"
# Nobody holds the device open, so dm may not refuse the remove: it
# succeeds once the forwards are done (postsuspend waits for them). A
# refusal, a timeout, or a device still there is the wrong outcome.
if [ $rc -eq 0 ] && ! dmsetup info pri > /dev/null 2>&1; then
	ktap_ok "remove with forwards in flight succeeds"
else
	ktap_fail "remove with forwards in flight succeeds" "exit $rc: $out; $(info 2>&1)"
	dm_remove pri
fi
ktap_check "... after the forwards it waited for: the remote has the 1 MiB" \
	pair_remote_has sec $((10 * MiB)) /tmp/plc-d
ktap_check "the primary is gone" must_fail dmsetup info pri
ktap_check "the local disk holds the 1 MiB written" same_bytes $LOCAL $((10 * MiB)) /tmp/plc-d
released() {
	local h
	h="$(ls -A /sys/block/nbd1/holders)$(ls -A /sys/block/$(disk_name /dev/testdisk0)/holders)"
	[ -z "$h" ] || { echo "holders left: $h"; return 1; }
	nbd-client -d /dev/nbd1
}
ktap_check "the NBD device and the local disk are released (no holder; nbd-client -d)" released
slow 0
ktap_check "the secondary is still running" test "$(colo_status sec 1)" = running

# --- the local disk takes a new colo-primary, every option given
ktap_check "a new NBD connection: /dev/nbd2" pair_connect sec /dev/nbd2
ktap_check "a new colo-primary on the same local disk" \
	pair_primary pri $LOCAL /dev/nbd2 region_sectors 2048 max_inflight_kb 1024 mode sync
ktap_check "TABLE: every option in canonical order" \
	test "$(dmsetup table pri | cut -d' ' -f3-)" = "colo-primary $(dev_of $LOCAL) $(dev_of /dev/nbd2) 6 mode sync max_inflight_kb 1024 region_sectors 2048"
ktap_check "a new log: idle, 0/32 in sync" test "$(fields 1 2 3)" = "idle sync 0/32"
start_all() { pair_start 300 && test "$(fields 4 3)" = "32 32/32"; }
ktap_check "start copies all 32 regions" start_all
checkpoint_only_same() { two_node_checkpoint pri sec && three_way_same $LOCAL $SDISK $S; }
ktap_check "two-node checkpoint, three disks identical" checkpoint_only_same
ktap_finish
