#!/bin/bash
# dmcoloctl primary create --connections 2: the NBD link runs over two
# sockets (nbd-client -C 2), the secondary serves each with its own
# nbd-server process. A sync-mode fio verify workload at queue depth 32
# replicates exactly; then one socket's server process is killed under
# that workload: nbd retries its requests on the other socket after the
# timeout, replication goes on without a degrade, and the disks stay equal.
# timeout: 300
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/../lib/blk.sh"
. "$(dirname "$0")/../lib/nbd.sh"
. "$(dirname "$0")/../lib/colo.sh"

LOCAL=/dev/testdisk0 SDISK=/dev/testdisk1 SBUF=/dev/testdisk2
T=/tmp/conns
cleanup() {
	ctl_teardown p s
	rm -rf $T
}
trap cleanup EXIT
trap 'exit 124' TERM

json_field() { sed -n "s/.*\"$2\": \"\{0,1\}\([^\",]*\).*/\1/p" <<< "$1"; }
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

ktap_plan 13
ktap_check "two namespaces, veth, IPv6 link-local" pair_net
ktap_check "secondary create" sec secondary create s --disk $SDISK --buffer $SBUF --chunk 64k \
	--listen "[fe80::2%veth-sec]:10809"
create() {
	pri primary create p --disk $LOCAL --secondary "[fe80::2%veth-pri]:10809" --export s \
		--sync --timeout 5 --connections 2 > $T/create.out &&
		grep -q "(timeout 5 s, 2 connections)" $T/create.out
}
ktap_check "primary create --sync --connections 2" create
two_sockets() {
	[ "$(json_field "$(pri status p --json)" connections)" = 2 ] &&
		pri status p | grep -q ", 2 sockets, connected" &&
		[ "$(server_children | wc -l)" = 2 ] &&
		[ "$(ip netns exec col-pri ss -Htn state established '( dport = :10809 )' | wc -l)" = 2 ]
}
ktap_check "status says 2 sockets; two connections, two nbd-server processes" two_sockets
ktap_check "start: sync, secondary running" pri start p
ktap_check "fio verify, sync mode, QD32" fio_verify "$(colo_load 8M 2M)"
show_sockets
ktap_check "two-node checkpoint" pri checkpoint p
ktap_check "primary disk = secondary disk = secondary view" three_way_same $LOCAL $SDISK /dev/mapper/s

# One socket's server dies under the workload: its requests time out (5 s)
# and nbd sends them again on the other socket.
# The kill counts only when it comes in fio's write phase: fio still runs
# then, and the remote acknowledges more forwards after it (the verify
# phase only reads the local disk). The verdict is fio's exit status and
# its log: err=0 and no verify error.
log_lines=$(dmesg | wc -l)
fio_verify "$(colo_load 8M 2M)" &
fio_pid=$!
sleep 1
victim=$(server_children | head -n 1)
fwd_kill=$(colo_status p 5)
killed=no
kill -0 $fio_pid 2> /dev/null && [ -n "$victim" ] && kill -9 "$victim" && killed=yes
wait $fio_pid
fio_rc=$?
fwd_end=$(colo_status p 5)
echo "# nbd-server $victim killed: $killed; forwards acknowledged at the kill $fwd_kill, at fio's end $fwd_end"
under_writes() {
	[ $killed = yes ] || { echo "no server child killed while fio ran (victim '$victim')"; return 1; }
	[ "$fwd_end" -gt "$fwd_kill" ] || { echo "no forward after the kill: fio's writes were over"; return 1; }
}
ktap_check "one socket's nbd-server killed while fio writes" under_writes
fio_verdict() {
	[ $fio_rc = 0 ] || { echo "fio exit $fio_rc"; return 1; }
	grep -q "err= 0" $T/fio.log || { echo "no 'err= 0' in fio's log"; return 1; }
	! grep -i "verify\|err=" $T/fio.err
}
ktap_check "... fio's exit and log: no error, no verify mismatch" fio_verdict
sed 's/^/# /' $T/fio.log | grep -m 2 -i "err\|verify" || true
dmesg | tail -n +$((log_lines + 1)) | grep -m 3 "nbd" | sed 's/^/# /' || true
ktap_check "... replication goes on: still replicating" colo_wait_state p replicating 1
ktap_check "two-node checkpoint; primary = secondary disk = secondary view" \
	eval 'pri checkpoint p > /dev/null && three_way_same $LOCAL $SDISK /dev/mapper/s'
teardown() { pri remove p > /dev/null && sec remove s > /dev/null && ! pgrep -x nbd-server > /dev/null; }
ktap_check "remove both; no nbd-server left" teardown
ktap_finish
