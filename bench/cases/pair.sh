#!/bin/bash
# The two-VM benchmarks (bench/run boots both VMs, joined by -netdev stream;
# the primary is fe80::1, the secondary fe80::2 on net0; they take turns
# through files in /mnt/share, tests/lib/multivm.sh). DMCOLO_ROLE says
# which side this is. Prints `bench CASE IMPL VALUE UNIT` lines.
#
#   forwarding  4 KiB random writes QD1 and QD32, 1 MiB sequential writes,
#               a burst of 8 MiB of 4 KiB writes, on the primary: dm-linear on the local disk, colo-primary
#               async and sync (replicating to a colo-secondary through
#               its NBD export, set up by dmcoloctl) over one NBD socket
#               (several are unsafe: dm-colo.rst), DRBD 8.4 protocol A and
#               C between the same two VMs over the same link
#   barrier     the primary's checkpoint with no write and with many writes
#               in flight
#   inflight    kernel memory per forwarded write in flight (the
#               secondary's nbd-server stopped, so nothing completes)
#
# BENCH_REPS (3), BENCH_RUNTIME (5 s a fio run), BENCH_PAIR ("colo drbd":
# which of the two to run), BENCH_PERF_DIR (bench/run --profile: each of
# the primary's forwarding runs, and each part on the secondary, under
# perf; a flat profile of each written there).
set -uo pipefail
. "$(dirname "$0")/../lib.sh"
. "$DMCOLO_TOP/tests/lib/multivm.sh"

CTL=$DMCOLO_TOP/tools/dmcoloctl/dmcoloctl
# A side that cannot go on tells the other (mv_await fails there at once).
die() {
	echo "bench: ${DMCOLO_ROLE:-?}: $*" >&2
	mv_signal abort "${DMCOLO_ROLE:-?}: $*"
	exit 1
}
MiB=$((1 << 20))
DISK_MB=256
# The working sets: a secondary buffer holds every chunk the primary
# touches in an epoch, and the benchmark checkpoints between runs.
RAND_SIZE=$((64 * MiB)) SEQ_SIZE=$((128 * MiB))
WORKLOADS="rand4k-qd1 rand4k-qd32 seq1m-qd4 burst4k-qd32"
DRBD_RES=/etc/drbd.d/bench.res

# workload NAME DEV: one fio run on DEV; prints IOPS (rand) or MB/s (seq).
workload() {
	case $1 in
	rand4k-qd1) fio_iops "$2" write --rw=randwrite --bs=4k --iodepth=1 --size=$RAND_SIZE \
		--time_based --runtime="$RUNTIME" ;;
	rand4k-qd32) fio_iops "$2" write --rw=randwrite --bs=4k --iodepth=32 --size=$RAND_SIZE \
		--time_based --runtime="$RUNTIME" ;;
	seq1m-qd4) fio_mbs "$2" write --rw=write --bs=1m --iodepth=4 --size=$SEQ_SIZE \
		--time_based --runtime="$RUNTIME" ;;
	# 8 MiB of writes: within colo's max_inflight, so async is bounded by
	# what a forward costs the primary, not by what the secondary absorbs.
	burst4k-qd32) fio_iops "$2" write --rw=randwrite --bs=4k --iodepth=32 --size=$RAND_SIZE \
		--number_ios=2048 ;;
	esac
}

# with_mode TABLE async|sync: the colo-primary TABLE line with that mode.
with_mode() {
	local base opts=()
	# shellcheck disable=SC2086
	set -- $1 "$2"
	base="$1 $2 $3 $4 $5"
	shift 5
	[ $# -eq 1 ] || shift	# the count of optional arguments
	while [ $# -gt 1 ]; do
		case $1 in
		mode) shift 2 ;;
		max_inflight_kb|region_sectors) opts+=("$1" "$2"); shift 2 ;;
		*) opts+=("$1"); shift ;;
		esac
	done
	opts+=(mode "$1")
	echo "$base ${#opts[@]} ${opts[*]}"
}

# ramdisks: ram0-2 of DISK_MB, every page allocated (brd allocates a page
# on its first write: whoever wrote first would pay for it).
ramdisks() {
	local i
	brd_setup 3 $DISK_MB || die "brd"
	for i in 0 1 2; do
		dd if=/dev/zero of=/dev/ram$i bs=1M oflag=direct status=none 2> /dev/null
	done
}

want() { case " ${BENCH_PAIR:-colo drbd} " in *" $1 "*) return 0 ;; esac; return 1; }

unit_of() { case $1 in seq*) echo MB/s ;; *) echo IOPS ;; esac; }

