#!/bin/bash
# The primary's own disk fails (PRIMARY_ERR_LOCAL_IO): colo-primary over a
# local disk whose table has a dm-error hole. A write into the hole while
# replicating is forwarded (the remote acknowledges it) but fails locally:
# the writer gets EIO, in async and in sync mode; the device degrades with
# error local_io and an event; the write's region is out of sync (the
# disks may differ there: dm-colo.rst, the dirty log), every other region
# stays in sync; nothing stays in flight; the checkpoint is refused (EIO)
# at once; writes elsewhere go on, to the local disk alone. After the
# repair a resync copies exactly the logged regions and the three disks are
# identical after a two-node checkpoint; the device is removed cleanly.
# matrix: local disk write error (dm-error under local_dev) while replicating, async and sync -> EIO to the writer, degraded local_io with an event, its region out of sync, nothing in flight; resync after repair, three identical disks
# Not on the debug kernel: the local error path is a few lines of
# io_finish(), at a cost CI cannot pay there; not on deb61: the same
# code on every disk.
# kernels: deb612
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

MiB=$((1 << 20)) RG=$((512 << 10))
LDISK=/dev/mapper/ldisk
HOLE=$((10 * MiB / 512))	# sectors [HOLE, HOLE + 128) fail: in region 20
PAIR_UNDER=ldisk
pair_test /tmp/pli-

fields() { colo_fields pri "$@"; }
# ldisk_table good|hole: the local disk, whole, or with its error hole.
ldisk_table() {
	local t="0 65536 linear /dev/testdisk0 0"
	[ "$1" = good ] || t="0 $HOLE linear /dev/testdisk0 0
$HOLE 128 error
$((HOLE + 128)) $((65536 - HOLE - 128)) linear /dev/testdisk0 $((HOLE + 128))"
	dmsetup suspend ldisk && dmsetup load ldisk <<< "$t" && dmsetup resume ldisk
}

disk_setup 3 32
dmsetup create ldisk --table "0 65536 linear /dev/testdisk0 0"
random_file /tmp/pli-a $MiB
random_file /tmp/pli-b 65536
random_file /tmp/pli-c 65536
random_file /tmp/pli-d 65536

ktap_plan 21
bed_up() {
	pair_setup pri $LDISK sec $SDISK $SBUF /dev/nbd0 nosync &&
	pair_start 30
}
ktap_check "two-node bed over ldisk (linear over testdisk0), replicating" bed_up
ktap_check "a write, two-node checkpoint, three disks identical" \
	eval 'write_direct_dev $P $((4 * MiB)) /tmp/pli-a && two_node_checkpoint pri sec &&
		three_way_same $LDISK $SDISK $S'
ktap_check "ldisk gets an error hole at 10 MiB (64 KiB)" ldisk_table hole

# failing_write MODE: one O_DIRECT write of 64 KiB into the hole fails with
# EIO, at once (not a hang), and degrades the device with an event.
failing_write() {
	local ev out rc
	ev=$(dm_events pri)
	out=$(timeout 60 dd if=/tmp/pli-b of=$P bs=64K seek=$((10 * MiB)) oflag=direct,seek_bytes \
		conv=notrunc,nocreat status=none 2>&1)
	rc=$?
	echo "# $1: the write into the hole: exit $rc: $out"
	echo "# $1: $(dmsetup status pri | cut -d' ' -f4-)"
	if [ $rc = 1 ] && grep -q "Input/output error" <<< "$out"; then
		ktap_ok "$1: the writer gets EIO"
	else
		ktap_fail "$1: the writer gets EIO" "exit $rc: $out"
	fi
	ktap_check "$1: degraded, error local_io, with an event" \
		eval 'test "$(fields 1 10)" = "degraded local_io" && colo_event_after pri '"$ev"' 5'
	ktap_check "$1: its region (20) alone out of sync; nothing in flight" \
		test "$(fields 3 6 7)" = "63/64 0 0"
	ktap_check "$1: checkpoint refused at once (EIO)" \
		must_fail_quickly 10 dmsetup message pri 0 checkpoint
}
failing_write async
ktap_check "the secondary disk got the forwarded write (the remote acknowledged it)" \
	pair_remote_has sec $((10 * MiB)) /tmp/pli-b
ktap_check "degraded: a write elsewhere succeeds (local disk alone), still degraded" \
	eval 'write_odirect $P $((30 * RG)) /tmp/pli-c && test "$(fields 1 3)" = "degraded 62/64"'
ktap_check "the local disk has it" same_bytes /dev/testdisk0 $((30 * RG)) /tmp/pli-c

# --- repair, resync, then the same in sync mode
repair_resync() {
	ldisk_table good && write_odirect $P $((10 * MiB)) /tmp/pli-b &&
	dmsetup message pri 0 resync && colo_wait_state pri replicating 60 &&
	test "$(fields 4 3)" = "2 64/64"
}
ktap_check "repaired; the write again; resync copies the 2 logged regions" repair_resync
ktap_check "two-node checkpoint, three disks identical" \
	eval 'two_node_checkpoint pri sec && three_way_same $LDISK $SDISK $S'
to_sync() {
	dmsetup load pri --table "$(dmsetup table pri | sed 's/ 1 nosync$/ 3 mode sync nosync/')" &&
	dmsetup suspend pri && dmsetup resume pri && test "$(fields 1 2)" = "replicating sync"
}
ktap_check "reload in sync mode: still replicating" to_sync
ktap_check "the error hole again" ldisk_table hole
failing_write sync
ktap_check "repaired; the write again; resync: replicating" \
	eval 'ldisk_table good && write_odirect $P $((10 * MiB)) /tmp/pli-d &&
		dmsetup message pri 0 resync && colo_wait_state pri replicating 60'
ktap_check "two-node checkpoint, three disks identical" \
	eval 'two_node_checkpoint pri sec && three_way_same $LDISK $SDISK $S'
ktap_check "colo-primary removed; ldisk released" \
	eval 'dmsetup remove pri && test -z "$(ls -A /sys/block/$(basename $(readlink -f $LDISK))/holders)"'
ktap_finish
