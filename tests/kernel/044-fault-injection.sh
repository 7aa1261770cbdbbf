#!/bin/bash
# The kernel's fault injection (the debug kernel: CONFIG_FAIL_MAKE_REQUEST,
# CONFIG_FAILSLAB with the stack-trace filter): each constructor meets one
# failed allocation at a point further in each time (failslab, only for
# stacks through dm-colo's code and only in the dmsetup under test), the
# failover's allocations fail (its merge then copies with dm-kcopyd), and
# random bios
# of the primary's local disk, the secondary's disk and its buffer fail
# under load (fail_make_request). Each ends in the documented state (an
# error returned, degraded or broken, never a crash), and the data checks
# are exact. The runner fails the test on any kernel report.
# Only the debug kernel has fault injection.
# kernels: debug
# timeout: 900
. "$(dirname "$0")/../lib/vm-test.sh"

FI=/sys/kernel/debug
[ -d $FI/fail_make_request ] && [ -d $FI/failslab ] ||
	ktap_skip_all "no fault injection in this kernel (the debug kernel has it)"
D=/dev/testdisk0 B=/dev/testdisk1 L=/dev/testdisk2
SIN=/dev/mapper/sec-in
T=/tmp/fault-inj CHUNK=$((64 << 10)) MB=16
PAIR_UNDER=fi
test_stop() {
	failslab_disarm
	for d in $D $B $L; do fmr_disarm $d 2>/dev/null; done
}
pair_test $T

# --- failslab: allocations under dm-colo's code fail, in tasks that ask.
dmcolo_text() {	# first and last address of dm-colo's code, hex
	awk '$4 == "[dm_colo]" && ($2 == "t" || $2 == "T") { print $1 }' /proc/kallsyms |
		sort | sed -n '1p;$p'
}
failslab_arm() {	# failslab_arm TIMES SPACE: TIMES failures (-1: all) once SPACE
	local text first last	# bytes were allocated (failslab's "space")
	text=$(dmcolo_text)
	first=0x$(echo "$text" | head -n 1) last=0x$(echo "$text" | tail -n 1)
	echo "$first" > $FI/failslab/require-start &&
	printf '%#x\n' $((last + 4096)) > $FI/failslab/require-end &&
	echo N > $FI/failslab/ignore-gfp-wait &&
	echo Y > $FI/failslab/task-filter &&
	echo 0 > $FI/failslab/verbose &&
	echo 1 > $FI/failslab/interval &&
	echo "$2" > $FI/failslab/space &&
	echo "$1" > $FI/failslab/times &&
	echo 100 > $FI/failslab/probability
}
failslab_disarm() { echo 0 > $FI/failslab/probability 2>/dev/null; return 0; }
failslab_fired() { [ "$(cat $FI/failslab/times)" = 0 ]; }
# failing CMD...: CMD in a task whose allocations may be failed.
failing() { (echo 1 > /proc/self/make-it-fail && exec "$@"); }

# allocations_fail NAME TABLE: creates of NAME with TABLE, each with one
# allocation under dm-colo's code failing: the first at which what was
# allocated so far reaches a budget (failslab's "space"), the budget
# growing fourfold from 0 until a create meets no failure. A create that
# met one fails and leaves no device, or (a mempool's reserve, a fallback)
# works; the last one works.
allocations_fail() {
	local name=$1 table=$2 space=0 refused=0 rc fired
	while [ $space -le $((1 << 30)) ]; do
		failslab_arm 1 "$space" || return 1
		failing dmsetup create "$name" --table "$table" > /dev/null 2>&1
		rc=$?
		fired=no
		failslab_fired && fired=yes
		failslab_disarm
		if [ $rc -eq 0 ]; then
			dmsetup status "$name" > /dev/null || { echo "budget $space: $name has no status"; return 1; }
			dm_remove "$name"
			if [ $fired = no ]; then
				echo "$refused allocation points refused cleanly; created at budget $space"
				[ $refused -gt 0 ]
				return
			fi
		else
			[ $fired = yes ] || { echo "budget $space: the create failed with no failure injected"; return 1; }
			refused=$((refused + 1))
			dmsetup info "$name" > /dev/null 2>&1 && { echo "budget $space: a failed create left $name"; return 1; }
		fi
		space=$((space ? space * 4 : 1))
	done
	echo "every create failed up to a budget of 1 GiB"
	return 1
}

# --- fail_make_request: a share of one disk's bios fail
fmr_arm() {	# fmr_arm DEV PERCENT
	echo 0 > $FI/fail_make_request/verbose &&
	echo 1 > $FI/fail_make_request/interval &&
	echo -1 > $FI/fail_make_request/times &&
	echo "$2" > $FI/fail_make_request/probability &&
	echo 1 > "/sys/block/$(disk_name "$1")/make-it-fail"
}
fmr_disarm() { echo 0 > "/sys/block/$(disk_name "$1")/make-it-fail"; }

# write_blocks DEV FIRST N TAG: N 4 KiB O_DIRECT writes at blocks FIRST..,
# each its own request; block i's data is $T/TAG.i; $T/TAG.ok lists the
# blocks whose write succeeded.
write_blocks() {
	local dev=$1 first=$2 n=$3 tag=$4 i
	: > "$T/$tag.ok"
	for i in $(seq "$first" $((first + n - 1))); do
		random_file "$T/$tag.$i" 4096
		write_odirect "$dev" $((i * 4096)) "$T/$tag.$i" 2> /dev/null && echo "$i" >> "$T/$tag.ok"
	done
}
# blocks_hold DEV TAG: every block whose write succeeded holds its data.
blocks_hold() {
	local i
	while read -r i; do
		same_bytes "$1" $((i * 4096)) "$T/$2.$i" || { echo "block $i"; return 1; }
	done < "$T/$2.ok"
}
some_failed() { local n; n=$(wc -l < "$T/$2.ok"); [ "$n" -gt 0 ] && [ "$n" -lt "$1" ]; }

