#!/bin/bash
# The operator's workflow with dmcoloctl only: two network namespaces in one
# VM (col-pri, col-sec) joined by veth, disks on brd. Bad input first (exit
# codes and one-line errors), then: secondary create, primary create, start
# (initial sync, then the secondary: the tool enforces the order), a fio
# verify workload with periodic two-node checkpoints, QEMU's qemu-io
# (-f raw -n, i.e. cache=none) writing and verifying patterns on both
# devices, the agent's epoch rule (a retried checkpoint is not applied twice,
# a skipped one is refused, a caller without an NBD connection is refused),
# writes through the secondary view, then the primary dies (link down, its
# nbd-client killed), `dmcoloctl failover`, and the secondary disk must equal
# exactly the last checkpoint image plus the secondary's writes.
# Only on deb612: dmcoloctl's workflow; its kernel paths are 020-028's,
# which the other kernels run.
# kernels: deb612
# timeout: 600
. "$(dirname "$0")/../lib/vm-test.sh"

MiB=$((1 << 20))
SEC_LISTEN="[fe80::2%veth-sec]:10809" SEC_ADDR="[fe80::2%veth-pri]:10809"
T=/tmp/ctl
ctl_test $T tiny

# exit_is CODE PATTERN CMD...: CMD exits with CODE and says PATTERN on stderr
# in one line.
exit_is() {
	local want=$1 pattern=$2 err rc
	shift 2
	err=$("$@" 2>&1 > /dev/null)
	rc=$?
	[ "$rc" = "$want" ] || { echo "exit $rc, want $want: $err" >&2; return 1; }
	[ "$(echo "$err" | wc -l)" = 1 ] || { echo "not one line: $err" >&2; return 1; }
	echo "$err" | grep -q -- "$pattern" || { echo "no '$pattern' in: $err" >&2; return 1; }
}
# json_is_status: `status --json` on stdin is one JSON array, and each of
# its devices' kernel fields, put back in the target's status order, is
# that device's `dmsetup status` line (dm-colo.rst, "Status").
json_is_status() {
	python3 -c '
import json, subprocess, sys
order = {
    "colo-secondary": "{state} {epoch} {buffered}/{capacity} {merged}/{to_merge} {copies} {secondary_writes} {error}",
    "colo-ingress": "{state} {writes} {refused}",
    "colo-primary": "{state} {mode} {in_sync}/{regions} {copied} {forwarded} {forwarding} {bytes_in_flight} {peak_bytes} {remote_errors} {error}",
}
devices = json.load(sys.stdin)
assert len(devices) >= 3, devices
for d in devices:
    line = subprocess.run(["dmsetup", "status", d["name"]], capture_output=True,
                          text=True, check=True).stdout.split(None, 3)
    assert line[2] == d["target"], (line, d)
    assert order[d["target"]].format(**d) == line[3].strip(), (line, d)
'
}
state_of() { json_field "$($1 status "$2" --json)" state; }
# nbd_source NS: the local address of NS's NBD connection (a veth has a
# second, generated link-local address; the kernel may pick either).
nbd_source() {
	ip netns exec "$1" ss -Htn state established '( dport = :10809 )' |
		awk 'NR == 1 { a = $3; sub(/:[0-9]+$/, "", a); gsub(/[][]/, "", a); sub(/%.*/, "", a); print a }'
}
# agent_raw NS ADDR SRC_ADDR SRC_PORT LINE: one request to the agent from
# SRC_ADDR ("nbd": the one NS's NBD connection uses) and SRC_PORT, its
# reply line. A port still in TIME_WAIT from an earlier call (this client
# closed first) is in use: go down from SRC_PORT to the next free one, in
# the same range (privileged or not), as dmcoloctl does.
agent_raw() {
	local src=$3
	[ "$src" != nbd ] || src=$(nbd_source "$1")
	ip netns exec "$1" /usr/bin/python3 - "$2" "$src" "$4" "$5" <<-'PY'
	import errno, socket, sys
	host, src_addr, src, line = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
	addr = socket.getaddrinfo(host, 10810, socket.AF_INET6, socket.SOCK_STREAM)[0][4]
	s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
	for port in range(src, src - 64, -1):
	    try:
	        s.bind((src_addr, port, 0, addr[3]))
	        break
	    except OSError as e:
	        if e.errno != errno.EADDRINUSE or port == src - 63:
	            raise
	s.connect(addr)
	s.sendall((line + "\n").encode())
	print(s.makefile().readline().strip())
	PY
}

