#!/bin/bash
# The single-VM benchmarks: the secondary node's targets against dm-linear
# and dm-snapshot on the same devices, in the same VM run (bench/run boots
# it). Prints `bench CASE IMPL VALUE UNIT` lines (bench/lib.sh).
#
#   ingress     colo-ingress copy-on-write: first 4 KiB write into each
#               untouched chunk, then re-writes in the same epoch, against
#               dm-linear and snapshot-origin with a transient snapshot
#   secondary   colo-secondary writes (first touch, re-write) and reads
#               against a transient dm-snapshot
#   checkpoint  checkpoint latency and index memory against the number of
#               buffered chunks, against removing and recreating a snapshot
#   merge       failover merge of N chunks against dd (O_DIRECT) of the same
#               data and against snapshot-merge
#
# BENCH_CASES (default all four), BENCH_REPS (3), BENCH_REGION_MB (256):
# the region of ingress, secondary and merge; BENCH_CHUNKS_MAX
# (1048576): the largest number of buffered chunks for `checkpoint`.
set -uo pipefail
. "$(dirname "$0")/../lib.sh"

CASES=${BENCH_CASES:-ingress secondary checkpoint merge}
MiB=$((1 << 20))
CHUNK=$((64 << 10)) CHUNK_SECTORS=128
REGION=$((${BENCH_REGION_MB:-256} * MiB)) NCHUNKS=$((REGION / CHUNK))

cleanup() {
	dmsetup remove_all > /dev/null 2>&1
	brd_teardown > /dev/null 2>&1
}
trap cleanup EXIT

size_of() { blockdev --getsz "$1"; }

# ramdisks N MB: N brd devices of MB, every page allocated (brd allocates a
# page on its first write: whoever wrote first would pay for it).
ramdisks() {
	local i
	brd_setup "$1" "$2" || die "brd"
	for i in $(seq 0 $(($1 - 1))); do
		dd if=/dev/zero of=/dev/ram$i bs=1M oflag=direct status=none 2> /dev/null
		[ "$(blockdev --getsize64 /dev/ram$i)" -eq $(($2 * MiB)) ] || die "ram$i"
	done
}

# --- ingress: colo-ingress vs dm-linear vs snapshot-origin

# Each implementation: *_up (fresh state), then passes on $DEV.
ingress_linear_up() { dmsetup create bl --table "0 $(size_of /dev/ram0) linear /dev/ram0 0"; DEV=/dev/mapper/bl; }
ingress_linear_reset() { :; }
ingress_linear_down() { dmsetup remove bl; }

ingress_colo_up() {
	local n
	n=$(size_of /dev/ram0)
	dmsetup create bs --table "0 $n colo-secondary /dev/ram0 /dev/ram1 $CHUNK_SECTORS" &&
		dmsetup create bs-in --table "0 $n colo-ingress /dev/ram0" &&
		dmsetup message bs 0 start || die "colo-secondary setup"
	DEV=/dev/mapper/bs-in
}
ingress_colo_reset() { dmsetup message bs 0 checkpoint || die "checkpoint"; }
ingress_colo_down() { dmsetup remove bs-in && dmsetup remove bs; }

ingress_snapshot_up() {
	local n
	n=$(size_of /dev/ram0)
	dmsetup create bo --table "0 $n snapshot-origin /dev/ram0" &&
		dmsetup create bn --table "0 $n snapshot /dev/ram0 /dev/ram1 N $CHUNK_SECTORS" ||
		die "snapshot setup"
	DEV=/dev/mapper/bo
}
ingress_snapshot_reset() { "$TIMING" snapshot-recreate bo bn > /dev/null || die "snapshot recreate"; }
ingress_snapshot_down() { dmsetup remove bn && dmsetup remove bo; }

bench_ingress() {
	local rep impl qd
	note "ingress: brd disk and buffer, $((CHUNK >> 10)) KiB chunks, $NCHUNKS chunks; first touch = one 4 KiB write at the start of each chunk, re-write = the same writes again in the same epoch"
	ramdisks 2 $((REGION / MiB))
	for rep in $(seq "$REPS"); do
		for impl in linear colo snapshot; do
			"ingress_${impl}_up"
			for qd in 1 32; do
				"ingress_${impl}_reset"
				emit "ingress-first-qd$qd" "$impl" "$(PERF_LABEL=ingress-first-qd$qd-$impl \
					first_touch "$DEV" $CHUNK $NCHUNKS $qd)" IOPS
				emit "ingress-rewrite-qd$qd" "$impl" "$(PERF_LABEL=ingress-rewrite-qd$qd-$impl \
					first_touch "$DEV" $CHUNK $NCHUNKS $qd)" IOPS
			done
			"ingress_${impl}_down"
		done
	done
	brd_teardown
}

