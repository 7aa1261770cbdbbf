# shellcheck shell=bash
# Helpers for the dm-colo targets in the VM tests.

# fill_file FILE BYTES BYTEVALUE (octal, e.g. 021 for 0x11)
fill_file() { head -c "$2" /dev/zero | tr '\0' "\\$3" > "$1"; }

# colo_status NAME FIELD: one field (1-based) of `dmsetup status` after the
# target name.
colo_status() { dmsetup status "$1" | awk -v f="$2" '{ print $(3 + f) }'; }

# secondary_setup DISK BUFFER CHUNK_SECTORS NAME [SECTORS]: NAME
# (colo-secondary over the first SECTORS of DISK, default all of it) and
# NAME-in (colo-ingress).
secondary_setup() {
	local size=${5:-}
	[ -n "$size" ] || size=$(blockdev --getsz "$1")
	dmsetup create "$4" --table "0 $size colo-secondary $1 $2 $3" &&
	dmsetup create "$4-in" --table "0 $size colo-ingress $1"
}

# secondary_start DISK BUFFER CHUNK_SECTORS NAME [SECTORS]: the same, started.
secondary_start() { secondary_setup "$@" && dmsetup message "$4" 0 start; }

# refuse_table NAME TABLE...: creating NAME with TABLE must fail, and leave
# no device behind (a KTAP result).
refuse_table() {
	local name=$1
	shift
	if dmsetup create "$name" --table "$*" > /dev/null 2>&1; then
		ktap_fail "table refused: $*" "it was accepted"
		dm_remove "$name"
	elif dmsetup info "$name" > /dev/null 2>&1; then
		ktap_fail "table refused: $*" "device $name left behind"
	else
		ktap_ok "table refused: $*"
	fi
}

secondary_teardown() { dm_remove "$1-in" "$1"; }

# json_field JSON KEY: KEY of the one device in `dmcoloctl status NAME
# --json` (JSON), as the shell writes it (true/false for a boolean).
json_field() {
	python3 -c '
import json, sys
v = json.loads(sys.argv[1])[0][sys.argv[2]]
print(str(v).lower() if isinstance(v, bool) else v)' "$1" "$2"
}

# must_fail CMD...: succeeds when CMD fails.
must_fail() { ! "$@" > /dev/null 2>&1; }

# must_fail_quickly SECONDS CMD...: CMD fails within SECONDS. A hang is not
# the expected failure: a CMD that timeout(1) had to stop (124, or 137 once
# KILLed 10 s later) fails this check, and so does a CMD that succeeds or
# cannot run (126, 127). CMD may be a shell function (it runs in a new bash
# with every function defined, so it must not need unexported variables).
must_fail_quickly() {
	local s=$1 rc
	shift
	if [ "$(type -t "$1")" = function ]; then
		timeout -k 10 "$s" bash -c "$(declare -f); \"\$@\"" must_fail_quickly "$@" > /dev/null 2>&1
	else
		timeout -k 10 "$s" "$@" > /dev/null 2>&1
	fi
	rc=$?
	case $rc in
	0) echo "$*: succeeded"; return 1 ;;
	124|137) echo "$*: still running after $s s (a hang, not a failure)"; return 1 ;;
	126|127) echo "$*: cannot run (exit $rc)"; return 1 ;;
	esac
	return 0
}

# dm_events NAME: the device's event counter (`dmsetup wait NAME N` returns
# once it exceeds N).
dm_events() { dmsetup info -c --noheadings -o events "$1" | tr -d ' '; }

# colo_event_after NAME N SECONDS: an event beyond N is raised within
# SECONDS (the counter moved past N).
colo_event_after() {
	timeout "$3" dmsetup wait "$1" "$2" > /dev/null 2>&1
	[ "$(dm_events "$1")" -gt "$2" ] ||
		{ echo "$1: no event after $2 within $3 s (events $(dm_events "$1"))" >&2; return 1; }
}

# colo_wait_state NAME STATE SECONDS: wait until field 1 of NAME's status is
# STATE. Sleeps in `dmsetup wait` (woken by the target's events), at most a
# second at a time, so a missing event delays it but cannot hang it.
colo_wait_state() {
	local name=$1 want=$2 end=$((SECONDS + $3)) ev
	while :; do
		dmsetup info "$name" > /dev/null 2>&1 || { echo "$name: no such device" >&2; return 1; }
		ev=$(dm_events "$name")
		[ "$(colo_status "$name" 1)" = "$want" ] && return 0
		if [ $SECONDS -ge $end ]; then
			echo "$name: not $want after $3 s: $(dmsetup status "$name")" >&2
			return 1
		fi
		timeout 1 dmsetup wait "$name" "$ev" > /dev/null 2>&1
	done
}