rm -rf $T /run/dmcolo
mkdir -p $T
disk_setup 3 32
random_file $T/initial $((32 * MiB))
write_direct $LOCAL 0 $T/initial	# the primary's disk before replication

ktap_plan 50
ktap_check "two namespaces, veth, IPv6 link-local" pair_net

# --- bad input: usage 2, failed 1, peer 3, state 4
ktap_check "unknown command: exit 2" exit_is 2 "unknown command 'frobnicate'" "$CTL" frobnicate
ktap_check "secondary create without --listen: exit 2" exit_is 2 "are required" \
	sec secondary create s --disk $SDISK --buffer $SBUF
ktap_check "buffer = disk: exit 1" exit_is 1 "is the disk" \
	sec secondary create s --disk $SDISK --buffer $SDISK --listen "$SEC_LISTEN"
dmsetup create tiny --table "0 8 linear $SBUF 0"
ktap_check "buffer smaller than one chunk: exit 1, names both" \
	exit_is 1 "buffer /dev/mapper/tiny (4096 bytes) smaller than one chunk (65536 bytes)" \
	sec secondary create s --disk $SDISK --buffer /dev/mapper/tiny --chunk 64k --listen "$SEC_LISTEN"
dm_remove tiny
ktap_check "half the TLS options: exit 2" exit_is 2 "needs all of" \
	sec secondary create s --disk $SDISK --buffer $SBUF --listen "$SEC_LISTEN" --tls-cert /etc/hostname
ktap_check "primary create with no secondary listening: exit 3, refused" \
	exit_is 3 "refused the connection" \
	pri primary create p --disk $LOCAL --secondary "$SEC_ADDR" --export s
nothing_left() {
	[ -z "$(dmsetup ls | grep -v 'No devices')" ] && [ ! -e /run/dmcolo/p ] && [ ! -e /run/dmcolo/s ] &&
		! grep -q . /sys/block/nbd*/pid 2>/dev/null
}
ktap_check "failed creates leave no device, no state, no NBD link" nothing_left

# --- the pair
ktap_check "secondary create" sec secondary create s --disk $SDISK --buffer $SBUF --chunk 64k \
	--listen "$SEC_LISTEN"
ktap_check "primary create (free /dev/nbdX, timeout 5 s)" \
	pri primary create p --disk $LOCAL --secondary "$SEC_ADDR" --export s --timeout 5
ktap_check "checkpoint before start: exit 4" exit_is 4 "idle, not replicating" pri checkpoint p
ktap_check "start on the secondary is refused: exit 2" exit_is 2 "start the pair from the primary" \
	sec start s
ktap_check "start p --no-wait: the sync runs" pri start p --no-wait
ktap_check "watch p: follows the sync to its end" pri watch p
pri start p > $T/start.out 2>&1
rc=$?
sed 's/^/# /' $T/start.out | tail -n 4
ktap_check "start p again: barrier, secondary started" test $rc = 0
started() { [ "$(state_of pri p)" = replicating ] && [ "$(state_of sec s)" = running ]; }
ktap_check "primary replicating, secondary running (status --json)" started
ktap_check "status --json: one JSON document, the kernel's fields exact" \
	eval '"$CTL" status --json | json_is_status'
ktap_check "the initial sync copied the whole primary disk" same_bytes $SDISK 0 $T/initial
ktap_check "start again: already running, exit 0" pri start p

# --- workload with periodic checkpoints
fio --name=ctl --filename=/dev/mapper/p --direct=1 --ioengine=psync --rw=randwrite \
	--bsrange=4k-64k --size="$(colo_load 8M 2M)" --verify=crc32c --do_verify=1 \
	--verify_fatal=1 --output=$T/fio.log > /dev/null 2>&1 &