mkdir -p $T
disk_setup 3 $MB
SZ=$(blockdev --getsz $D)
random_file $T/image $((MB << 20))
write_direct $D 0 $T/image
write_direct $L 0 $T/image

ktap_plan 18
# --- constructors under failslab
ktap_check "colo-secondary: its constructor under failing allocations refuses cleanly or works" \
	allocations_fail fi "0 $SZ colo-secondary $D $B 128"
ktap_check "colo-ingress: the same" \
	eval 'dmsetup create sec --table "0 $SZ colo-secondary $D $B 128" &&
		allocations_fail sec-in "0 $SZ colo-ingress $D"'
dm_remove sec
ktap_check "colo-primary: the same" \
	allocations_fail fi "0 $SZ colo-primary $L $B 1 nosync"

# --- the failover's allocations fail: dm-kcopyd merges
random_file $T/view-writes $((1 << 20))
failover_no_memory() {
	secondary_setup $D $B 128 sec && dmsetup message sec 0 start &&
		write_direct $S $((3 * CHUNK)) $T/view-writes &&
		read_direct $S 0 $((MB << 20)) > $T/view || return 1
	failslab_arm -1 0 && failing dmsetup message sec 0 failover
	local rc=$?
	failslab_disarm
	[ $rc -eq 0 ] || { echo "failover refused: $(dmsetup status sec)"; return 1; }
	colo_wait_state sec standalone 120 && same_bytes $D 0 $T/view
}
ktap_check "failover with every allocation failing: merged (by dm-kcopyd), disk = view" \
	failover_no_memory
ktap_check "... the kernel said it fell back to dm-kcopyd" \
	eval 'dmesg | grep -q "merge buffers: dm-kcopyd merges the rest"'
secondary_teardown sec
write_direct $D 0 $T/image

# --- fail_make_request under the pair. The export writes each write
# through before it replies (sync = true): a failing secondary disk fails
# the forward itself, not a later writeback of nbd-server's page cache.
export NBD_EXPORT_EXTRA="sync = true"
ktap_check "pair, async, replicating" \
	eval 'pair_setup pri $L sec $D $B $NBD nosync && pair_start 60'
fmr_arm $L 30
write_blocks $P 100 40 local
fmr_disarm $L
ktap_check "the primary's local disk fails 30% of bios: some of 40 writes fail with EIO, not all" \
	some_failed 40 local
ktap_check "... degraded, error local_io" test "$(colo_fields pri 1 10)" = "degraded local_io"
ktap_check "... every acknowledged write is on the local disk" blocks_hold $P local
ktap_check "... resync, replicating; checkpoint; three identical disks" \
	eval 'dmsetup message pri 0 resync && colo_wait_state pri replicating 120 &&
		two_node_checkpoint pri sec && three_way_same $L $D $S'
ktap_check "... and the acknowledged writes are on the secondary disk" blocks_hold $D local

# The chunks are saved this epoch first (a write each, the disk healthy),
# so that the failing bios are the primary writes colo-ingress passes to
# the disk, not copy-ins. nbd-server 3.24 ignores the fsync of its "sync"
# writes, and that fsync consumes the error: the primary may never hear of
# it. The secondary must: its disk lacks a primary write. The primary's
# barrier makes sure every first write (and its copy-in) is done before
# the disk starts failing.
write_blocks $P 200 40 remote
dmsetup message pri 0 checkpoint
fmr_arm $D 30
write_blocks $P 200 40 remote
fmr_disarm $D
ktap_check "the secondary disk fails 30% of bios: the primary's writes all succeed" \
	test "$(wc -l < $T/remote.ok)" = 40
ktap_check "... the secondary is broken, disk_io; its checkpoint is refused" \
	eval 'test "$(colo_fields sec 1 7)" = "broken disk_io" &&
		! timeout 60 dmsetup message sec 0 checkpoint 2> /dev/null'
rebuild() {
	pair_teardown pri sec $NBD
	pair_setup pri $L sec $D $B $NBD && pair_start 120
}
ktap_check "... a new pair over the same disks, full sync; checkpoint; three identical disks" \
	eval 'rebuild && two_node_checkpoint pri sec && three_way_same $L $D $S &&
		blocks_hold $D remote'

# The buffer fails: a primary write to an unsaved chunk cannot save it.
fmr_arm $B 100
write_blocks $SIN 400 4 ingress
fmr_disarm $B
ktap_check "the buffer fails every bio: primary writes to unsaved chunks fail with EIO" \
	test "$(wc -l < $T/ingress.ok)" = 0
ktap_check "... broken, copy_failed" test "$(colo_fields sec 1 7)" = "broken copy_failed"
ktap_check "... and the disk never saw them: it is the checkpoint" three_way_same $L $D $S
primary_dies() { dm_remove pri; nbd_disconnect $NBD; nbd_kill sec; nbd_stop sec; }
ktap_check "... failover merges: disk = view = the checkpoint" \
	eval 'read_direct $L 0 $((MB << 20)) > $T/checkpoint && primary_dies &&
		dmsetup message sec 0 failover && colo_wait_state sec standalone 120 &&
		same_bytes $D 0 $T/checkpoint && same_bytes $S 0 $T/checkpoint'
ktap_finish