# --- secondary: colo-secondary vs a transient snapshot

bench_secondary() {
	local rep impl n dev
	note "secondary: brd disk and buffer, $((CHUNK >> 10)) KiB chunks; first touch and re-write as for ingress; reads: 4 KiB random, QD1, ${RUNTIME} s, before any write (clean) and once every chunk is buffered"
	ramdisks 2 $((REGION / MiB))
	n=$(size_of /dev/ram0)
	for rep in $(seq "$REPS"); do
		for impl in colo snapshot; do
			if [ $impl = colo ]; then
				dmsetup create bs --table "0 $n colo-secondary /dev/ram0 /dev/ram1 $CHUNK_SECTORS" &&
					dmsetup message bs 0 start || die "colo-secondary setup"
				dev=/dev/mapper/bs
			else
				dmsetup create bo --table "0 $n snapshot-origin /dev/ram0" &&
					dmsetup create bn --table "0 $n snapshot /dev/ram0 /dev/ram1 N $CHUNK_SECTORS" ||
					die "snapshot setup"
				dev=/dev/mapper/bn
			fi
			emit secondary-randread-clean-qd1 $impl "$(fio_iops $dev read --rw=randread \
				--bs=4k --iodepth=1 --time_based --runtime="$RUNTIME")" IOPS
			emit secondary-first-qd1 $impl "$(PERF_LABEL=secondary-first-qd1-$impl \
				first_touch $dev $CHUNK $NCHUNKS 1)" IOPS
			emit secondary-rewrite-qd1 $impl "$(first_touch $dev $CHUNK $NCHUNKS 1)" IOPS
			emit secondary-randread-buffered-qd1 $impl "$(fio_iops $dev read --rw=randread \
				--bs=4k --iodepth=1 --time_based --runtime="$RUNTIME")" IOPS
			if [ $impl = colo ]; then
				dmsetup remove bs
			else
				dmsetup remove bn && dmsetup remove bo
			fi
		done
	done
	brd_teardown
}

# --- checkpoint: latency and index memory against buffered chunks

# zero_dev NAME SECTORS: a dm-zero device (reads zeroes, drops writes), so
# that filling a million chunks costs no memory and little time.
zero_dev() { dmsetup create "$1" --table "0 $2 zero"; }

# fill DEV CHUNKS: a full-chunk (4 KiB) write to each of CHUNKS chunks, in
# random order (fio's random map: each block once). In disk order
# dm-snapshot would keep runs of up to 256 consecutive exceptions in one
# entry: its best case, not a VM's writes.
fill() {
	fio_json "$1" --rw=randwrite --bs=4k --iodepth=32 --size=$(($2 * 4096)) \
		--randrepeat=1 > /dev/null || die "fill $1 with $2 chunks"
}

# memory CHUNKS IMPL BEFORE AFTER DEV...: kernel memory per chunk, twice:
# from before the table was loaded to after the fill (memory-chunk), and
# what removing the filled devices gives back (memory-chunk-freed; memory
# freed earlier and still on its way back cannot make it lower). Below a
# million chunks both are lost in free-page noise: not emitted.
memory() {
	local chunks=$1 impl=$2 before=$3 after=$4 full freed
	shift 4
	full=$(kernel_kb)
	dmsetup remove "$@" || die "remove $*"
	freed=$(kernel_kb)
	[ "$chunks" -eq 1048576 ] || return 0
	emit "memory-chunk-$chunks" "$impl" "$(((after - before) * 1024 / chunks))" B
	emit "memory-chunk-freed-$chunks" "$impl" "$(((full - freed) * 1024 / chunks))" B
}