drbd_config() {
	# Not Debian's drbd.conf: its global_common.conf may ask for
	# usage-count, which would try to reach linbit.com.
	mkdir -p /etc/drbd.d
	cat > /etc/drbd.conf <<-EOF
	global { usage-count no; }
	include "/etc/drbd.d/*.res";
	EOF
	cat > $DRBD_RES <<-EOF
	resource bench {
		protocol $1;
		device /dev/drbd0;
		disk /dev/ram2;
		meta-disk internal;
		on bench-primary { address ipv6 [fe80::1%net0]:7789; }
		on bench-secondary { address ipv6 [fe80::2%net0]:7789; }
	}
	EOF
}

# drbd_up: fresh metadata on /dev/ram2, the resource up (both sides).
drbd_up() {
	local out
	# (yes ends with SIGPIPE: the pipeline's status is drbdadm's)
	out=$(set +o pipefail; yes yes | drbdadm create-md --force bench 2>&1) ||
		die "drbdadm create-md: $out"
	out=$(drbdadm up bench 2>&1) || die "drbdadm up: $out"
}

drbd_wait() {
	local i
	for i in $(seq 600); do
		grep -q "$1" /proc/drbd && return 0
		sleep 0.2
	done
	cat /proc/drbd >&2
	return 1
}

# colo_forwarding: the forwarding runs through a primary p (dm-linear
# beside it).
colo_forwarding() {
	local rep w impl table
	"$CTL" primary create p --disk /dev/ram0 --secondary '[fe80::2%net0]:10809' --export s \
		--nosync --timeout 120 > /dev/null &&
		"$CTL" start p > /dev/null || die "dmcoloctl primary create/start"
	table=$(dmsetup table p)
	for rep in $(seq "$REPS"); do
		for w in $WORKLOADS; do
			emit "fwd-$w" linear "$(workload $w /dev/mapper/bl)" "$(unit_of $w)"
			for impl in async sync; do
				dmsetup suspend p && dmsetup reload p --table "$(with_mode "$table" $impl)" &&
					dmsetup resume p || die "mode $impl: $(with_mode "$table" $impl)"
				"$CTL" checkpoint p > /dev/null || die "checkpoint"
				emit "fwd-$w" "colo-$impl" \
					"$(PERF_LABEL=pri-$w-colo-$impl workload $w /dev/mapper/p)" \
					"$(unit_of $w)"
			done
		done
	done
	dmsetup suspend p && dmsetup reload p --table "$table" && dmsetup resume p || die "reload"
}

primary_colo() {
	local rep before after slab_before slab_after n bytes
	dmsetup create bl --table "0 $((DISK_MB * 2048)) linear /dev/ram0 0" || die "linear"
	note "forwarding: primary and secondary VMs joined by -netdev stream (virtio-net), 2 vCPUs each; brd disks of $DISK_MB MiB; 4 KiB random writes over the first $((RAND_SIZE / MiB)) MiB, 1 MiB sequential writes over the first $((SEQ_SIZE / MiB)) MiB, ${RUNTIME} s each; colo: 64 KiB chunks, max_inflight 16 MiB, a two-node checkpoint before each run, one NBD socket; TCP buffers up to 32 MiB on both VMs; nbd-server writes through the secondary's page cache, so a sync write is acknowledged once it is in the secondary's memory (DRBD C waits for the peer's disk write: brd either way)"
	mv_await sec-colo-1 300 || die "secondary"
	colo_forwarding

	# The primary barrier.
	"$CTL" checkpoint p > /dev/null || die "checkpoint"
	for rep in $(seq "$REPS"); do
		emit barrier-idle colo-async "$("$TIMING" message p checkpoint)" ms
	done
	for rep in $(seq "$REPS"); do
		fio_json /dev/mapper/p --rw=randwrite --bs=4k --iodepth=32 --size=$RAND_SIZE \
			--time_based --runtime=$((RUNTIME + 2)) > /dev/null &
		sleep 2
		emit barrier-inflight-bytes colo-async "$(dmsetup status p | awk '{ print $10 }')" B
		emit barrier-loaded colo-async "$("$TIMING" message p checkpoint)" ms
		wait
		"$CTL" checkpoint p > /dev/null || die "checkpoint"
	done

	# Memory per write in flight: the secondary holds them all.
	for rep in $(seq "$REPS"); do
		mv_signal "stall-$rep"
		mv_await "stalled-$rep" 120 || die "stall"
		before=$(kernel_kb)
		slab_before=$(slab_bytes)
		fio_json /dev/mapper/p --rw=randwrite --bs=4k --iodepth=32 --size=$RAND_SIZE \
			--number_ios=2048 > /dev/null
		read -r n bytes <<< "$(dmsetup status p | awk '{ print $9, $10 }')"
		after=$(kernel_kb)
		slab_after=$(slab_bytes)
		[ "$n" -gt 1000 ] || die "only $n writes in flight: $(dmsetup status p)"
		emit inflight-write colo-async "$(((after - before) * 1024 / n))" B
		emit inflight-counted colo-async "$(((bytes + slab_after - slab_before) / n))" B
		emit inflight-data colo-async "$((bytes / n))" B
		emit inflight-slab colo-async "$(((slab_after - slab_before) / n))" B
		mv_signal "resume-$rep"
		"$CTL" checkpoint p > /dev/null || die "checkpoint after the stall"
	done
	"$CTL" remove p > /dev/null || die "dmcoloctl remove"
	mv_signal pri-colo-done
}