# pwrite_direct DEV OFFSET FILE: FILE at byte OFFSET with O_DIRECT and no
# flush afterwards (write_direct ends with fsync, a flush the target may
# treat differently): the write alone. DEV must exist: it is never created
# (colo-dio opens without O_CREAT), see write_direct_dev. Up to 1 MiB per
# request; pwrite_direct_fua: each request a FUA write (RWF_DSYNC).
pwrite_direct() { "$COLO_DIO" write "$1" "$2" "$3"; }
pwrite_direct_fua() { "$COLO_DIO" write "$1" "$2" "$3" --fua; }

# write_direct_dev DEV OFFSET FILE: write_direct (O_DIRECT, then fsync) to a
# device that must exist. Without udev, libdevmapper makes /dev/mapper
# nodes itself: a write to a device whose creation failed would create a
# regular file there, which a later `dmsetup create` of the name keeps,
# and every later test of the VM would write to that file. colo-dio never
# creates DEV, so this is write_direct.
write_direct_dev() { write_direct "$@"; }

# dm_node_clean NAME...: remove /dev/mapper/NAME when it is not a block
# device (a leftover regular file, see write_direct_dev).
dm_node_clean() {
	local n
	for n in "$@"; do
		[ ! -e "/dev/mapper/$n" ] || [ -b "/dev/mapper/$n" ] || rm -f "/dev/mapper/$n"
	done
	return 0
}

# write_ms DEV OFFSET FILE: pwrite_direct, prints how long it took in ms;
# fails when the write fails or takes more than 120 s.
write_ms() {
	local t0 rc
	t0=$(date +%s%N)
	timeout 120 "$COLO_DIO" write "$1" "$2" "$3"
	rc=$?
	echo $((($(date +%s%N) - t0) / 1000000))
	return $rc
}

# ---------------------------------------------------------------------------
# Two nodes in one VM (needs blk.sh and nbd.sh): network namespaces col-pri
# and col-sec joined by veth-pri/veth-sec, IPv6 link-local fe80::1 and
# fe80::2. Only the NBD connection crosses the link; block devices and
# device-mapper are global, so the two sides' devices only differ by name.
#
#   primary:   P = colo-primary LOCAL NBDDEV ──► nbd-client -t (col-pri)
#   secondary: nbd-server (col-sec) exports S-in = colo-ingress SDISK,
#              S = colo-secondary SDISK SBUF 128, started
#
# nbd-server is Debian's reference NBD server: it honours NBD_CMD_FLUSH
# with an fsync of the export and FUA (nbd_serve turns flush and fua on,
# and trim off: dm-colo.rst, "What the NBD export must do"). It writes
# through its page cache, so a forwarded write is on
# the secondary disk only after a flush, which the primary's `checkpoint`
# sends: the secondary disk is compared after checkpoints; before one, what
# the remote acknowledged is in nbd-server's page cache (pair_remote_has).

PAIR_PORT=10809
PAIR_ADDR_PRI=fe80::2%veth-pri	# the secondary, as the primary reaches it
PAIR_ADDR_SEC=fe80::2%veth-sec	# where the secondary listens

# pair_link_up: link-local addresses (again: IPv6 flushes them when a link
# goes down), links up, the secondary reachable from the primary.
pair_link_up() {
	local i
	ip -n col-pri addr replace fe80::1/64 dev veth-pri nodad &&
	ip -n col-sec addr replace fe80::2/64 dev veth-sec nodad &&
	ip -n col-pri link set veth-pri up && ip -n col-sec link set veth-sec up || return 1
	for i in $(seq 10); do
		ip netns exec col-pri ping -6 -c 1 -W 1 "$PAIR_ADDR_PRI" > /dev/null && return 0
		[ "$i" -lt 10 ] && sleep 0.5
	done
	echo "fe80::2 unreachable from col-pri" >&2
	return 1
}

# pair_net: the two namespaces and the link (left-overs of a test that
# was killed are removed first).
pair_net() {
	pair_net_del
	ip netns add col-pri && ip netns add col-sec &&
	ip link add veth-pri netns col-pri type veth peer name veth-sec netns col-sec &&
	ip -n col-pri link set lo up && ip -n col-sec link set lo up &&
	pair_link_up
}

pair_net_del() {
	ip netns del col-pri 2>/dev/null
	ip netns del col-sec 2>/dev/null
	return 0
}

