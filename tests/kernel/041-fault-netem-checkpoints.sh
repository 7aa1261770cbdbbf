#!/bin/bash
# Two-node checkpoints over a bad network: the pair of tests/lib/colo.sh
# (netns col-pri/col-sec, veth, nbd-server exporting colo-ingress, the
# kernel NBD client, colo-primary over a ramdisk, async mode) with netem on
# both ends of the link, in turn: nothing, delay 20ms, loss 5%, and delay
# 20ms with 25% reordering and 5% loss. For each, a writer (colo-overlap,
# O_DIRECT, overlapping writes) runs on the primary; ROUNDS times it is
# paused (SIGSTOP, every thread stopped: the VM paused), a two-node
# checkpoint is taken and timed, and the primary disk, the secondary disk
# and the secondary view must be identical byte for byte over the area
# written (the whole 16 MiB at the end); then it goes on.
# Checked: every checkpoint succeeds (TCP hides the loss; the NBD timeout,
# 60 s, never expires), every three-way compare holds, the primary stays
# replicating with no remote error, and at the end every sector the writer
# wrote is exact. The median checkpoint time of each setting is printed as
# `# figure: netem_<case>_checkpoint_ms=<median>`.
# Only on deb612: netem changes the network, not the disks or vCPUs, nor
# our code's paths.
# kernels: deb612
# timeout: 420
. "$(dirname "$0")/../lib/vm-test.sh"

export NBD_TIMEOUT=60
AREA=$((4 << 20))
ROUNDS=$(colo_load 4 1)	# the debug kernel: a checkpoint takes 3-10 s under TCG
LOAD_S=1
writer=""
test_stop() {
	if [ -n "$writer" ]; then
		kill -CONT "$writer" 2>/dev/null
		kill "$writer" 2>/dev/null
		wait "$writer" 2>/dev/null
	fi
	ip netns del col-nt 2>/dev/null
}
pair_test /tmp/fnc-

# netem is a module on the Debian kernels, built in on the debug kernel.
modprobe sch_netem 2>/dev/null
if ! { ip netns add col-nt && tc -n col-nt qdisc add dev lo root netem delay 1ms; } 2> /tmp/fnc-netem; then
	ktap_skip_all "netem unavailable: $(cat /tmp/fnc-netem)"
fi
ip netns del col-nt

# netem_set "ARGS": the same netem qdisc on both ends ("" = none).
netem_set() {
	local ns dev
	for ns in col-pri:veth-pri col-sec:veth-sec; do
		dev=${ns#*:} ns=${ns%:*}
		tc -n "$ns" qdisc del dev "$dev" root 2>/dev/null
		# shellcheck disable=SC2086 # netem's arguments
		[ -z "$1" ] || tc -n "$ns" qdisc add dev "$dev" root netem $1 || return 1
	done
}
# rounds CASE: ROUNDS times load, pause, timed checkpoint, compare, resume.
rounds() {
	local i t0 ms all=""
	for i in $(seq "$ROUNDS"); do
		sleep $LOAD_S
		kill -STOP "$writer" && threads_stopped "$writer" || return 1
		t0=$(date +%s%N)
		two_node_checkpoint pri sec || { echo "round $i: checkpoint failed"; return 1; }
		ms=$((($(date +%s%N) - t0) / 1000000))
		all="$all $ms"
		three_way_same $LOCAL $SDISK $S $AREA || { echo "round $i: the disks differ"; return 1; }
		kill -CONT "$writer"
	done
	echo "checkpoint ms:$all" > "/tmp/fnc-$1"
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

disk_setup 3 16

ktap_plan 12
bed_up() {
	pair_setup pri $LOCAL sec $SDISK $SBUF /dev/nbd0 nosync &&
	pair_start 60
}
ktap_check "two-node bed, replicating" bed_up
"$OVERLAP" --dev $P --offset 0 --area $AREA --threads 2 --writes 100000000 \
	--min 4096 --max 131072 --seed 41 > /tmp/fnc-writer.log 2>&1 &
writer=$!
for c in "none:" "delay:delay 20ms" "loss:loss 5%" \
	 "delay_loss_reorder:delay 20ms reorder 25% 50% loss 5%"; do
	name=${c%%:*} args=${c#*:}
	ktap_check "$name: netem ${args:-off} on both ends" netem_set "$args"
	ktap_check "$name: $ROUNDS checkpoints under load, each followed by three identical disks" rounds "$name"
	if [ -f "/tmp/fnc-$name" ]; then
		echo "# $name: $(cat "/tmp/fnc-$name")"
		echo "# figure: netem_${name}_checkpoint_ms=$(cut -d: -f2 "/tmp/fnc-$name" | median)"
	fi
	kill -CONT "$writer" 2>/dev/null
done
netem_set ""
kill -USR1 "$writer"
wait "$writer"
rc=$? writer=""
if [ $rc -eq 0 ]; then ktap_ok "the writer's every sector is exact"
else ktap_fail "the writer's every sector is exact" "$(cat /tmp/fnc-writer.log)"; fi
sed 's/^/# writer: /' /tmp/fnc-writer.log
final() { two_node_checkpoint pri sec && three_way_same $LOCAL $SDISK $S; }
ktap_check "a last checkpoint, three identical disks" final
echo "# primary: $(dmsetup status pri | cut -d' ' -f4-)"
ktap_check "replicating throughout, no remote error" test "$(colo_fields pri 1 9 10)" = "replicating 0 -"
ktap_finish
