#!/bin/bash
# I/O shapes through colo-primary while replicating, against a model of
# the disk: 512-byte writes at odd sectors, writes across region
# boundaries, a write bigger than a region (split by dm core), RWF_DSYNC
# (FUA) writes, fsync, write-zeroes, and a discard when the device offers
# one. In both modes, after a two-node checkpoint the local disk is the
# model and the secondary disk and view are the local disk, byte for byte.
# Then over an export without TRIM: the device still offers discard (the
# local disk can), a discard stays local without degrading, and the
# secondary disk keeps exactly its old bytes there. Fails with
# dispatch_waiting() forwarding such a discard (degraded, remote_io), and
# without discards_supported set in primary_ctr() (the device offers no
# discard).
# Not on the debug kernel: the forwarding paths with other bio kinds, at
# a cost CI cannot pay there.
# kernels: deb61 deb612
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

K=1024 MiB=$((1 << 20)) RG=$((64 << 10))	# region_sectors 128: 512 regions
SIZE=$((32 * MiB))
MODEL=/tmp/pio-model
pair_test /tmp/pio-

model_write() { dd if="$3" of="$1" bs=512 seek=$(($2 / 512)) conv=notrunc status=none; }
# pw OFFSET BYTES [fua]: random data to P and to the model: O_DIRECT, one
# request per MiB, no fsync (pwrite_direct); with fua each request is a FUA
# write (RWF_DSYNC, pwrite_direct_fua).
pw() {
	random_file /tmp/pio-p "$2"
	pwrite_direct${3:+_$3} $P "$1" /tmp/pio-p && model_write $MODEL "$1" /tmp/pio-p
}
pz() {
	head -c "$2" /dev/zero > /tmp/pio-z
	blkdiscard -z -o "$1" -l "$2" $P && model_write $MODEL "$1" /tmp/pio-z
}
odd_sectors() { pw $(($1 + 512)) 512 && pw $(($1 + 3 * 512)) 512 && pw $(($1 + RG - 512)) 512; }
model_is_local() { same_bytes $LOCAL 0 $MODEL; }
checkpoint_same() { two_node_checkpoint pri sec && three_way_same $LOCAL $SDISK $S; }

disk_setup 3 32
head -c $SIZE /dev/zero > $MODEL

# shapes MODE: the same I/O shapes in either mode (each a result).
shapes() {
	local m=$1 off=$((100 * RG))
	[ "$m" = sync ] && off=$((300 * RG))
	ktap_check "$m: 512 B writes at odd sectors" odd_sectors $off
	ktap_check "$m: 1.5 KiB write across a region boundary" pw $((off + 2 * RG - 1024)) 1536
	ktap_check "$m: 3 MiB + 512 B write over 49 regions" pw $((off + 4 * RG + 512)) $((3 * MiB + 512))
	ktap_check "$m: RWF_DSYNC writes (FUA)" pw $((off + 60 * RG + 4 * K)) $((12 * K)) fua
	ktap_check "$m: fsync through the device" dd if=/dev/null of=$P conv=fsync,nocreat status=none
	ktap_check "$m: write-zeroes over 2.5 regions" pz $((off + 70 * RG + 8 * K)) $((2 * RG + RG / 2))
	ktap_check "$m: overwrite inside the zeroed range" pw $((off + 71 * RG)) $((4 * K))
	ktap_check "$m: the device reads the model" same_bytes $P 0 $MODEL
	ktap_check "$m: two-node checkpoint, three disks identical" checkpoint_same
	ktap_check "$m: the local disk is the model" model_is_local
}

ktap_plan 29
# TRIM on, for the discard below: forwarded, at an offset nbd-server 3.24
# applies whole (the lower half of the export).
ktap_check "two-node bed, region_sectors 128, nosync over zeroed disks" \
	eval 'NBD_TRIM=true pair_setup pri $LOCAL sec $SDISK $SBUF $NBD region_sectors 128 nosync'
ktap_check "start: replicating" pair_start 30
shapes async

# A discard, when the device offers it: the content is then whatever the
# local disk returns, and the remote must return the same.
dm=$(dmsetup info -c --noheadings -o blkdevname pri)
if [ "$(cat "/sys/block/$dm/queue/discard_max_bytes" 2>/dev/null || echo 0)" -gt 0 ]; then
	if blkdiscard -o $((200 * RG)) -l $((3 * RG)) $P; then
		ktap_ok "discard over 3 regions"
		read_direct $LOCAL $((200 * RG)) $((3 * RG)) > /tmp/pio-d
		model_write $MODEL $((200 * RG)) /tmp/pio-d
	else
		ktap_fail "discard over 3 regions" "the device offers discard but refused it"
	fi
	ktap_check "after a discard, two-node checkpoint, three disks identical" checkpoint_same
else
	ktap_skip "discard over 3 regions" "the device does not offer discard (local disk: $LOCAL)"
	ktap_skip "after a discard, two-node checkpoint, three disks identical" "no discard"
fi

sync_mode() {
	dmsetup message pri 0 stop && dm_remove pri &&
	pair_primary pri $LOCAL $NBD mode sync region_sectors 128 nosync &&
	pair_start 30
}
ktap_check "the same device in sync mode (nosync: the disks are identical)" sync_mode
shapes sync

# An export without TRIM (the test bed's default): discards stay local.
no_trim_bed() {
	pair_teardown pri sec $NBD
	NBD_TRIM=false pair_setup pri $LOCAL sec $SDISK $SBUF $NBD region_sectors 128 nosync &&
		pair_start 30 &&
		test "$(cat "/sys/block/${NBD#/dev/}/queue/discard_max_bytes")" = 0 &&
		pw $((400 * RG)) $((3 * RG)) && two_node_checkpoint pri sec
}
if [ "$(cat "/sys/block/$(disk_name $LOCAL)/queue/discard_max_bytes")" -gt 0 ]; then
	ktap_check "an export without TRIM: the NBD device takes no discards" no_trim_bed
	dm=$(dmsetup info -c --noheadings -o blkdevname pri)
	ktap_check "... colo-primary still offers discard" \
		test "$(cat "/sys/block/$dm/queue/discard_max_bytes")" -gt 0
	read_direct $SDISK $((400 * RG)) $((3 * RG)) > /tmp/pio-old
	ktap_check "... a discard over 3 regions succeeds, still replicating" \
		eval 'blkdiscard -o $((400 * RG)) -l $((3 * RG)) $P &&
			test "$(colo_fields pri 1 10)" = "replicating -"'
	ktap_check "... after a checkpoint the secondary disk kept its old bytes there" \
		eval 'two_node_checkpoint pri sec && same_bytes $SDISK $((400 * RG)) /tmp/pio-old'
else
	for t in "an export without TRIM: the NBD device takes no discards" \
		"... colo-primary still offers discard" \
		"... a discard over 3 regions succeeds, still replicating" \
		"... after a checkpoint the secondary disk kept its old bytes there"; do
		ktap_skip "$t" "the local disk cannot discard ($LOCAL)"
	done
fi
ktap_finish
