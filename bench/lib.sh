# shellcheck shell=bash
# Helpers of the benchmark scripts that run inside the VMs (bench/cases).
#
# A measurement is one line on stdout:
#   bench CASE IMPL VALUE UNIT
# one per repetition; bench/report takes the median and the spread of the
# lines of one CASE and IMPL and sets them against each other.

DMCOLO_TOP=${DMCOLO_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
. "$DMCOLO_TOP/tests/lib/blk.sh"

TIMING=$DMCOLO_TOP/build/bench/dm-timing
REPS=${BENCH_REPS:-3}
RUNTIME=${BENCH_RUNTIME:-5}

emit() { echo "bench $1 $2 $3 $4"; }

# note TEXT: a line the report keeps as it is (setup, sizes, caveats).
note() { echo "note $*"; }

die() { echo "bench: $*" >&2; exit 1; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# under_perf CMD...: CMD, under `perf record -a -g` into
# $BENCH_PERF_DIR/$PERF_LABEL.data when both are set (bench/profile; the
# caller names the run: PERF_LABEL=CASE-IMPL).
under_perf() {
	if [ -n "${BENCH_PERF_DIR:-}" ] && [ -n "${PERF_LABEL:-}" ]; then
		perf record -q -F 999 -a -g -o "$BENCH_PERF_DIR/$PERF_LABEL.data" -- "$@"
	else
		"$@"
	fi
}

# perf_ready: kernel symbols for perf (Debian hides kernel addresses by
# default) and system-wide sampling for root.
perf_ready() {
	echo 0 > /proc/sys/kernel/kptr_restrict
	echo -1 > /proc/sys/kernel/perf_event_paranoid
}

# perf_flat DIR: a flat profile by symbol, DIR/NAME.txt, of each DIR/NAME.data.
# Kernel symbols come from this kernel's /proc/kallsyms (modules included).
perf_flat() {
	local data
	for data in "$1"/*.data; do
		[ -f "$data" ] || continue
		perf report -i "$data" --kallsyms=/proc/kallsyms --stdio --no-children \
			--sort dso,sym -g none \
			--percent-limit 0.5 2> /dev/null | grep -v '^$' > "${data%.data}.txt" ||
			echo "profile: perf report of $data failed" >&2
	done
}

# fio_json DEV [fio options...]: one job on DEV with O_DIRECT and libaio,
# its JSON report on stdout.
fio_json() {
	local dev=$1
	shift
	under_perf fio --name=bench --filename="$dev" --direct=1 --ioengine=libaio \
		--output-format=json "$@" 2> /dev/null
}

# fio_iops DEV read|write [fio options...]: IOPS of one job.
fio_iops() {
	local dev=$1 dir=$2
	shift 2
	fio_json "$dev" "$@" | jq -e ".jobs[0].$dir.iops" ||
		die "fio on $dev ($*) failed"
}

# fio_mbs DEV read|write [fio options...]: MB/s (10^6) of one job.
fio_mbs() {
	local dev=$1 dir=$2
	shift 2
	fio_json "$dev" "$@" | jq -e ".jobs[0].$dir.bw_bytes / 1000000" ||
		die "fio on $dev ($*) failed"
}

# first_touch DEV CHUNK_BYTES CHUNKS QD: IOPS of one 4 KiB write at the
# start of each of CHUNKS chunks, in order (each chunk is touched once).
first_touch() {
	fio_iops "$1" write --rw=write:$(($2 - 4096)) --bs=4k --size=$(($2 * $3)) \
		--io_size=$((4096 * $3)) --iodepth="$4"
}

# kernel_kb: kernel memory in use, in KiB: MemTotal - MemFree, with the page
# cache and the reclaimable slab dropped first (no sync: the benchmarks
# write with O_DIRECT, and a sync must not wait on a stalled NBD device).
kernel_kb() {
	echo 3 > /proc/sys/vm/drop_caches
	awk '/^MemTotal:/ { t = $2 } /^MemFree:/ { f = $2 } END { print t - f }' /proc/meminfo
}

# slab_bytes: bytes in allocated slab objects (active objects x object
# size, /proc/slabinfo): unlike MemFree it does not move with the free pages
# the page allocator keeps on per-CPU lists.
slab_bytes() { awk 'NR > 2 { s += $2 * $4 } END { printf "%d\n", s }' /proc/slabinfo; }

# io_count DEV: reads + writes completed on a block device (sysfs stat).
io_count() {
	local mm
	mm=$(stat -L -c '%t %T' "$1")
	awk '{ print $1 + $5 }' "/sys/dev/block/$((0x${mm% *})):$((0x${mm#* }))/stat"
}