fio_pid=$!
cps=0
for i in 1 2 3; do
	sleep 1
	pri checkpoint p > $T/cp.out 2>&1 && cps=$((cps + 1))
	sed 's/^/# /' $T/cp.out
done
wait $fio_pid
fio_rc=$?
ktap_check "fio verify on the primary device" test $fio_rc = 0
ktap_check "3 two-node checkpoints during the workload" test $cps = 3

# --- QEMU's qemu-io on both devices (raw, cache=none)
qio() { qemu-io -f raw -n "$@"; }
# qio_verify DEV: qemu-io reads both patterns back. A mismatch still prints
# "read N/N bytes" (after "Pattern verification failed"): what counts is
# qemu-io's exit status, no such line, and both reads complete.
qio_verify() {
	local out rc
	out=$(qio -c "read -P 0x5a 16M 256k" -c "read -P 0xa5 20M 64k" "$1" 2>&1)
	rc=$?
	echo "$out"
	[ $rc = 0 ] && ! grep -q "Pattern verification failed" <<< "$out" &&
		grep -q "^read 262144/262144 bytes at offset 16777216" <<< "$out" &&
		grep -q "^read 65536/65536 bytes at offset 20971520" <<< "$out"
}
qemu_primary() {
	qio -c "write -P 0x5a 16M 256k" -c "write -P 0xa5 20M 64k" /dev/mapper/p > /dev/null &&
		qio_verify /dev/mapper/p
}
ktap_check "qemu-io writes and verifies patterns on the primary device" qemu_primary
ktap_check "two-node checkpoint" pri checkpoint p
ktap_check "primary disk = secondary disk = secondary view" three_way_same $LOCAL $SDISK /dev/mapper/s
qemu_secondary_view() { qio_verify /dev/mapper/s; }
ktap_check "qemu-io on the secondary view reads the primary's patterns" qemu_secondary_view

# --- the agent's rules
epoch=$(json_field "$(sec status s --json)" epoch)
ktap_check "a retried checkpoint (same epoch) is answered 'already'" \
	grep -q "^OK running $epoch already" <<< "$(agent_raw col-pri fe80::2%veth-pri nbd 700 "CHECKPOINT s $epoch")"
ktap_check "... and not applied: the secondary epoch is unchanged" \
	test "$(json_field "$(sec status s --json)" epoch)" = "$epoch"
ktap_check "a skipped epoch is refused" \
	grep -q "^ERR state: epoch mismatch" <<< "$(agent_raw col-pri fe80::2%veth-pri nbd 700 "CHECKPOINT s $((epoch + 2))")"
ktap_check "a caller without an NBD connection is refused" \
	grep -q "^ERR refused" <<< "$(agent_raw col-sec fe80::2%veth-sec fe80::2 700 "STATUS s")"
ktap_check "a caller from an unprivileged source port is refused" \
	grep -q "^ERR refused" <<< "$(agent_raw col-pri fe80::2%veth-pri nbd 40000 "STATUS s")"
# A checkpoint made behind the primary's back (--local on the secondary):
# the primary's next checkpoint must not take the secondary's "already" for
# its own retry, but make one more.
behind_back() {
	sec checkpoint s --local > /dev/null && pri checkpoint p > $T/cp.out &&
		grep -q "checkpoint epoch $((epoch + 2)):" $T/cp.out &&
		test "$(json_field "$(sec status s --json)" epoch)" = $((epoch + 2))
}
ktap_check "a stale epoch on the primary: its checkpoint applies a new one" behind_back

# --- the link breaks and comes back: resync reconnects and catches up
random_file $T/during 65536
link_break() {
	ip -n col-pri link set veth-pri down &&
		write_direct /dev/mapper/p $((2 * MiB)) $T/during &&
		colo_wait_state p degraded 60
}
ktap_check "link down, a write: the primary degrades after the NBD timeout" link_break
ktap_check "checkpoint while degraded: exit 4" exit_is 4 "degraded, not replicating" pri checkpoint p
relink() { pair_link_up && pri resync p; }
ktap_check "link up; dmcoloctl resync: new NBD device, reload, resync" relink
ktap_check "watch p: replicating again" pri watch p
ktap_check "two-node checkpoint after the resync" pri checkpoint p
ktap_check "primary disk = secondary disk = secondary view" three_way_same $LOCAL $SDISK /dev/mapper/s

