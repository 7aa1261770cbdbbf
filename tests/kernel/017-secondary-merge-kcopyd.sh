#!/bin/bash
# The failover merge's dm-kcopyd fallback. The merge copies a run of slots
# through one of its own 1 MiB dm-io buffers (COLO_MERGE_RUN_SECTORS); a
# chunk larger than that cannot go through one, and dm-kcopyd copies it
# instead (colo_buffer_copy_out). With 2 MiB chunks (chunk_sectors 4096)
# and a 1.5 MiB partial last chunk, every merge copy takes that path: a
# kprobe on dm_kcopyd_copy counts one call per buffered chunk during the
# merge, and none on merge_copy_work (the dm-io path). Primary writes
# (whose chunks hold their originals in the buffer), partial and whole
# secondary writes, failover: standalone, every chunk merged, disk =
# secondary view byte for byte. A control with 64 KiB chunks shows the
# probes telling the two paths apart: with colo_buffer_copy_out() sending
# every copy to dm-kcopyd, the control (result 10) fails (deb612).
# matrix: failover merge of chunks larger than the merge buffers (2 MiB chunks, partial last chunk) -> dm-kcopyd copies each (kprobe count), disk = secondary view
# On the debug kernel (6.12 with memory and lock checks), which has no
# kprobes (its probe checks skip there), and on deb612 for the probe
# counts: 016 and 046 merge on deb61 under parallel vCPUs.
# kernels: deb612 debug
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

MiB=$((1 << 20)) C=$((2 << 20)) CS=4096
LEN=$((15 * CS + 3072))		# 15 chunks of 2 MiB and one of 1.5 MiB
S=/dev/mapper/lc IN=/dev/mapper/lc-in
TR=/sys/kernel/tracing
test_stop() {
	[ -e $TR/kprobe_events ] || return 0
	echo 0 > $TR/events/kprobes/enable 2> /dev/null
	echo '-:dmcolo_kcopyd' >> $TR/kprobe_events 2> /dev/null
	echo '-:dmcolo_mcw' >> $TR/kprobe_events 2> /dev/null
}
vm_test_on_exit /tmp/lc- lc-in lc

# hits NAME: calls the kprobe NAME counted so far.
hits() { awk -v n="$1" '$1 == n { print $2 }' $TR/kprobe_profile; }
probes() {
	[ -e $TR/kprobe_events ] || mount -t tracefs nodev $TR 2> /dev/null
	echo 'p:dmcolo_kcopyd dm_kcopyd_copy' >> $TR/kprobe_events &&
	echo 'p:dmcolo_mcw merge_copy_work' >> $TR/kprobe_events &&
	echo 1 > $TR/events/kprobes/dmcolo_kcopyd/enable &&
	echo 1 > $TR/events/kprobes/dmcolo_mcw/enable
}

disk_setup 2 64
random_file /tmp/lc-initial $((LEN * 512))
random_file /tmp/lc-p $((256 << 10))
random_file /tmp/lc-s $MiB
random_file /tmp/lc-w $C
write_direct /dev/testdisk0 0 /tmp/lc-initial
cp /tmp/lc-initial /tmp/lc-view
# model_write OFFSET FILE: the secondary view model gets FILE at OFFSET.
model_write() { dd if="$2" of=/tmp/lc-view bs=64K seek="$1" oflag=seek_bytes conv=notrunc status=none; }

ktap_plan 10
ktap_check "colo-secondary with 2 MiB chunks, a 1.5 MiB last one; running" \
	secondary_start /dev/testdisk0 /dev/testdisk1 $CS lc $LEN
writes() {
	local c
	for c in 0 2 5 15; do
		write_odirect $IN $((c * C + 512 * 1024)) /tmp/lc-p || return 1
	done
	for c in 2 5 7 15; do
		write_odirect $S $((c * C + 256 * 1024)) /tmp/lc-s || return 1
		model_write $((c * C + 256 * 1024)) /tmp/lc-s
	done
	write_odirect $S $((9 * C)) /tmp/lc-w && model_write $((9 * C)) /tmp/lc-w
}
ktap_check "primary writes to chunks 0 2 5 15, secondary writes to 2 5 7 15 and all of 9" writes
ktap_check "6 chunks buffered" test "$(colo_status lc 3 | cut -d/ -f1)" = 6
ktap_check "the secondary view is the model" same_bytes $S 0 /tmp/lc-view
have_probes=yes
probes 2> /tmp/lc-probe.err || have_probes=no
k0=$(hits dmcolo_kcopyd) m0=$(hits dmcolo_mcw)
ktap_check "failover" dmsetup message lc 0 failover
ktap_check "standalone, 6/6 merged, no error" \
	eval 'colo_wait_state lc standalone 120 && test "$(colo_fields lc 4 7)" = "6/6 -"'
if [ $have_probes = yes ]; then
	k1=$(hits dmcolo_kcopyd) m1=$(hits dmcolo_mcw)
	echo "# during the merge: dm_kcopyd_copy $((k1 - k0)) calls, merge_copy_work $((m1 - m0))"
	ktap_check "dm-kcopyd copied each of the 6 chunks; the dm-io path none" \
		test "$((k1 - k0)) $((m1 - m0))" = "6 0"
else
	ktap_skip "dm-kcopyd copied each of the 6 chunks; the dm-io path none" \
		"no kprobes: $(head -c 200 /tmp/lc-probe.err)"
fi
ktap_check "the disk is the secondary view" same_bytes /dev/testdisk0 0 /tmp/lc-view
ktap_check "the view still reads it" same_bytes $S 0 /tmp/lc-view

# The control: with 64 KiB chunks the same probes see the merge go through
# the dm-io buffers (so "none" above is not a probe that never fires).
control() {
	secondary_teardown lc &&
	dmsetup create lc --table "0 $LEN colo-secondary /dev/testdisk0 /dev/testdisk1 128" &&
	dmsetup message lc 0 start &&
	write_odirect $S $((3 * C + 4096)) /tmp/lc-p || return 1
	k0=$(hits dmcolo_kcopyd) m0=$(hits dmcolo_mcw)
	dmsetup message lc 0 failover && colo_wait_state lc standalone 60 || return 1
	k1=$(hits dmcolo_kcopyd) m1=$(hits dmcolo_mcw)
	echo "# control, 64 KiB chunks: dm_kcopyd_copy $((k1 - k0)) calls, merge_copy_work $((m1 - m0))"
	[ $((k1 - k0)) = 0 ] && [ $((m1 - m0)) -gt 0 ]
}
if [ $have_probes = yes ]; then
	ktap_check "control, 64 KiB chunks: the merge goes through the dm-io buffers" control
else
	ktap_skip "control, 64 KiB chunks: the merge goes through the dm-io buffers" "no kprobes"
fi
ktap_finish
