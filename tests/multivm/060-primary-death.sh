#!/bin/bash
# Primary host death between checkpoints, with two real VMs. The primary VM
# (fe80::1, disk vda) and the secondary VM (fe80::2, disk vda, buffer vdb)
# are joined by -netdev stream. With dmcoloctl only: the secondary is
# created, the primary created and started (initial sync over the link),
# the primary writes a pattern with O_DIRECT and checkpoints, and hands
# its exact disk image over. The secondary writes into its view; the
# primary writes more (a primary barrier puts some of it on the secondary
# disk, so failover has something to undo) and keeps writing; the host
# SIGKILLs the primary's qemu in the middle of that. The secondary then
# runs `dmcoloctl failover` without its peer and the whole secondary disk
# must be, byte for byte, the checkpoint image plus the secondary's writes.
# host-orchestrated: two VMs
# matrix: primary host death between checkpoints (a separate VM, qemu SIGKILLed mid-write) -> dmcoloctl failover on the secondary VM without its peer; the whole secondary disk = the checkpoint image plus the secondary's writes, byte for byte
# kernels: deb612
# timeout: 900
DMCOLO_TOP=${DMCOLO_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$DMCOLO_TOP/tests/lib/vm-test.sh"
. "$DMCOLO_TOP/tests/lib/multivm.sh"

MiB=$((1 << 20)) KiB=1024
SIZE=$((32 * MiB))
PRI_PLAN=9 SEC_PLAN=14 HOST_PLAN=5
T=/tmp/mv050

# put FILE OFFSET SRC: SRC's bytes into the image file FILE at OFFSET.
put() { dd if="$3" of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc status=none; }

primary() {
	local S=$DMCOLO_SHARE LOCAL=/dev/vda k off
	rm -rf $T && mkdir -p $T
	ktap_plan $PRI_PLAN
	mv_primary_start
	# The seeded pattern of this epoch, with O_DIRECT.
	cp "$S/initial" $T/expected
	for k in 0 1 2 3; do
		random_file $T/w$k $((256 * KiB + k * 4 * KiB))
	done
	write_checkpointed() {
		local k off
		for k in 0 1 2 3; do
			off=$((k * 7 * MiB + k * 3 * 512))
			write_direct /dev/mapper/p $off $T/w$k && put $T/expected $off $T/w$k || return 1
		done
		"$CTL" checkpoint p
	}
	step "pattern with O_DIRECT, then dmcoloctl checkpoint" write_checkpointed
	snapshot() {
		read_direct $LOCAL 0 $SIZE > "$S/.image" && mv "$S/.image" "$S/image" &&
			cmp "$S/image" $T/expected
	}
	step "checkpoint image = initial + pattern, handed over" snapshot
	mv_signal pri-checkpointed
	step "the secondary wrote into its view" mv_await sec-wrote 300
	# After the checkpoint: over a secondary write and elsewhere, put on
	# the secondary disk by a primary barrier only.
	random_file $T/a $((192 * KiB))
	after_checkpoint() {
		write_direct /dev/mapper/p $((8 * MiB)) $T/a &&
			write_direct /dev/mapper/p $((21 * MiB + 512)) $T/a &&
			"$CTL" checkpoint p --local > /dev/null
	}
	step "writes after the checkpoint, on the secondary disk (primary barrier)" after_checkpoint
	# Then writes until the host kills this VM: each somewhere else, half
	# of them not chunk aligned.
	k=0
	while :; do
		off=$(( (k * 3 * MiB + (k % 2) * 4096 + k * 64 * KiB) % (SIZE - 192 * KiB) ))
		pwrite_direct /dev/mapper/p $off $T/a 2> /dev/null
		k=$((k + 1))
		[ $k -ne 6 ] || mv_signal pri-writing
	done
}

secondary() {
	local S=$DMCOLO_SHARE SDISK=/dev/vda SBUF=/dev/vdb rc t0 ms j
	rm -rf $T && mkdir -p $T
	ktap_plan $SEC_PLAN
	ping_primary() {
		local i
		for i in $(seq 30); do
			ping -6 -c 1 -W 1 fe80::1%net0 > /dev/null && return 0
			sleep 0.5
		done
		return 1
	}
	step "the primary VM answers on the link (fe80::1%net0)" ping_primary
	step "dmcoloctl secondary create" "$CTL" secondary create s --disk $SDISK --buffer $SBUF \
		--chunk 64k --listen '[fe80::2%net0]:10809'
	mv_signal sec-created
	step "the primary started the pair and checkpointed" mv_await pri-checkpointed 900
	running() { [ "$(colo_status s 1)" = running ]; }
	step "colo-secondary is running" running
	step "secondary disk = checkpoint image" same_bytes $SDISK 0 "$S/image"
	step "secondary view = checkpoint image" same_bytes /dev/mapper/s 0 "$S/image"
	# Its own writes: over the primary's next write (8 MiB), a partial
	# chunk (read-modify-write), a whole chunk.
	cp "$S/image" $T/expected
	random_file $T/s1 $((128 * KiB))
	random_file $T/s2 1536
	random_file $T/s3 $((64 * KiB))
	own_writes() {
		write_direct /dev/mapper/s $((8 * MiB + 4096)) $T/s1 && put $T/expected $((8 * MiB + 4096)) $T/s1 &&
		write_direct /dev/mapper/s $((12 * MiB + 512)) $T/s2 && put $T/expected $((12 * MiB + 512)) $T/s2 &&
		write_direct /dev/mapper/s $((30 * MiB)) $T/s3 && put $T/expected $((30 * MiB)) $T/s3
	}
	step "writes through the secondary view (O_DIRECT)" own_writes
	mv_signal sec-wrote
	step "the primary VM was killed (SIGKILL) while writing" mv_await pri-killed 900
	echo "# figure: buffered_chunks=$(colo_status s 3 | cut -d/ -f1)"
	t0=$(date +%s%N)
	"$CTL" failover s > $T/failover.out 2>&1
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	sed 's/^/# /' $T/failover.out
	echo "# figure: failover_ms=$ms"
	echo "# figure: merged_chunks=$(colo_status s 4 | cut -d/ -f1)"
	ktap_check "dmcoloctl failover without the peer: fenced, merged" test $rc = 0
	ktap_check "secondary disk = checkpoint image + the secondary's writes, every byte" \
		same_bytes $SDISK 0 $T/expected
	ktap_check "the secondary device reads the same" same_bytes /dev/mapper/s 0 $T/expected
	alone() {
		local j
		j=$("$CTL" status s --json)
		grep -q '"state": "standalone"' <<< "$j" && grep -q '"fenced": true' <<< "$j"
	}
	ktap_check "status: standalone, fenced" alone
	fenced_io() {
		[ -b /dev/mapper/s-ingress ] &&
			must_fail "$COLO_DIO" read /dev/mapper/s-ingress 0 4096
	}
	ktap_check "colo-ingress refuses I/O" fenced_io
	ktap_check "dmcoloctl remove s" "$CTL" remove s
	ktap_finish
}

host() {
	local W=$DMCOLO_RESULTS rc
	mv_setup
	ktap_plan $((HOST_PLAN + PRI_PLAN + SEC_PLAN))
	mv_boot_pair 900 900 $SIZE
	ktap_check "the primary writes after the checkpoint" mv_await pri-writing 900
	if mv_kill primary; then
		ktap_ok "SIGKILL to the primary's qemu mid-write"
	else
		ktap_fail "SIGKILL to the primary's qemu mid-write"
	fi
	mv_signal pri-killed
	mv_wait secondary
	rc=$?
	ktap_check "the secondary VM ended by itself (vm/run exit 0)" test $rc = 0
	ktap_check "the secondary VM ran its shutdown (module unload, kmemleak)" \
		grep -q 'dmcolo-test: end shutdown' "$W/secondary/console.log"
	mv_relay primary $PRI_PLAN
	mv_relay secondary $SEC_PLAN
	ktap_finish
}

case ${DMCOLO_ROLE:-host} in
primary) primary ;;
secondary) secondary ;;
*) host ;;
esac