# DRBD between the same VMs, on ram2.
primary_drbd() {
	local proto rep w out
	for proto in A C; do
		mv_await "sec-drbd-$proto" 300 || die "secondary drbd"
		drbd_config $proto
		if [ $proto = A ]; then
			modprobe drbd || die "modprobe drbd"
			drbd_up
		else
			out=$(drbdadm adjust bench 2>&1) || die "drbdadm adjust: $out"
		fi
		drbd_wait "cs:Connected" || die "drbd connect"
		[ $proto = C ] || drbdadm -- --clear-bitmap new-current-uuid bench ||
			die "new-current-uuid"
		drbd_wait "ds:UpToDate/UpToDate" || die "drbd uptodate"
		drbdadm primary bench || die "drbdadm primary"
		grep -q " $proto r" /proc/drbd || die "drbd protocol $proto: $(cat /proc/drbd)"
		for rep in $(seq "$REPS"); do
			for w in $WORKLOADS; do
				emit "fwd-$w" "drbd-$proto" \
					"$(PERF_LABEL=pri-$w-drbd-$proto workload $w /dev/drbd0)" \
					"$(unit_of $w)"
			done
		done
		drbdadm secondary bench || die "drbdadm secondary"
		[ $proto = C ] || drbdadm disconnect bench || die "drbdadm disconnect"
		mv_signal "pri-drbd-$proto"
	done
	drbdadm down bench
}

primary() {
	hostname bench-primary
	ramdisks
	! want colo || primary_colo
	! want drbd || primary_drbd
	mv_signal pri-done
}

# sec_perf LABEL | sec_perf stop: with BENCH_PERF_DIR (bench/run
# --profile), the secondary VM under `perf record -a -g` from LABEL to stop:
# it cannot know when each of the primary's runs starts, so one profile
# spans a whole part.
sec_perf() {
	[ -n "${BENCH_PERF_DIR:-}" ] || return 0
	if [ "$1" = stop ]; then
		kill -INT "$perf_pid" && wait "$perf_pid"
	else
		perf record -q -F 999 -a -g -o "$BENCH_PERF_DIR/sec-$1.data" &
		perf_pid=$!
	fi
}

# A fresh secondary s for each primary: start wants it idle.
colo_secondary_create() {
	"$CTL" secondary create s --disk /dev/ram0 --buffer /dev/ram1 --chunk 64k \
		--listen '[fe80::2%net0]:10809' > /dev/null || die "dmcoloctl secondary create"
}

secondary_colo() {
	local rep
	colo_secondary_create
	sec_perf colo
	mv_signal sec-colo-1
	for rep in $(seq "$REPS"); do
		mv_await "stall-$rep" 900 || die "stall"
		# nbd-server writes through the page cache: a suspended device
		# would not hold its replies back. A stopped server does.
		pkill -STOP -x nbd-server || die "no nbd-server to stop"
		mv_signal "stalled-$rep"
		mv_await "resume-$rep" 300
		pkill -CONT -x nbd-server || die "nbd-server gone"
	done
	mv_await pri-colo-done 300 || die "primary"
	sec_perf stop
	"$CTL" remove s > /dev/null || die "dmcoloctl remove"
}

secondary_drbd() {
	local proto out
	modprobe drbd || die "modprobe drbd"
	for proto in A C; do
		drbd_config $proto
		if [ $proto = A ]; then
			drbd_up
		else
			out=$(drbdadm adjust bench 2>&1) || die "drbdadm adjust: $out"
		fi
		sec_perf "drbd-$proto"
		mv_signal "sec-drbd-$proto"
		mv_await "pri-drbd-$proto" 900 || die "primary drbd $proto"
		sec_perf stop
	done
	drbdadm down bench
}

secondary() {
	hostname bench-secondary
	ramdisks
	! want colo || secondary_colo
	! want drbd || secondary_drbd
	mv_await pri-done 300
}

DMCOLO_SHARE=/mnt/share
# Socket buffers as a replication link is tuned (DRBD's guide says the
# same): room for 16 MiB in flight. Both peers run with them.
sysctl -qw net.core.rmem_max=33554432 net.core.wmem_max=33554432 \
	net.ipv4.tcp_rmem="4096 16777216 33554432" net.ipv4.tcp_wmem="4096 4194304 33554432"
[ -z "${BENCH_PERF_DIR:-}" ] || perf_ready
case ${DMCOLO_ROLE:-} in
primary) primary ;;
secondary) secondary ;;
*) die "DMCOLO_ROLE must be primary or secondary" ;;
esac
[ -z "${BENCH_PERF_DIR:-}" ] || perf_flat "$BENCH_PERF_DIR"