# pair_secondary S SDISK SBUF: S and S-in (64 KiB chunks), started, S-in
# exported as S by nbd-server in col-sec.
pair_secondary() {
	secondary_setup "$2" "$3" 128 "$1" &&
	dmsetup message "$1" 0 start &&
	nbd_serve "$1" "/dev/mapper/$1-in" "$PAIR_ADDR_SEC" "$PAIR_PORT" col-sec
}

# pair_connect S NBDDEV: the primary's NBD client for S's export (a
# connection NBDDEV still has, from a test that was killed, is dropped).
pair_connect() {
	[ ! -e "/sys/block/${2#/dev/}/pid" ] || nbd_disconnect "$2"
	nbd_connect "$1" "$PAIR_ADDR_PRI" "$PAIR_PORT" "$2" col-pri
}

# pair_table LOCAL REMOTE [OPTION...]: a colo-primary table over all of
# LOCAL, with the options counted.
pair_table() {
	local local=$1 remote=$2
	shift 2
	echo "0 $(blockdev --getsz "$local") colo-primary $local $remote${*:+ $# $*}"
}

# pair_primary P LOCAL NBDDEV [OPTION...]
pair_primary() {
	local p=$1
	shift
	dmsetup create "$p" --table "$(pair_table "$@")"
}

# pair_setup P LOCAL S SDISK SBUF NBDDEV [OPTION...]: the whole bed; P is
# left idle.
pair_setup() {
	local p=$1 local=$2 s=$3 sdisk=$4 sbuf=$5 nbd=$6
	shift 6
	dm_node_clean "$p" "$s" "$s-in"
	pair_net || { echo "pair_setup: network" >&2; return 1; }
	pair_secondary "$s" "$sdisk" "$sbuf" || { echo "pair_setup: secondary" >&2; return 1; }
	pair_connect "$s" "$nbd" || { echo "pair_setup: nbd-client $nbd" >&2; return 1; }
	pair_primary "$p" "$local" "$nbd" "$@" || { echo "pair_setup: colo-primary" >&2; return 1; }
}

# fdisk_setup: a secondary disk that can be made to fail, FDISK (dm
# "fdisk", linear over testdisk1; pair_test removes it); fdisk_table TABLE
# swaps its table ("linear /dev/testdisk1 0", or "error").
FDISK=/dev/mapper/fdisk
fdisk_setup() {
	PAIR_UNDER="${PAIR_UNDER:-} fdisk"
	dmsetup create fdisk --table "0 65536 linear /dev/testdisk1 0"
}
fdisk_table() { dm_swap fdisk "0 65536 $1"; }

# pair_start SECONDS: `start` to colo-primary pri, then replicating within
# SECONDS (the initial sync, if any, done).
pair_start() { dmsetup message pri 0 start && colo_wait_state pri replicating "$1"; }

# pair_teardown P S [NBDDEV...]: everything pair_setup made, whatever state
# it is in (a stopped or killed server included).
pair_teardown() {
	local p=$1 s=$2 d
	shift 2
	dm_remove "$p"
	for d in "$@"; do nbd_disconnect "$d"; done
	nbd_kill "$s"
	nbd_stop "$s"
	secondary_teardown "$s"
	pair_net_del
	dm_node_clean "$p" "$s" "$s-in"
}