# --- the last checkpoint image, then writes that failover must sort out
read_direct $LOCAL 0 $((32 * MiB)) > $T/image
random_file $T/sw1 $((128 << 10))
random_file $T/sw2 4096
random_file $T/pw $((256 << 10))
secondary_writes() {
	qio -c "write -P 0x3c 4M 64k" /dev/mapper/s > /dev/null &&
		write_direct /dev/mapper/s $((8 * MiB)) $T/sw1 &&
		write_direct /dev/mapper/s $((12 * MiB + 4096)) $T/sw2
}
ktap_check "secondary writes (qemu-io and dd) through the secondary view" secondary_writes
# The primary writes over one of them and elsewhere; its barrier puts them
# on the secondary disk, so failover has to undo them.
primary_after() {
	write_direct /dev/mapper/p $((8 * MiB)) $T/pw && write_direct /dev/mapper/p $((24 * MiB)) $T/pw &&
		pri checkpoint p --local > /dev/null
}
ktap_check "primary writes after the checkpoint, on the secondary disk (local barrier)" primary_after
ktap_check "... they are on the secondary disk" same_bytes $SDISK $((24 * MiB)) $T/pw

# --- the primary dies
kill_primary() {
	local nbd
	nbd=$(sed -n 's/^nbd_dev=//p' /run/dmcolo/p/state)
	ip -n col-pri link set veth-pri down &&
		kill -9 "$(cat "/sys/block/${nbd#/dev/}/pid")"
}
ktap_check "kill the primary side (link down, nbd-client killed)" kill_primary
sec failover s > $T/failover.out 2>&1
rc=$?
sed 's/^/# /' $T/failover.out | tail -n 2
ktap_check "dmcoloctl failover: merged, standalone" test $rc = 0
# The expected disk: the image, the secondary's three writes on top.
expected() {
	cp $T/image $T/expected &&
		head -c $((64 << 10)) /dev/zero | tr '\0' '\074' |
		dd of=$T/expected bs=4096 seek=$((4 * MiB)) oflag=seek_bytes conv=notrunc status=none &&
		dd if=$T/sw1 of=$T/expected bs=4096 seek=$((8 * MiB)) oflag=seek_bytes conv=notrunc status=none &&
		dd if=$T/sw2 of=$T/expected bs=4096 seek=$((12 * MiB + 4096)) oflag=seek_bytes conv=notrunc status=none
}
ktap_check "build the expected image" expected
ktap_check "secondary disk = last checkpoint image + the secondary's writes, exactly" \
	same_bytes $SDISK 0 $T/expected
ktap_check "the secondary device reads the same" same_bytes /dev/mapper/s 0 $T/expected
after_failover() {
	local j
	j=$(sec status s --json)
	[ "$(json_field "$j" state)" = standalone ] && [ "$(json_field "$j" nbd_server)" = false ] &&
		[ "$(json_field "$j" fenced)" = true ]
}
ktap_check "status: standalone, NBD server stopped, fenced" after_failover
status_text() {
	"$CTL" status > $T/status.txt &&
		grep -q '^p: colo-primary, ' $T/status.txt && grep -q '^s: colo-secondary, standalone' $T/status.txt &&
		grep -q '^s-ingress: colo-ingress, fenced' $T/status.txt
}
ktap_check "status (text) lists the three devices" status_text

# --- teardown
ktap_check "remove p (its dead link too)" pri remove p
ktap_check "remove s" sec remove s
gone() {
	nothing_left && ! pgrep -x nbd-server > /dev/null && ! pgrep -f "dmcoloctl agent" > /dev/null
}
ktap_check "nothing left: no dm device, no nbd-server, no agent, no state" gone
ktap_finish
