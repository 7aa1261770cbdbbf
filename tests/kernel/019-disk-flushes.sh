#!/bin/bash
# Flushes, discard and write-zeroes reach the lower devices that must see
# them, on disks that have a volatile write cache (brd has none: the block
# layer completes every flush and strips every FUA before a ramdisk sees
# it): scsi_debug disks, whose "flush I/Os" (/sys/block/X/stat) count the
# flushes each disk got. Where FUA writes land is checked from a
# dm-log-writes log in 045 (scsi_debug has FUA: a FUA write is no flush).
#
# colo-secondary S (disk D, buffer B) with colo-ingress S-in; then the pair:
# colo-primary over L, forwarding over NBD to S-in.
# Only on deb61: scsi_debug's volatile write cache is the point, and
# the flush paths do not differ between the kernels (the debug kernel
# takes them in 029).
# kernels: deb61
# timeout: 900
. "$(dirname "$0")/../lib/vm-test.sh"

D=/dev/testdisk0 B=/dev/testdisk1 L=/dev/testdisk2
SIN=/dev/mapper/sec-in
CHUNK=$((64 << 10)) T=/tmp/flush-fua
pair_test $T

mkdir -p $T
DMCOLO_DISKS=sdebug disk_setup 3 16 || ktap_skip_all "no scsi_debug"
random_file $T/orig $((16 << 20))
write_direct $D 0 $T/orig
write_direct $L 0 $T/orig
random_file $T/a 4096
head -c $CHUNK /dev/zero > $T/zero

# Direct writes of exactly one request each (bs = the file's size).
fsync_write() { dd if="$3" of="$1" bs="$(stat -c %s "$3")" seek="$2" oflag=direct,seek_bytes conv=notrunc,nocreat,fsync status=none; }
empty_flush() { dd if=/dev/null of="$1" conv=notrunc,nocreat,fsync status=none; }

# flushes CMD...: run CMD; print how many flushes D, B and L got.
flushes() {
	local d b l
	d=$(disk_stat $D flush_ios) b=$(disk_stat $B flush_ios) l=$(disk_stat $L flush_ios)
	"$@" || { echo "$* failed"; return 1; }
	echo "D=$(($(disk_stat $D flush_ios) - d)) B=$(($(disk_stat $B flush_ios) - b)) L=$(($(disk_stat $L flush_ios) - l))"
}
# expect_flushes WANT CMD...
expect_flushes() {
	local want=$1 got
	shift
	got=$(flushes "$@")
	[ "$got" = "$want" ] || { echo "flushes: got $got, want $want"; return 1; }
}
# discards DEV CMD...: how many discards DEV got while CMD ran.
discards() {
	local dev=$1 n
	shift
	n=$(disk_stat "$dev" discard_ios)
	"$@" || return 1
	echo $(($(disk_stat "$dev" discard_ios) - n))
}
orig_at() { dd if=$T/orig bs=$CHUNK skip="$1" count=1 status=none > $T/orig-$1; echo $T/orig-$1; }

ktap_plan 24
ktap_check "the disks have a volatile write cache" \
	test "$(cat /sys/block/$(disk_name $D)/queue/write_cache)" = "write back"
ktap_check "colo-secondary + colo-ingress over them, started" \
	eval 'secondary_setup $D $B 128 sec && dmsetup message sec 0 start'

# --- colo-secondary: flushes go to both devices
ktap_check "empty flush on the view: one flush on the disk and one on the buffer" \
	expect_flushes "D=1 B=1 L=0" empty_flush $S
ktap_check "view write + fsync (chunk 10): D=1 B=1" \
	expect_flushes "D=1 B=1 L=0" fsync_write $S $((10 * CHUNK)) $T/a
ktap_check "... the view holds it, the disk holds the original" \
	eval 'same_bytes $S $((10 * CHUNK)) $T/a && same_bytes $D $((10 * CHUNK)) $(orig_at 10)'
ktap_check "view write + fsync to a buffered chunk (10 again): D=1 B=1" \
	expect_flushes "D=1 B=1 L=0" fsync_write $S $((10 * CHUNK + 8192)) $T/a

