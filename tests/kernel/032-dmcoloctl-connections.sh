#!/bin/bash
# The NBD link and a stalled export. dmcoloctl refuses --connections 2:
# with two sockets the kernel's client resends a timed-out write on the
# other one while the stalled server process of the first still holds it;
# resumed, that process applies it over the newer overlapping write that
# colo-primary sent meanwhile, and the secondary silently differs.
# With the one socket: a sync-mode fio verify workload at queue depth 32
# replicates exactly; then the server process is stopped (SIGSTOP) for
# longer than the NBD timeout while overlapping writes stream: the device
# degrades, the writes go on locally, each exact. The stopped process is
# resumed first (it applies what it had received), then `dmcoloctl resync`
# drops the old connection, reconnects and copies the marked regions: after
# a checkpoint the three disks are identical.
# (Over --connections 2 the same stall would let nbd requeue the stalled
# socket's writes on the other one: reasoned from nbd_xmit_timeout(), not
# reproduced here.)
# Only on deb612: dmcoloctl's workflow (the kernel paths are 022's).
# kernels: deb612
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

T=/tmp/conns
ctl_test $T

# server_children: the nbd-server processes serving a connection.
server_children() { pgrep -P "$(cat /run/dmcolo/s/nbd-server.pid)" -x nbd-server; }
# show_sockets: bytes each NBD socket carried (a comment: which sockets the
# kernel picks depends on the CPUs the submitting work ran on).
show_sockets() {
	ip netns exec col-pri ss -Htni state established '( dport = :10809 )' |
		grep -o 'bytes_acked:[0-9]*' | sed 's/^/# socket /'
}
# fio_verify SIZE: sync-mode random writes at queue depth 32, verified
# (fio prints a verify mismatch on stderr: $T/fio.err).
fio_verify() {
	fio --name=conns --filename=/dev/mapper/p --direct=1 --ioengine=libaio --iodepth=32 \
		--rw=randwrite --bs=4k --size="$1" --verify=crc32c --do_verify=1 \
		--verify_fatal=1 --output=$T/fio.log > /dev/null 2> $T/fio.err
}

rm -rf $T /run/dmcolo
mkdir -p $T
disk_setup 3 16

ktap_plan 14
ktap_check "two namespaces, veth, IPv6 link-local" pair_net
ktap_check "secondary create" sec secondary create s --disk $SDISK --buffer $SBUF --chunk 64k \
	--listen "[fe80::2%veth-sec]:10809"
refused() {
	local rc=0
	pri primary create p --disk $LOCAL --secondary "[fe80::2%veth-pri]:10809" --export s \
		--sync --timeout 5 --connections 2 > $T/refused.out 2>&1 || rc=$?
	cat $T/refused.out
	[ $rc = 2 ] && grep -q "resent on another" $T/refused.out && ! dmsetup info p > /dev/null 2>&1
}
ktap_check "primary create --connections 2: refused (exit 2, says why), nothing made" refused
create() {
	pri primary create p --disk $LOCAL --secondary "[fe80::2%veth-pri]:10809" --export s \
		--sync --timeout 5 > $T/create.out &&
		grep -q "(timeout 5 s, 1 connection)" $T/create.out
}
ktap_check "primary create --sync --timeout 5" create
one_socket() {
	[ "$(json_field "$(pri status p --json)" connections)" = 1 ] &&
		pri status p | grep -q ", 1 socket, connected" &&
		[ "$(server_children | wc -l)" = 1 ] &&
		[ "$(ip netns exec col-pri ss -Htn state established '( dport = :10809 )' | wc -l)" = 1 ]
}
ktap_check "status says 1 socket; one connection, one nbd-server process" one_socket
ktap_check "start: sync, secondary running" pri start p
ktap_check "fio verify, sync mode, QD32" fio_verify "$(colo_load 8M 2M)"
show_sockets
ktap_check "two-node checkpoint" pri checkpoint p
ktap_check "primary disk = secondary disk = secondary view" three_way_same $LOCAL $SDISK /dev/mapper/s

# The server process stops for longer than the NBD timeout (5 s) while
# overlapping writes stream (colo-overlap checks each sector it wrote).
OVERLAP=$DMCOLO_TOP/build/tests/colo-overlap
"$OVERLAP" --dev /dev/mapper/p --offset 0 --area $((1 << 20)) --threads 4 --writes 100000000 \
	--seconds 14 --min 4096 --max 65536 > $T/overlap.log 2>&1 &
load=$!
sleep 2
victim=$(server_children | head -n 1)
stopped=no
[ -n "$victim" ] && kill -STOP "$victim" && stopped=yes
stall() {
	[ $stopped = yes ] || { echo "no server process to stop"; return 1; }
	colo_wait_state p degraded 60
}
ktap_check "the export stalls past the timeout under overlapping writes: degraded" stall
echo "# primary: $(dmsetup status p)"
# Not through ktap_check: its command substitution cannot wait for a child
# of this shell still running (wait returns 127 at once).
if wait $load; then
	ktap_ok "... the writes went on, every sector exact"
else
	ktap_fail "... the writes went on, every sector exact" "$(cat $T/overlap.log)"
fi
sed 's/^/# /' $T/overlap.log | tail -n 2
# The worst order: the stopped process resumes (and applies what it had
# received) before the resync.
[ $stopped = no ] || kill -CONT "$victim"
sleep 1
ktap_check "the stalled process resumed; dmcoloctl resync: replicating" \
	eval 'pri resync p > /dev/null && colo_wait_state p replicating 120'
ktap_check "two-node checkpoint; primary = secondary disk = secondary view" \
	eval 'pri checkpoint p > /dev/null && three_way_same $LOCAL $SDISK /dev/mapper/s'
teardown() { pri remove p > /dev/null && sec remove s > /dev/null && ! pgrep -x nbd-server > /dev/null; }
ktap_check "remove both; no nbd-server left" teardown
ktap_finish
