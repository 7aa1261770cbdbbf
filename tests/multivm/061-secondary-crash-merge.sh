#!/bin/bash
# Secondary host death during the failover merge, with two real VMs. The
# pair runs (dmcoloctl), checkpoints; the secondary writes into its view,
# the primary writes after the checkpoint (a primary barrier puts that on
# the secondary disk) and hands its disk over: that is the secondary disk
# before the merge ("pre-merge"); the secondary hands its view over. The
# secondary disk sits on dm-delay, which now delays writes by 1 s, so the
# merge of `dmcoloctl failover` is slow; the host SIGKILLs the secondary VM
# half-way and boots it again on the same disk files. The buffer index was
# in memory, so the merge cannot resume; the disk must hold what
# dm-colo.rst promises ("Secondary crash during failover"): every chunk
# that was not buffered is untouched, every 512-byte sector of a buffered
# chunk holds either its pre-merge or its view content. Meanwhile the
# primary, still alive, has degraded. The documented recovery: a new
# secondary on the same disk, `dmcoloctl resync --full` and `start` on the
# primary, a checkpoint; then primary disk = secondary disk = secondary
# view, byte for byte.
# host-orchestrated: two VMs
# matrix: secondary VM SIGKILLed half-way through a failover merge, rebooted on the same disks -> unbuffered chunks untouched, every sector of a buffered chunk pre-merge or view; the primary degrades and keeps writing; a new secondary and resync --full give three identical disks
# kernels: deb612
# timeout: 1200
DMCOLO_TOP=${DMCOLO_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$DMCOLO_TOP/tests/lib/vm-test.sh"
. "$DMCOLO_TOP/tests/lib/multivm.sh"

MiB=$((1 << 20)) KiB=1024
SIZE=$((32 * MiB)) CHUNK=$((64 * KiB))
PRI_PLAN=19 SEC_PLAN=9 SEC2_PLAN=10 HOST_PLAN=8
T=/tmp/mv051
LISTEN='[fe80::2%net0]:10809'

primary() {
	local S=$DMCOLO_SHARE LOCAL=/dev/vda k
	rm -rf $T && mkdir -p $T
	ktap_plan $PRI_PLAN
	mv_primary_start
	random_file $T/w $((512 * KiB))
	step "a write with O_DIRECT, then dmcoloctl checkpoint" \
		eval "write_direct /dev/mapper/p $((5 * MiB + 512)) $T/w && $CTL checkpoint p"
	mv_signal pri-checkpointed
	step "the secondary wrote into its view" mv_await sec-wrote 300
	# After the checkpoint: 24 writes of 192 KiB over the whole disk, a
	# third of them not chunk aligned, on the secondary disk by a barrier.
	random_file $T/a $((192 * KiB))
	after_checkpoint() {
		local k
		for k in $(seq 0 23); do
			pwrite_direct /dev/mapper/p $((k * 1280 * KiB + (k % 3) * 4096)) $T/a || return 1
		done
		"$CTL" checkpoint p --local > /dev/null
	}
	step "writes after the checkpoint, on the secondary disk (primary barrier)" after_checkpoint
	premerge() { read_direct $LOCAL 0 $SIZE > "$S/.premerge" && mv "$S/.premerge" "$S/premerge"; }
	step "the primary disk (= the secondary disk before the merge) handed over" premerge
	mv_signal pri-wrote
	step "the secondary VM was killed during the merge" mv_await sec-killed 900
	# The primary lives on: failover stopped the export, so its next
	# forward fails and it degrades; its writes go on locally.
	degrade() {
		write_direct /dev/mapper/p $((9 * MiB)) $T/w && colo_wait_state p degraded 120 &&
			write_direct /dev/mapper/p $((17 * MiB + 4096)) $T/w
	}
	step "the primary degrades and keeps writing" degrade
	mv_signal pri-degraded
	step "a new secondary was created on the rebooted node" mv_await sec2-created 900
	step "dmcoloctl resync --full: new NBD link, every region copied" "$CTL" resync p --full
	step "dmcoloctl watch: replicating again" "$CTL" watch p
	step "dmcoloctl start: barrier, the new secondary running" "$CTL" start p
	final() {
		"$CTL" checkpoint p > /dev/null &&
			read_direct $LOCAL 0 $SIZE > "$S/.final" && mv "$S/.final" "$S/final"
	}
	step "dmcoloctl checkpoint; the primary disk handed over" final
	mv_signal pri-final
	step "the secondary compared" mv_await sec2-checked 600
	ktap_check "dmcoloctl remove p" "$CTL" remove p
	# dmcoloctl loaded nbd for the link; nothing is left behind.
	ktap_check "nbd unloaded" rmmod nbd
	ktap_finish
}

secondary() {
	local S=$DMCOLO_SHARE SBUF=/dev/vdb k size merged
	rm -rf $T && mkdir -p $T
	ktap_plan $SEC_PLAN
	size=$(blockdev --getsz /dev/vda)
	slow_create() {
		dmsetup create slow --table "0 $size delay /dev/vda 0 0 /dev/vda 0 0" &&
			"$CTL" secondary create s --disk /dev/mapper/slow --buffer $SBUF --chunk 64k \
				--listen "$LISTEN"
	}
	step "dmcoloctl secondary create over dm-delay (no delay yet)" slow_create
	mv_signal sec-created
	step "the primary started the pair and checkpointed" mv_await pri-checkpointed 900
	# Its own writes: 12 of 128.5 KiB, not chunk aligned.
	random_file $T/s $((257 * 512))
	own_writes() {
		local k
		for k in $(seq 0 11); do
			pwrite_direct /dev/mapper/s $((k * 2560 * KiB + 640 * KiB + 512)) $T/s || return 1
		done
	}
	step "writes through the secondary view (O_DIRECT)" own_writes
	mv_signal sec-wrote
	step "the primary wrote after the checkpoint" mv_await pri-wrote 300
	step "secondary disk = the primary's disk (pre-merge)" same_bytes /dev/vda 0 "$S/premerge"
	view() { read_direct /dev/mapper/s 0 $((size * 512)) > "$S/.view" && mv "$S/.view" "$S/view"; }
	step "the secondary view handed over" view
	colo_status s 3 | cut -d/ -f1 > "$S/buffered"
	echo "# figure: buffered_chunks=$(cat "$S/buffered")"
	slow_down() {
		dmsetup suspend slow &&
			dmsetup load slow --table "0 $size delay /dev/vda 0 0 /dev/vda 0 1000" &&
			dmsetup resume slow
	}
	step "dm-delay: every disk write now takes 1 s" slow_down
	step "dmcoloctl failover --no-wait" "$CTL" failover s --no-wait
	# Tell the host once the merge is under way but not done (after this
	# result is out: the host kills this VM at once).
	merging() {
		local m end=$((SECONDS + 60 * MV_SCALE))
		while [ $SECONDS -lt $end ]; do
			m=$(colo_status s 4)
			if [ "${m%/*}" -gt 0 ]; then
				echo "$m" > $T/merged
				[ "${m%/*}" -lt "${m#*/}" ]
				return
			fi
			sleep 0.1
		done
		return 1
	}
	step "the merge is under way (the host kills this VM now)" merging
	mv_signal sec-merging "$(cat $T/merged)"
	sleep 3600
}

# After the reboot on the same disk files.
secondary2() {
	local S=$DMCOLO_SHARE out n
	rm -rf $T && mkdir -p $T
	ktap_plan $SEC2_PLAN
	step "the primary has degraded" mv_await pri-degraded 600
	check_disk() {
		read_direct /dev/vda 0 $SIZE > $T/disk &&
		python3 - $T/disk "$S/premerge" "$S/view" $CHUNK <<-'PY'
		import sys
		d, p, v = (open(f, 'rb').read() for f in sys.argv[1:4])
		chunk = int(sys.argv[4])
		if not len(d) == len(p) == len(v):
		    sys.exit("sizes differ: %d %d %d" % (len(d), len(p), len(v)))
		n = dict(buffered=0, view=0, premerge=0, mixed=0, bad=0)
		for off in range(0, len(p), chunk):
		    dc, pc, vc = d[off:off + chunk], p[off:off + chunk], v[off:off + chunk]
		    if pc == vc:
		        if dc != pc:
		            n['bad'] += 1
		            print("# chunk %d was not buffered but changed" % (off // chunk))
		        continue
		    n['buffered'] += 1
		    if dc == vc:
		        n['view'] += 1
		    elif dc == pc:
		        n['premerge'] += 1
		    else:
		        n['mixed'] += 1
		        for s in range(0, chunk, 512):
		            x = dc[s:s + 512]
		            if x != pc[s:s + 512] and x != vc[s:s + 512]:
		                n['bad'] += 1
		                print("# sector %d of chunk %d is neither" % (s // 512, off // chunk))
		print(" ".join("%s=%d" % kv for kv in n.items()))
		PY
	}
	out=$(check_disk)
	echo "$out" | grep '^#'
	n=$(echo "$out" | grep -v '^#' | tail -n 1)
	echo "# figure: after_crash $n"
	field() { echo " $n " | sed -n "s/.* $1=\([0-9]*\) .*/\1/p"; }
	ktap_check "invariant: unbuffered chunks untouched, every sector of a buffered chunk = pre-merge or view" \
		test -n "$n" -a "$(field bad)" = 0
	ktap_check "the buffered chunks found = the buffer's count before the crash ($(cat "$S/buffered"))" \
		test "$(field buffered)" = "$(cat "$S/buffered")"
	merged=$(mv_text sec-merging)
	ktap_check "at least the $merged merged before the kill hold the view" \
		test "$(field view)" -ge "${merged%/*}"
	ktap_check "the crash hit the merge half-way (chunks with the view and with pre-merge content)" \
		test "$(field view)" -gt 0 -a $(($(field premerge) + $(field mixed))) -gt 0
	step "dmcoloctl secondary create (new buffer index) on the same disk" \
		"$CTL" secondary create s --disk /dev/vda --buffer /dev/vdb --chunk 64k --listen "$LISTEN"
	mv_signal sec2-created
	step "the primary resynced, started and checkpointed" mv_await pri-final 1200
	ktap_check "secondary disk = primary disk, every byte" same_bytes /dev/vda 0 "$S/final"
	ktap_check "secondary view = primary disk, every byte" same_bytes /dev/mapper/s 0 "$S/final"
	mv_signal sec2-checked
	ktap_check "dmcoloctl remove s" "$CTL" remove s
	ktap_finish
}

host() {
	local W=$DMCOLO_RESULTS rc
	mv_setup
	ktap_plan $((HOST_PLAN + PRI_PLAN + SEC_PLAN + SEC2_PLAN))
	mv_boot_pair 1200 900 $SIZE
	ktap_check "the secondary's merge is under way" mv_await sec-merging 900
	if mv_kill secondary; then
		ktap_ok "SIGKILL to the secondary's qemu mid-merge"
	else
		ktap_fail "SIGKILL to the secondary's qemu mid-merge"
	fi
	mv_signal sec-killed
	ktap_check "the primary degraded" mv_await pri-degraded 600
	if mv_boot secondary-2 secondary2 900 --net-connect "$MV_SOCK" --net-id 2 \
		--disk "$W/sdisk" --disk "$W/sbuf"; then
		ktap_ok "boot the secondary VM again on the same disk files"
	else
		ktap_fail "boot the secondary VM again on the same disk files"
	fi
	mv_wait secondary-2
	rc=$?
	ktap_check "the rebooted secondary VM ended by itself (vm/run exit 0)" test $rc = 0
	mv_wait primary
	rc=$?
	ktap_check "the primary VM ended by itself (vm/run exit 0)" test $rc = 0
	shut() {
		grep -q 'dmcolo-test: end shutdown' "$W/primary/console.log" &&
			grep -q 'dmcolo-test: end shutdown' "$W/secondary-2/console.log"
	}
	ktap_check "both ran their shutdown (module unload, kmemleak)" shut
	mv_relay primary $PRI_PLAN
	mv_relay secondary $SEC_PLAN
	mv_relay secondary-2 $SEC2_PLAN
	ktap_finish
}

case ${DMCOLO_ROLE:-host} in
primary) primary ;;
secondary) secondary ;;
secondary2) secondary2 ;;
*) host ;;
esac
