#!/bin/bash
# A slow remote: dm-delay under the secondary disk, and nbd-server with
# `sync = true` (an fsync after every write, so each forwarded write waits
# for the slow disk before it is acknowledged; without it nbd-server's page
# cache would hide the delay). In async mode a write returns before the
# remote has it, but never more than max_inflight_kb (64 KiB here) is in
# flight: status bytes in flight sampled all through a 4-64 KiB write load
# stay within it, and so does the peak. Nothing is lost: after a two-node
# checkpoint the three disks are identical.
# matrix: slow remote (dm-delay, nbd-server syncing) -> bytes in flight never above max_inflight_kb, nothing lost
# Not on the debug kernel: the window's accounting is on the path of
# every forward there (025, 029, 046, 047).
# kernels: deb61 deb612
# timeout: 900
. "$(dirname "$0")/../lib/vm-test.sh"

export NBD_EXPORT_EXTRA="sync = true"
export NBD_TIMEOUT=60	# requests queue behind slow ones; no failure is wanted here
MiB=$((1 << 20)) WINDOW=65536
PAIR_UNDER=slowdisk
pair_test /tmp/pbp-

fields() { colo_fields pri "$@"; }
# slow MS: every I/O of the secondary disk delayed by MS milliseconds.
slow() {
	dmsetup suspend slowdisk && dmsetup load slowdisk --table "0 65536 delay $SDISK 0 $1" &&
	dmsetup resume slowdisk
}

disk_setup 3 32
dmsetup create slowdisk --table "0 65536 delay $SDISK 0 50"

ktap_plan 16
ktap_check "two-node bed over a 50 ms secondary disk, max_inflight_kb 64" \
	pair_setup pri $LOCAL sec /dev/mapper/slowdisk $SBUF $NBD max_inflight_kb 64 nosync
ktap_check "start: replicating" pair_start 30

# One small write with a very slow remote: it returns while its forward
# is still in flight.
random_file /tmp/pbp-one 4096
slow 1000
async_one() {
	pwrite_direct $P $((2 * MiB)) /tmp/pbp-one || return 1
	local f
	f=$(fields 6 7)
	[ "$f" = "1 4096" ] || { echo "in flight after the write returned: $f (want 1 4096)"; return 1; }
}
ktap_check "async: a 4 KiB write returns before the remote acknowledged it (1 write, 4096 bytes in flight)" async_one
drained() {
	for _ in $(seq 100); do
		[ "$(fields 6 7)" = "0 0" ] && return 0
		sleep 0.2
	done
	echo "still in flight: $(fields 6 7)"
	return 1
}
ktap_check "the forward completes" drained
slow 50

# The load, and a sampler of the in-flight fields while it runs.
"$OVERLAP" --dev $P --offset $((4 * MiB)) --area $((4 * MiB)) --threads 4 --writes 40 \
	--min 4096 --max 65536 > /tmp/pbp-load.log 2>&1 &
load=$!
: > /tmp/pbp-samples
while kill -0 $load 2>/dev/null; do
	dmsetup status pri | awk '{ print $9, $10, $11 }' >> /tmp/pbp-samples
	sleep 0.05
done
ktap_wait "4 threads of 4-64 KiB overlapping writes, every sector exact" $load /tmp/pbp-load.log
sed 's/^/# /' /tmp/pbp-load.log
n=$(wc -l < /tmp/pbp-samples)
max=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' /tmp/pbp-samples)
echo "# $n samples of the in-flight bytes, the largest $max; peak (field 8) $(colo_status pri 8)"
ktap_check "the in-flight bytes were sampled during the load" test "$n" -ge 5
ktap_check "the window was in use (some sample saw bytes in flight)" test "$max" -gt 0
ktap_check "no sample saw more than $WINDOW bytes in flight" test "$max" -le $WINDOW
consistent() { awk '($1 == 0) != ($2 == 0) || $1 < 0 || $2 < 0 { print "sample: " $0; bad = 1 } END { exit bad }' /tmp/pbp-samples; }
ktap_check "every sample: writes in flight is 0 exactly when bytes in flight is" consistent
peak_ok() { local p; p=$(colo_status pri 8); [ "$p" -gt 0 ] && [ "$p" -le $WINDOW ]; }
ktap_check "the peak (field 8) is within the window and above 0" peak_ok
ktap_check "still replicating, no remote error" test "$(fields 1 9 10)" = "replicating 0 -"

# A write larger than the window must not wait for ever.
random_file /tmp/pbp-big $((256 << 10))
ktap_check "a 256 KiB write (larger than the window) completes within 120 s" \
	timeout 120 "$COLO_DIO" write $P $((12 * MiB)) /tmp/pbp-big --max-io $((256 << 10))
echo "# after it: in flight $(fields 6 7), peak $(colo_status pri 8)"
ktap_check "two-node checkpoint" two_node_checkpoint pri sec
ktap_check "nothing in flight after the checkpoint" test "$(fields 6 7)" = "0 0"
ktap_check "primary disk = secondary disk = secondary view" three_way_same $LOCAL $SDISK $S
ktap_check "the secondary disk holds the large write" same_bytes $SDISK $((12 * MiB)) /tmp/pbp-big
ktap_finish