bench_checkpoint() {
	local chunks max=${BENCH_CHUNKS_MAX:-1048576} rep sectors before after ios ms
	note "checkpoint: 4 KiB chunks on dm-zero devices (only the index is measured), filled by 4 KiB O_DIRECT writes in random order, each chunk once; the snapshot peer is suspend origin + remove + create + resume, timed in one process; memory per chunk is MemTotal - MemFree after drop_caches, from before the table is loaded to after the fill, and again what removing the filled device gives back, divided by the chunks"
	for chunks in 1024 10240 102400 1048576; do
		[ "$chunks" -le "$max" ] || continue
		sectors=$((chunks * 8))
		for rep in $(seq "$REPS"); do
			zero_dev bz $sectors && zero_dev bb $sectors || die "dm-zero"
			before=$(kernel_kb)
			dmsetup create bs --table "0 $sectors colo-secondary /dev/mapper/bz /dev/mapper/bb 8" &&
				dmsetup message bs 0 start || die "colo-secondary setup"
			fill /dev/mapper/bs $chunks
			after=$(kernel_kb)
			[ "$(dmsetup status bs | awk '{ print $6 }')" = "$chunks/$chunks" ] ||
				die "not $chunks chunks buffered: $(dmsetup status bs)"
			ios=$(( $(io_count /dev/mapper/bz) + $(io_count /dev/mapper/bb) ))
			ms=$("$TIMING" message bs checkpoint) || die "checkpoint"
			emit "checkpoint-$chunks" colo "$ms" ms
			emit "checkpoint-io-$chunks" colo \
				$(( $(io_count /dev/mapper/bz) + $(io_count /dev/mapper/bb) - ios )) IOs
			fill /dev/mapper/bs $chunks
			memory "$chunks" colo "$before" "$after" bs
			# The peer: a transient snapshot with as many exceptions
			# (its COW a little larger: a transient store is full one
			# chunk before its end).
			zero_dev bc $((sectors + 1024)) || die "dm-zero"
			before=$(kernel_kb)
			dmsetup create bo --table "0 $sectors snapshot-origin /dev/mapper/bz" &&
				dmsetup create bn --table "0 $sectors snapshot /dev/mapper/bz /dev/mapper/bc N 8" ||
				die "snapshot setup"
			fill /dev/mapper/bn $chunks
			after=$(kernel_kb)
			ms=$("$TIMING" snapshot-recreate bo bn) || die "snapshot recreate"
			emit "checkpoint-$chunks" snapshot "$ms" ms
			fill /dev/mapper/bn $chunks
			memory "$chunks" snapshot "$before" "$after" bn bo
			dmsetup remove bc && dmsetup remove bz && dmsetup remove bb
		done
	done
}

# --- merge: failover merge against dd and snapshot-merge

bench_merge() {
	local rep n ms t0 cow
	note "merge: $NCHUNKS chunks of $((CHUNK >> 10)) KiB ($((REGION / MiB)) MiB) buffered by secondary writes, brd disk and buffer; dd copies the same bytes buffer -> disk with bs=1M and O_DIRECT; snapshot-merge merges a persistent snapshot holding the same chunks"
	# One more chunk of room for the persistent snapshot's metadata.
	ramdisks 2 $((REGION / MiB + 16))
	n=$((REGION / 512))
	for rep in $(seq "$REPS"); do
		dmsetup create bs --table "0 $n colo-secondary /dev/ram0 /dev/ram1 $CHUNK_SECTORS" &&
			dmsetup message bs 0 start || die "colo-secondary setup"
		dd if=/dev/zero of=/dev/mapper/bs bs=1M count=$((REGION / MiB)) oflag=direct status=none ||
			die "fill"
		ms=$(PERF_LABEL=merge-colo under_perf "$TIMING" message-until bs failover standalone) ||
			die "failover"
		emit merge colo "$ms" ms
		dmsetup remove bs

		t0=$(date +%s%N)
		PERF_LABEL=merge-dd under_perf dd if=/dev/ram1 of=/dev/ram0 bs=1M count=$((REGION / MiB)) \
			iflag=direct oflag=direct status=none || die "dd"
		emit merge dd "$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')" ms

		# A new persistent store: its header zeroed.
		dd if=/dev/zero of=/dev/ram1 bs=4k count=1 oflag=direct status=none
		cow=$(size_of /dev/ram1)
		dmsetup create bo --table "0 $n snapshot-origin /dev/ram0" &&
			dmsetup create bn --table "0 $n snapshot /dev/ram0 /dev/ram1 P $CHUNK_SECTORS" ||
			die "snapshot setup (cow $cow sectors)"
		dd if=/dev/zero of=/dev/mapper/bn bs=1M count=$((REGION / MiB)) oflag=direct status=none ||
			die "fill the snapshot"
		ms=$(PERF_LABEL=merge-snapshot under_perf "$TIMING" snapshot-merge bo bn) ||
			die "snapshot-merge"
		emit merge snapshot-merge "$ms" ms
		dmsetup remove bn && dmsetup remove bo
	done
	brd_teardown
}

for c in $CASES; do
	echo "case $c"
	"bench_$c"
done
