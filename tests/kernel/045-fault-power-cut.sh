#!/bin/bash
# Power cuts on the secondary's disk and buffer, as xfstests finds them:
# dm-log-writes under each (over scsi_debug disks with a volatile write
# cache) records a write only once a flush or its own FUA made it stable, so
# the log up to a mark is the state the device is in after a power cut at
# that mark (tests/tools/colo-logwrites replays it).
#
# The rules checked (dm-colo.rst):
#  - after the primary's checkpoint N has returned, the secondary disk is,
#    whatever is lost afterwards, the primary's disk at checkpoint N (the
#    checkpoint's remote flush came after every forward it covers);
#  - after a failover, its merge and a flush of the view, the disk is the
#    secondary view;
#  - a FUA write keeps its flag on the device where it lands: a view write
#    on the buffer, an ingress write on the disk.
# Not checked, because the buffer index is not persistent yet: the
# secondary's own flushed writes before a failover, and a cut during the
# merge (both need the persistent index).
# Only on deb61: scsi_debug's write cache is what the cut drops, and
# the paths do not differ between the kernels.
# kernels: deb61
# timeout: 900
. "$(dirname "$0")/../lib/vm-test.sh"

LW=$DMCOLO_TOP/build/tests/colo-logwrites
T=/tmp/crash-lw MB=24
DDISK=/dev/testdisk0 DLOG=/dev/testdisk1 BDISK=/dev/testdisk2 BLOG=/dev/testdisk3
L=/dev/testdisk4 R=/dev/testdisk5
D=/dev/mapper/dlog B=/dev/mapper/blog
CHUNK=$((64 << 10))
PAIR_UNDER="dlog blog"
pair_test $T

mkdir -p $T
DMCOLO_DISKS=sdebug disk_setup 6 $MB || ktap_skip_all "no scsi_debug"
modprobe dm-log-writes 2>/dev/null
SZ=$(blockdev --getsz $DDISK)
random_file $T/image $((MB << 20))
for d in $DDISK $L $R; do write_direct $d 0 $T/image; done

# writes N SEED: N random 4 KiB direct writes (fio, QD8) through the
# primary, in its first 4 MiB (the merge then copies at most 64 chunks: the
# logs hold it all).
writes() {
	fio --name=w --filename=$P --rw=randwrite --bs=4k --direct=1 --ioengine=libaio \
		--iodepth=8 --number_ios="$1" --size=$((4 << 20)) --randseed="$2" \
		--randrepeat=0 --refill_buffers --output=/dev/null
}
# replayed_is LOG MARK FILE: the initial image plus the log up to MARK is FILE.
replayed_is() {
	write_direct $R 0 $T/image && "$LW" replay "$1" $R --mark "$2" && same_bytes $R 0 "$3"
}
# fua_count LOG FROM TO: FUA writes logged between the marks.
fua_count() { "$LW" count "$1" FUA --from-mark "$2" --to-mark "$3"; }
# mark DM LOG NAME: a mark in DM's log, once it is written there (the
# target's thread writes it, and the entry count, after the message).
mark() {
	local i
	dmsetup message "$1" 0 mark "$3" || return 1
	for i in $(seq 100); do
		"$LW" dump "$2" | grep -q " MARK 0 0 $3\$" && return 0
		sleep 0.2
	done
	echo "mark $3 not in $2's log after 20 s" >&2
	return 1
}

ktap_plan 15
ktap_check "dm-log-writes under the secondary's disk and buffer" \
	eval 'dmsetup create dlog --table "0 $SZ log-writes $DDISK $DLOG" &&
		dmsetup create blog --table "0 $SZ log-writes $BDISK $BLOG"'
ktap_check "the pair over them (async), replicating" \
	eval 'pair_setup pri $L sec $D $B $NBD nosync && pair_start 60'

for n in 1 2 3; do
	ok=yes
	writes $((n * 100)) $n || ok="fio failed"
	[ $ok != yes ] || dmsetup message pri 0 checkpoint || ok="checkpoint failed: $(dmsetup status pri)"
	[ $ok != yes ] || mark dlog $DLOG cp$n || ok="mark failed"
	[ $ok != yes ] || read_direct $L 0 $((MB << 20)) > $T/primary-$n || ok="read failed"
	[ $ok != yes ] || dmsetup message sec 0 checkpoint || ok="secondary checkpoint failed"
	if [ "$ok" = yes ]; then
		ktap_ok "checkpoint $n after $((n * 100)) forwarded writes"
	else
		ktap_fail "checkpoint $n after $((n * 100)) forwarded writes" "$ok"
	fi
done
for n in 1 2 3; do
	ktap_check "a cut after checkpoint $n leaves the secondary disk = the primary at checkpoint $n" \
		replayed_is $DLOG cp$n $T/primary-$n
done

# FUA: an O_DSYNC direct write is a FUA bio (then the fsync's flush).
dsync_write() { dd if="$3" of="$1" bs="$(stat -c %s "$3")" seek="$2" oflag=direct,dsync,seek_bytes conv=notrunc,nocreat status=none; }
random_file $T/a 4096
ktap_check "an O_DSYNC view write (new chunk): one FUA write on the buffer" \
	eval 'mark blog $BLOG v0 && dsync_write $S $((40 * CHUNK)) $T/a && mark blog $BLOG v1 &&
		test "$(fua_count $BLOG v0 v1)" = 1'
ktap_check "an O_DSYNC ingress write (new chunk): one FUA write on the disk, none on the buffer" \
	eval 'mark dlog $DLOG i0 && mark blog $BLOG i0 &&
		dsync_write /dev/mapper/sec-in $((41 * CHUNK)) $T/a &&
		mark dlog $DLOG i1 && mark blog $BLOG i1 &&
		test "$(fua_count $DLOG i0 i1) $(fua_count $BLOG i0 i1)" = "1 0"'

# The secondary takes over: its view (checkpoint 3 + its own writes, the
# FUA one above included) must be on the disk once it has flushed.
random_file $T/b $((256 << 10))
ktap_check "secondary writes (256 KiB over 4 chunks)" write_direct $S $((64 * CHUNK + 4096)) $T/b
# The primary dies: its device and NBD link go, then the failover.
primary_dies() { dm_remove pri; nbd_disconnect $NBD; nbd_kill sec; nbd_stop sec; }
ktap_check "the primary dies; failover, merged, standalone" \
	eval 'primary_dies && dmsetup message sec 0 failover && colo_wait_state sec standalone 120'
ktap_check "a flush of the view, then a mark" \
	eval 'dd if=/dev/null of=$S conv=notrunc,nocreat,fsync status=none && mark dlog $DLOG merged'
read_direct $S 0 $((MB << 20)) > $T/view
ktap_check "a cut after it leaves the disk = the secondary view" replayed_is $DLOG merged $T/view
ktap_check "... which is checkpoint 3 plus the secondary's writes" \
	eval 'cp $T/primary-3 $T/model && for w in "$((40 * CHUNK)) $T/a" "$((64 * CHUNK + 4096)) $T/b"; do
		set -- $w; dd if="$2" of=$T/model bs=4k seek="$1" oflag=seek_bytes conv=notrunc status=none; done &&
		cmp $T/model $T/view'
ktap_finish