# threads_stopped PID: every thread of PID is stopped (after SIGSTOP: a
# writer paused, as a VM is paused for a checkpoint).
threads_stopped() {
	local i
	for i in $(seq 200); do
		awk '$3 != "T" && $3 != "t" { busy = 1 } END { exit busy }' /proc/"$1"/task/*/stat && return 0
		sleep 0.05
	done
	echo "writer $1 does not stop"
	return 1
}

# load_stop STOPFILE [PID...]: end a test's background load: STOPFILE asks
# its loops to end, the PIDs (fio) are killed, and every child is waited for.
load_stop() {
	local pid
	touch "$1"
	shift
	for pid in "$@"; do kill "$pid" 2>/dev/null; done
	wait
}

# pair_test SCRATCH [NBDDEV...]: a two-node test in one VM. Sets the
# names such a test uses (P, S, LOCAL, SDISK, SBUF, NBD, OVERLAP) and its
# clean-up (vm_test_on_exit): the pair with its NBDDEVs (default $NBD),
# then the devices named in PAIR_UNDER (under the pair: a slow or failing
# disk) and the nbd module.
pair_test() {
	local scratch=$1
	shift
	# shellcheck disable=SC2034 # names for the test that calls this
	P=/dev/mapper/pri S=/dev/mapper/sec
	LOCAL=/dev/testdisk0 SDISK=/dev/testdisk1 SBUF=/dev/testdisk2 NBD=/dev/nbd0
	OVERLAP=$DMCOLO_TOP/build/tests/colo-overlap
	_pair_nbds=("${@:-$NBD}")
	vm_test_on_exit "$scratch"
}

pair_test_teardown() {
	pair_teardown pri sec "${_pair_nbds[@]}"
	# shellcheck disable=SC2086 # a list of names
	[ -z "${PAIR_UNDER:-}" ] || dm_remove $PAIR_UNDER
	rmmod nbd 2>/dev/null
}

# pair_reconnect P S OLD NEW: the remote back on a new NBD device (OLD is
# still held by P's table): connect NEW, reload P with NEW as remote_dev,
# `resync`, disconnect OLD. After a failure, kill the server's stale
# connections first (nbd_kill_conns S): such a process may otherwise still
# apply writes queued before the break after the resync rewrote them.
pair_reconnect() {
	local p=$1 s=$2 old=$3 new=$4 table
	pair_connect "$s" "$new" || { echo "pair_reconnect: nbd-client $new" >&2; return 1; }
	table=$(dmsetup table "$p" | awk -v r="$new" '{ $5 = r; print }')
	if ! { dmsetup suspend "$p" && dmsetup load "$p" --table "$table" && dmsetup resume "$p"; }; then
		echo "pair_reconnect: reload with $table failed" >&2
		dmsetup resume "$p"
		return 1
	fi
	dmsetup message "$p" 0 resync ||
		{ echo "pair_reconnect: resync: $(dmsetup status "$p")" >&2; return 1; }
	nbd_disconnect "$old"
	return 0
}

# pair_remote_has S OFFSET FILE: what S's nbd-server wrote holds FILE's
# bytes at OFFSET. A buffered read of S-in shares nbd-server's page cache,
# where an acknowledged write is at once; the secondary disk has it only
# after a flush (the trap: reading the disk before a checkpoint may show
# old bytes even though the remote acknowledged the write).
pair_remote_has() {
	local got rc
	got=$(mktemp)
	dd if="/dev/mapper/$1-in" bs=64K skip="$2" count="$(stat -c %s "$3")" \
		iflag=skip_bytes,count_bytes status=none > "$got" && cmp "$got" "$3"
	rc=$?
	rm -f "$got"
	return $rc
}

# two_node_checkpoint P S: what the orchestrator does with both VMs paused:
# the primary's checkpoint (every forwarded write acknowledged, then a
# flush through NBD), then the secondary's (buffer dropped).
two_node_checkpoint() {
	timeout 120 dmsetup message "$1" 0 checkpoint ||
		{ echo "primary checkpoint failed: $(dmsetup status "$1")" >&2; return 1; }
	timeout 60 dmsetup message "$2" 0 checkpoint ||
		{ echo "secondary checkpoint failed: $(dmsetup status "$2")" >&2; return 1; }
}

# three_way_same LOCAL SDISK SVIEW [BYTES]: the primary's local disk, the
# secondary disk and the secondary view hold the same first BYTES (default:
# all of SVIEW), read with O_DIRECT into files and compared with cmp.
three_way_same() {
	local bytes=${4:-$(blockdev --getsize64 "$3")} dir rc=0
	dir=$(mktemp -d /tmp/3way.XXXXXX) || return 1
	if ! { read_direct "$1" 0 "$bytes" > "$dir/local" &&
	       read_direct "$2" 0 "$bytes" > "$dir/sdisk" &&
	       read_direct "$3" 0 "$bytes" > "$dir/sview"; }; then
		echo "three_way_same: read failed" >&2
		rc=1
	fi
	if [ $rc -eq 0 ] && [ "$(stat -c %s "$dir/local")" != "$bytes" ]; then
		echo "three_way_same: short read" >&2
		rc=1
	fi
	[ $rc -ne 0 ] || cmp "$dir/local" "$dir/sdisk" || { echo "primary disk $1 != secondary disk $2" >&2; rc=1; }
	[ $rc -ne 0 ] || cmp "$dir/local" "$dir/sview" || { echo "primary disk $1 != secondary view $3" >&2; rc=1; }
	rm -rf "$dir"
	return $rc
}

# colo_fields NAME FIELD...: several status fields (as colo_status numbers
# them) from one `dmsetup status`, so they belong to the same moment.
colo_fields() {
	local name=$1
	shift
	dmsetup status "$name" | awk -v f="$*" '{
		n = split(f, a, " "); s = ""
		for (i = 1; i <= n; i++) s = s (i > 1 ? " " : "") $(3 + a[i])
		print s
	}'
}

# writeback_save / writeback_off / writeback_restore: periodic page-cache
# writeback off, so that what nbd-server acknowledged stays in its page
# cache until a flush asks for it. writeback_save (in the test's own shell,
# not in a check) keeps the values that writeback_restore (vm_test_cleanup) puts
# back.
WB_SYSCTL=/proc/sys/vm/dirty_writeback_centisecs EXP_SYSCTL=/proc/sys/vm/dirty_expire_centisecs
writeback_save() { _wb_saved="$(cat $WB_SYSCTL) $(cat $EXP_SYSCTL)"; }
writeback_off() { echo 0 > $WB_SYSCTL && echo 360000 > $EXP_SYSCTL; }
writeback_restore() {
	[ -n "${_wb_saved:-}" ] || return 0
	echo "${_wb_saved% *}" > $WB_SYSCTL
	echo "${_wb_saved#* }" > $EXP_SYSCTL
}

# primary_writers DEV BYTES SEED LOG: two fio jobs writing random data to
# the first BYTES of DEV at queue depth 32 each (libaio, O_DIRECT), for up
# to 2 minutes or until their first error (the EIO of a fence or a
# removal). Runs in the foreground: start it with & and keep $!.
primary_writers() {
	fio --name=primary --filename="$1" --direct=1 --ioengine=libaio --iodepth=32 \
		--numjobs=2 --rw=randwrite --bsrange=4k-64k --size="$2" --time_based \
		--runtime=120 --randseed="$3" --output="$4" > /dev/null 2>&1
}

# colo_count_reaches NAME FIELD N SECONDS: the counter in status field
# FIELD of NAME reaches N within SECONDS: a load that was started is really
# writing (fio may take seconds to start under TCG). Fields: colo-ingress
# 2 = primary writes passed to the disk; colo-secondary 6 = secondary writes.
colo_count_reaches() {
	local _
	for _ in $(seq $(($4 * 10))); do
		[ "$(colo_status "$1" "$2")" -ge "$3" ] 2>/dev/null && return 0
		sleep 0.1
	done
	echo "$1: field $2 is $(colo_status "$1" "$2"), not $3, after $4 s"
	return 1
}

# colo_load NORMAL DEBUG: the debug kernel (KASAN, lockdep, kmemleak) runs
# I/O several times slower under TCG; it gets the lighter load, which still
# takes every path.
colo_load() {
	case $(uname -r) in
	*-dmcolo-debug) echo "$2" ;;
	*) echo "$1" ;;
	esac
}

# colo_by_kernel DEB61 DEB612 DEBUG: the value for the kernel running
# (deb61 and any other 6.1, the debug kernel, else deb612's): for a load
# that one kernel must carry whole (deb61's parallel vCPUs for a race)
# and the others only in part.
colo_by_kernel() {
	case $(uname -r) in
	*-dmcolo-debug) echo "$3" ;;
	6.1.*) echo "$1" ;;
	*) echo "$2" ;;
	esac
}

# colo_first_seed TOTAL: deb61 and deb612 each run half of TOTAL seeds, a
# different half (deb61 from 1, deb612 from TOTAL / 2 + 1): together
# they cover what one kernel running all of them would, in half the time.
colo_first_seed() { colo_by_kernel 1 $(($1 / 2 + 1)) 1; }

# --- dmcoloctl on the two nodes of pair_net

CTL=$DMCOLO_TOP/tools/dmcoloctl/dmcoloctl
pri() { ip netns exec col-pri "$CTL" "$@"; }
sec() { ip netns exec col-sec "$CTL" "$@"; }

# ctl_test SCRATCH [DM...]: a dmcoloctl test on the two nodes of pair_net,
# with primary p and secondary s: the disks' names, and its clean-up
# (vm_test_on_exit): ctl_teardown p s DM...
ctl_test() {
	local scratch=$1
	shift
	# shellcheck disable=SC2034 # names for the test that calls this
	LOCAL=/dev/testdisk0 SDISK=/dev/testdisk1 SBUF=/dev/testdisk2
	_ctl_test=yes _ctl_dm=("$@")
	vm_test_on_exit "$scratch"
}

# ctl_teardown P S [DM...]: whatever dmcoloctl made for primary P and
# secondary S, the DM devices named, every NBD link, the namespaces and
# nbd, whatever state a failed test left them in.
ctl_teardown() {
	local p=$1 s=$2 d
	shift 2
	pri remove "$p" > /dev/null 2>&1
	sec remove "$s" > /dev/null 2>&1
	pkill -f "dmcoloctl agent" 2>/dev/null
	dm_remove "$p" "$s" "$s-ingress" "$@"
	for d in /dev/nbd*; do nbd_disconnect "$d"; done
	pair_net_del
	rmmod nbd 2>/dev/null
	rm -rf /run/dmcolo
}
