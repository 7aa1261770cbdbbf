#!/bin/bash
# The page-cache trap, end to end: the secondary disk fails, then
# nbd-server acknowledges a forwarded write from its page cache (periodic
# writeback is off), so the write never reaches the disk and the
# checkpoint's flush (nbd-server's fsync) fails.
# colo-primary must not call that a checkpoint: EIO, degraded with
# remote_flush, and out of sync exactly the regions the remote acknowledged
# since its last good flush (the write's two; its flush generation). A new
# secondary, the remote reconnected, and a plain resync copies those two;
# then the three disks are identical.
# The module before flush generations, run, marks every region (0/64)
# and fails the exact-regions check.
# matrix: secondary disk fails under writes nbd-server acknowledged from its page cache -> checkpoint fails with EIO, degraded remote_flush, the regions acknowledged since the last good flush out of sync, a resync of those restores identity
# Not on the debug kernel: 029 takes the failed generation flush there.
# kernels: deb61 deb612
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

MiB=$((1 << 20))
writeback_save
pair_test /tmp/pff- /dev/nbd0 /dev/nbd1

fields() { colo_fields pri "$@"; }

disk_setup 3 32
fdisk_setup
random_file /tmp/pff-a $MiB

ktap_plan 11
bed_up() {
	pair_setup pri $LOCAL sec $FDISK $SBUF /dev/nbd0 nosync &&
	pair_start 30
}
ktap_check "two-node bed, replicating" bed_up
ktap_check "periodic writeback off" writeback_off
# The disk fails first: were it still good, the page cache might write the
# acknowledged write back to it before the checkpoint (a new device's dirty
# share is small; seen in 2 of 4 runs), and nothing would be lost.
ktap_check "the secondary disk fails" fdisk_table error
ktap_check "async: a 1 MiB write returns (nbd-server holds it in its page cache)" \
	pwrite_direct $P $((4 * MiB)) /tmp/pff-a
acked() {
	for _ in $(seq 100); do
		[ "$(fields 6)" = 0 ] && return 0
		sleep 0.1
	done
	echo "still in flight: $(dmsetup status pri)"
	return 1
}
ktap_check "the remote acknowledged it" acked
ktap_check "the checkpoint fails: the remote flush cannot write it" \
	must_fail_quickly 120 dmsetup message pri 0 checkpoint
# remote_flush when the whole write waited in the page cache for the
# flush; remote_io when the page cache wrote part of it back early (to the
# failed disk) and nbd-server failed a later part of the write.
lost_two() {
	case $(fields 1 3 10) in
	"degraded 62/64 remote_flush" | "degraded 62/64 remote_io") return 0 ;;
	*) dmsetup status pri; return 1 ;;
	esac
}
ktap_check "degraded (remote_flush or remote_io), the write's 2 regions out of sync" lost_two

# A new secondary over the repaired disk, a new NBD connection.
new_secondary() {
	nbd_kill sec && nbd_stop sec && secondary_teardown sec && fdisk_table "linear /dev/testdisk1 0" &&
	pair_secondary sec $FDISK $SBUF
}
ktap_check "a new secondary over the repaired disk" new_secondary
resynced() { pair_reconnect pri sec /dev/nbd0 /dev/nbd1 && colo_wait_state pri replicating 300; }
ktap_check "reconnect on /dev/nbd1, resync: replicating" resynced
ktap_check "the resync copied those 2 regions" test "$(fields 3 4)" = "64/64 2"
checkpoint_same() { two_node_checkpoint pri sec && three_way_same $LOCAL $FDISK $S; }
ktap_check "two-node checkpoint, three disks identical" checkpoint_same
ktap_finish
