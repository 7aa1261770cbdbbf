# shellcheck shell=bash
# Tests with two VMs (tests/multivm). Such a test runs on the host: it boots
# its VMs with tests/vm/run in the background, each running the test file
# itself in a role (DMCOLO_ROLE=primary|secondary) under tests/vm/guest-suite
# (kernel log markers, module unload and kmemleak at the end), and the
# sides synchronise through files in a directory all of them see (the host
# at $DMCOLO_SHARE, each VM at /mnt/share). The VMs are joined by
# -netdev stream over a unix socket: the primary listens (it is booted
# first), the secondary connects, so a secondary VM that is killed can be
# booted again and connect again. Inside, the primary is fe80::1 and the
# secondary fe80::2 on net0.
#
# tests/run calls a test with DMCOLO_KERNEL and DMCOLO_RESULTS (a directory
# for this test alone); each VM's results (console.log, the role's KTAP,
# kmemleak) are in DMCOLO_RESULTS/VM/, where the runner looks for kernel
# reports. Run by hand: DMCOLO_KERNEL=deb612 DMCOLO_RESULTS=/tmp/x tests/multivm/NNN-name.sh

MV_SCALE=1
[ "${DMCOLO_KERNEL:-}" = debug ] && MV_SCALE=3	# KASAN + lockdep under TCG

# mv_signal NAME [TEXT]: tell the other sides NAME (with TEXT in it).
mv_signal() {
	echo "${2:-}" > "$DMCOLO_SHARE/.$1" && mv "$DMCOLO_SHARE/.$1" "$DMCOLO_SHARE/$1"
}

# mv_sleep SECONDS: a sleep without a fork: read -t on a FIFO that only
# this shell holds open (the test VMs have no /dev/fd for <(...)). A forked
# sleep(1) five times a second took 12% of a TCG VM's CPU (perf, the
# benchmarks' secondary), taken from what it measured.
mv_sleep() {
	local fifo
	if [ -z "${MV_SLEEP_FD:-}" ]; then
		fifo=$(mktemp -u /tmp/mv-sleep.XXXXXX) && mkfifo "$fifo" &&
			exec {MV_SLEEP_FD}<> "$fifo" && rm -f "$fifo" || { sleep "$1"; return; }
	fi
	read -rt "$1" -u "$MV_SLEEP_FD" || true
}

# mv_await NAME SECONDS: until another side signalled NAME (scaled on the
# debug kernel); fails after SECONDS, or at once when the side said "fail"
# (mv_signal abort).
mv_await() {
	local end=$((SECONDS + $2 * MV_SCALE))
	while [ ! -e "$DMCOLO_SHARE/$1" ]; do
		[ ! -e "$DMCOLO_SHARE/abort" ] ||
			{ echo "waiting for $1: aborted: $(cat "$DMCOLO_SHARE/abort")" >&2; return 1; }
		[ $SECONDS -lt $end ] || { echo "waiting for $1: timed out" >&2; return 1; }
		mv_sleep 0.2
	done
}

# mv_text NAME: what was signalled with NAME.
mv_text() { cat "$DMCOLO_SHARE/$1"; }

# --- host side

declare -A MV_PID=()

# mv_setup: the share and the socket's directory (a unix socket path must
# be short).
mv_setup() {
	: "${DMCOLO_RESULTS:?}"
	MV_KERNEL=${DMCOLO_KERNEL:-deb612}
	MV_TEST=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
	DMCOLO_SHARE=$DMCOLO_RESULTS/share
	rm -rf "$DMCOLO_SHARE"
	mkdir -p "$DMCOLO_SHARE"
	MV_SOCKDIR=$(mktemp -d /tmp/dmcolo-mv.XXXXXX)
	MV_SOCK=$MV_SOCKDIR/net.sock
	trap mv_cleanup EXIT
	trap 'exit 124' TERM
}

# mv_boot VM ROLE SECONDS [tests/vm/run OPTION...]: boot VM (a name for its
# results directory) in the background, running this test as ROLE; qemu is
# killed after SECONDS (scaled). The primary (--net-listen) must be booted
# first: returns once its guest's link is up and quiet (see guest-init).
mv_boot() {
	local vm=$1 role=$2 tmo=$(($3 * MV_SCALE)) dir
	shift 3
	dir=$DMCOLO_RESULTS/$vm
	rm -rf "$dir"
	mkdir -p "$dir"
	"$DMCOLO_TOP/tests/vm/run" --kernel "$MV_KERNEL" --mem 1536 --quiet --results "$dir" \
		--share "$DMCOLO_SHARE" --timeout "$tmo" "$@" -- \
		env DMCOLO_ROLE="$role" tests/vm/guest-suite "$MV_TEST" \
		> "$dir/vm.out" 2> "$dir/vm.err" &
	MV_PID[$vm]=$!
	case " $* " in
	*" --net-listen "*)
		for _ in $(seq $((3000 * MV_SCALE))); do
			if [ -S "$MV_SOCK" ] && [ -e "$dir/net.up" ]; then
				sleep 3	# the link-up's MLD reports
				return 0
			fi
			kill -0 "${MV_PID[$vm]}" 2>/dev/null || break
			sleep 0.1
		done
		echo "$vm: the VM's link did not come up: $(cat "$dir/vm.err")" >&2
		return 1 ;;
	esac
	return 0
}