# --- colo-ingress: flushes go to the disk
ktap_check "empty flush on the ingress: one flush on the disk" \
	expect_flushes "D=1 B=0 L=0" empty_flush $SIN
ktap_check "ingress write + fsync (chunk 20): D=1" \
	expect_flushes "D=1 B=0 L=0" fsync_write $SIN $((20 * CHUNK)) $T/a
ktap_check "... on the disk; the view still reads the original (from the buffer)" \
	eval 'same_bytes $D $((20 * CHUNK)) $T/a && same_bytes $S $((20 * CHUNK)) $(orig_at 20)'

# --- write-zeroes and discard
wz() { blkdiscard -z -o "$2" -l "$3" "$1"; }
ktap_check "ingress write-zeroes (chunk 22): zeroes on the disk" \
	eval 'wz $SIN $((22 * CHUNK)) $CHUNK && same_bytes $D $((22 * CHUNK)) $T/zero'
ktap_check "... the chunk's original is in the buffer: the view reads it" \
	same_bytes $S $((22 * CHUNK)) "$(orig_at 22)"
ktap_check "ingress discard (chunk 23) reaches the disk as a discard" \
	test "$(discards $D blkdiscard -o $((23 * CHUNK)) -l $CHUNK $SIN)" = 1
ktap_check "... the view reads the original" same_bytes $S $((23 * CHUNK)) "$(orig_at 23)"
ktap_check "view write-zeroes (chunk 24): zeroes in the view, the disk unchanged" \
	eval 'wz $S $((24 * CHUNK)) $CHUNK && same_bytes $S $((24 * CHUNK)) $T/zero &&
		same_bytes $D $((24 * CHUNK)) $(orig_at 24)'
ktap_check "view discard (chunk 25): no discard reaches the disk, which is unchanged" \
	eval 'test "$(discards $D blkdiscard -o $((25 * CHUNK)) -l $CHUNK $S)" = 0 &&
		same_bytes $D $((25 * CHUNK)) $(orig_at 25)'
ktap_check "secondary checkpoint" dmsetup message sec 0 checkpoint
secondary_teardown sec

# --- the pair: colo-primary over L, the secondary disk behind NBD. L and
# D are the same image (the last two steps wrote to D only: copy it back).
read_direct $D 0 $((16 << 20)) > $T/orig
write_direct $L 0 $T/orig
ktap_check "pair over the same disks, sync mode, replicating" \
	eval 'pair_setup pri $L sec $D $B $NBD nosync mode sync && pair_start 60'
# nbd-server turns an NBD flush into an fsync of the export (the ingress):
# one flush on D, after its page cache reached D.
ktap_check "sync: empty flush on the primary: one flush locally and one on the secondary disk" \
	expect_flushes "D=1 B=0 L=1" empty_flush $P
ktap_check "sync: write + fsync: one flush locally and one on the secondary disk" \
	expect_flushes "D=1 B=0 L=1" fsync_write $P $((30 * CHUNK)) $T/a
ktap_check "... the secondary disk has the write" same_bytes $D $((30 * CHUNK)) $T/a
async_pair() {
	pair_teardown pri sec $NBD
	pair_setup pri $L sec $D $B $NBD nosync && pair_start 60
}
ktap_check "the pair again, async mode, replicating" async_pair
ktap_check "async: empty flush on the primary reaches the local disk only" \
	expect_flushes "D=0 B=0 L=1" empty_flush $P
ktap_check "async: the checkpoint flushes the secondary disk (D=1)" \
	expect_flushes "D=1 B=0 L=0" dmsetup message pri 0 checkpoint
wz_pair() {
	wz $P $((31 * CHUNK)) $CHUNK && dmsetup message pri 0 checkpoint &&
		same_bytes $L $((31 * CHUNK)) $T/zero && same_bytes $D $((31 * CHUNK)) $T/zero &&
		same_bytes $S $((31 * CHUNK)) "$(orig_at 31)" &&
		dmsetup message sec 0 checkpoint && same_bytes $S $((31 * CHUNK)) $T/zero
}
ktap_check "write-zeroes through colo-primary: zeroes on both disks; the view has the original until the secondary's checkpoint" \
	wz_pair
ktap_finish
