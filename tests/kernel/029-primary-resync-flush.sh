#!/bin/bash
# A resync copy is in sync only once a remote flush issued after it has
# succeeded. The secondary stays idle, so its colo-ingress passes the
# copies straight to the disk, through nbd-server's page cache (periodic
# writeback off): every copy is acknowledged, and the secondary disk fails
# before any reaches it. The flush that ends the resync (nbd-server's
# fsync) then fails: colo-primary must not go to replicating, but to
# degraded with remote_flush and no region in sync. Over the repaired disk
# a new secondary and a plain resync copy every region again; then the
# primary's disk and the secondary disk are identical.
# Fails with copy_done() setting its region in sync at once (run on
# deb612): 64/64 in sync after the failed flush (result 6), so the resync
# copies nothing again (8) and the secondary disk is not the primary's
# (9).
# matrix: secondary disk fails under resync copies nbd-server acknowledged from its page cache -> no region in sync, degraded remote_flush, a resync copies them all again
# deb61 on scsi_debug with parallel vCPUs, and the debug kernel (6.12
# with memory and lock checks).
# kernels: deb61 debug
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

MiB=$((1 << 20))
writeback_save
pair_test /tmp/prs- /dev/nbd0 /dev/nbd1

fields() { colo_fields pri "$@"; }
# idle_secondary: S and S-in over the disk, not started (the ingress passes
# writes to the disk), S-in exported.
idle_secondary() {
	secondary_setup $FDISK $SBUF 128 sec &&
	nbd_serve sec /dev/mapper/sec-in "$PAIR_ADDR_SEC" "$PAIR_PORT" col-sec
}

disk_setup 3 32
fdisk_setup
random_file /tmp/prs-image $((32 * MiB))
write_direct $LOCAL 0 /tmp/prs-image

ktap_plan 9
bed_up() {
	pair_net && idle_secondary && pair_connect sec /dev/nbd0 &&
	pair_primary pri $LOCAL /dev/nbd0
}
ktap_check "two-node bed, the secondary idle" bed_up
ktap_check "periodic writeback off" writeback_off
ktap_check "the secondary disk fails" fdisk_table error
ktap_check "start full: syncing" dmsetup message pri 0 start full
ktap_check "the resync ends degraded: its flush failed" colo_wait_state pri degraded 120
echo "# primary: $(dmsetup status pri)"
ktap_check "remote_flush, all 64 regions copied, none in sync" \
	test "$(fields 3 4 10)" = "0/64 64 remote_flush"

# A new port for the new server (ktap_check runs its command in a subshell:
# the variable changes here).
PAIR_PORT=$((PAIR_PORT + 1))
new_secondary() {
	nbd_kill sec && nbd_stop sec && secondary_teardown sec &&
	fdisk_table "linear /dev/testdisk1 0" && writeback_restore &&
	idle_secondary
}
ktap_check "a new secondary over the repaired disk" new_secondary
resynced() { pair_reconnect pri sec /dev/nbd0 /dev/nbd1 && colo_wait_state pri replicating 300; }
ktap_check "reconnect on /dev/nbd1, resync: replicating, 64/64, all 64 copied again" \
	eval 'resynced && test "$(fields 3 4)" = "64/64 64"'
synced() {
	timeout 120 dmsetup message pri 0 checkpoint &&
	same_bytes $FDISK 0 /tmp/prs-image && same_bytes $LOCAL 0 /tmp/prs-image
}
ktap_check "a checkpoint: the secondary disk is the primary's, byte for byte" synced
ktap_finish