# mv_boot_pair PRI_SECONDS SEC_SECONDS SIZE: the disks (the primary's
# random, also in the share as `initial`; the secondary's disk and buffer
# empty; SIZE bytes each), then the primary VM (listening) and the
# secondary VM (connecting) booted on them (a result).
mv_boot_pair() {
	local W=$DMCOLO_RESULTS what="boot the primary VM (listening) and the secondary VM (connecting)"
	random_file "$W/pdisk" "$3"
	cp "$W/pdisk" "$DMCOLO_SHARE/initial"
	rm -f "$W/sdisk" "$W/sbuf"
	truncate -s "$3" "$W/sdisk" "$W/sbuf"
	if mv_boot primary primary "$1" --net-listen "$MV_SOCK" --net-id 1 --disk "$W/pdisk" &&
	   mv_boot secondary secondary "$2" --net-connect "$MV_SOCK" --net-id 2 \
		--disk "$W/sdisk" --disk "$W/sbuf"; then
		ktap_ok "$what"
	else
		ktap_fail "$what"
	fi
}

# mv_wait VM: until VM's tests/vm/run has ended; its exit status.
mv_wait() {
	local rc
	wait "${MV_PID[$1]}"
	rc=$?
	unset "MV_PID[$1]"
	return $rc
}

# mv_kill VM: SIGKILL to VM's qemu (the host dies), then reap its vm/run.
mv_kill() {
	local pid
	pid=$(cat "$DMCOLO_RESULTS/$1/qemu.pid" 2>/dev/null) && [ -n "$pid" ] ||
		{ echo "$1: no qemu.pid" >&2; return 1; }
	kill -KILL "$pid" || return 1
	mv_wait "$1"
	! kill -0 "$pid" 2>/dev/null
}

mv_cleanup() {
	local vm pid
	for vm in "${!MV_PID[@]}"; do
		pid=$(cat "$DMCOLO_RESULTS/$vm/qemu.pid" 2>/dev/null)
		[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null
		wait "${MV_PID[$vm]}" 2>/dev/null
	done
	rm -rf "$MV_SOCKDIR"
}

# mv_relay VM PLAN: VM's KTAP results as this test's results, named
# "VM: ...", its `# figure:` lines too; a VM that gave fewer than PLAN
# results fails the rest ("missing"), with the end of its output.
mv_relay() {
	local vm=$1 plan=$2 out got=0 line sub
	out=$DMCOLO_RESULTS/$vm/$(basename "$MV_TEST" .sh).out
	[ -f "$out" ] || : > "$out"
	while IFS= read -r line; do
		case $line in
		"# figure: "*) echo "$line"; continue ;;
		"ok "[0-9]*|"not ok "[0-9]*) ;;
		*) continue ;;
		esac
		got=$((got + 1))
		[ $got -le "$plan" ] || { ktap_fail "$vm: more results than planned: $line"; continue; }
		sub=$(echo "$line" | sed -E 's/^(not )?ok [0-9]+ -? ?//')
		case $line in
		"not ok "*) ktap_fail "$vm: $sub" ;;
		*"# SKIP"*) ktap_skip "$vm: ${sub%% # SKIP*}" "${sub#*# SKIP }" ;;
		*) ktap_ok "$vm: $sub" ;;
		esac
	done < "$out"
	if grep -qE '^not ok ' "$out" || [ $got -lt "$plan" ]; then
		grep -vE '^(ok |TAP version|1\.\.|# figure: )' "$out" | sed "s/^/# $vm: /" | tail -n 30
	fi
	while [ $got -lt "$plan" ]; do
		got=$((got + 1))
		ktap_fail "$vm: result $got of $plan missing"
	done
	if [ ! -s "$out" ]; then
		{ cat "$DMCOLO_RESULTS/$vm/vm.err"; tail -n 15 "$DMCOLO_RESULTS/$vm/console.log"; } 2>/dev/null |
			sed "s/^/# $vm: /"
	fi
}

# --- guest side

# mv_guest_abort WHY: this side cannot go on; the others stop waiting.
mv_guest_abort() { mv_signal abort "${DMCOLO_ROLE:-?}: $1"; }

# mv_primary_start: the primary VM's first five steps: its disk (/dev/vda)
# holds the host's initial image, the secondary was created and answers on
# the link, then dmcoloctl creates colo-primary p over it, replicating to
# the secondary's export s, and starts it (the initial sync).
mv_primary_start() {
	step "the primary disk holds the host's initial image" \
		same_bytes /dev/vda 0 "$DMCOLO_SHARE/initial"
	step "the secondary was created" mv_await sec-created 600
	step "the secondary VM answers on the link (fe80::2%net0)" ping -6 -c 1 -W 5 fe80::2%net0
	step "dmcoloctl primary create over the link" "$CTL" primary create p --disk /dev/vda \
		--secondary '[fe80::2%net0]:10809' --export s --timeout $((10 * MV_SCALE))
	step "dmcoloctl start: initial sync, then the secondary" "$CTL" start p
}

# step NAME CMD...: ktap_check; on failure the other sides stop waiting
# (mv_guest_abort) and this side ends here (its missing results fail on the
# host).
step() {
	ktap_check "$@" && return 0
	mv_guest_abort "$1"
	exit 1
}
