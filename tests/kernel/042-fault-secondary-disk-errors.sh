#!/bin/bash
# The secondary disk (not the buffer) fails. The disk under colo-secondary
# is a dm device (sdisk) over a ramdisk whose table is switched between
# linear and dm-delay with reads or writes sent to an `error` device, so
# reads and writes fail separately (dm-flakey's error_reads is 6.5+).
#
# Reads fail, replication running:
#  (c) a secondary read of an unbuffered chunk fails with EIO, reads of
#      buffered chunks are exact; a partial secondary write to an
#      unbuffered chunk fails with EIO (broken, copy_failed: the node is
#      no failover target to checkpoint), a whole-chunk one needs no read
#      and works;
#  (a) a primary write to an unbuffered chunk fails with EIO (broken: its
#      original could not be saved), and never reaches the
#      disk (which still takes writes); broken, copy_failed; primary writes
#      to saved chunks still pass; checkpoint refused; colo-ingress counts
#      the failed write as refused. Once reads work
#      again the secondary view is exact, and failover gives the last
#      checkpoint + the secondary's writes, byte for byte.
# Writes fail during the failover merge:
#  (b) merging stays with error merge_failed and nothing merged, the
#      secondary view stays exact (also after a write into a failed chunk);
#      once the disk is healed another `failover` retries: standalone, every
#      chunk merged, disk = secondary view byte for byte.
#  (d) colo-secondary removed while its merge is stalled (colo-ingress
#      still there): the kernel cannot refuse a removal, so it keeps the
#      unmerged buffer for the next colo-secondary over the same devices;
#      meanwhile the ingress refuses, dm-colo cannot be unloaded (once
#      colo-ingress is gone too), it holds the devices open (the disk's
#      dm device cannot be removed), another chunk size is refused.
#      Created again: merging with merge_failed, the view exact, the hold
#      let go; after repair failover merges it all.
#  (e) a checkpoint whose wait for in-flight I/O sees the buffer break
#      (a copy-in whose disk read fails after 1 s) is refused, the epoch
#      unchanged and the buffer kept: failover still gives the last
#      checkpoint + the secondary's writes.
# Mutations it kills: never keeping the buffer at removal (36-37, 39-40,
# 42-43: dm-colo unloads, the new colo-secondary starts idle over a
# half-merged disk); a kept buffer whose devices are not held open (37),
# or still held after the takeover (41); taking it over with another
# chunk size (38); a checkpoint that does not look at the state after its
# drain (46-48).
# On deb612, and on the debug kernel for the removal path's locking and
# leaks (kept buffer, module reference); 018 takes the copy-in error path
# there too.
# kernels: deb612 debug
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

C=$((64 * 1024)) CS=128 NCH=64
SECTORS=$((NCH * CS))
S=/dev/mapper/sde IN=/dev/mapper/sde-in SDISK=/dev/mapper/sdedisk
# A failure while (d)'s disk is parked (it holds sdedisk and the buffer
# open, and pins dm-colo): take it over and let it merge, so that nothing
# stays behind for the tests after this one.
test_stop() {
	if dmsetup info sde || ! dmsetup info sdedisk; then return 0; fi
	disk_mode ok
	dmsetup create sde --table "0 $SECTORS colo-secondary $SDISK /dev/testdisk1 $CS" &&
		dmsetup message sde 0 failover && colo_wait_state sde standalone 30
} > /dev/null 2>&1
vm_test_on_exit /tmp/sde- sde-in sde sdedisk sdeerr

model_write() { dd if="$3" of="$1" bs=512 seek=$(($2 / 512)) conv=notrunc status=none; }
# chunk_of FILE N OUT: chunk N of the image FILE.
chunk_of() { dd if="$1" of="$3" bs=$C skip="$2" count=1 status=none; }
# disk_mode ok|noread|nowrite|slowfail: the secondary disk's table
# (slowfail: reads fail after 1 s).
disk_mode() {
	local t
	case $1 in
	ok) t="linear /dev/testdisk0 0" ;;
	noread) t="delay /dev/mapper/sdeerr 0 0 /dev/testdisk0 0 0" ;;
	nowrite) t="delay /dev/testdisk0 0 0 /dev/mapper/sdeerr 0 0" ;;
	slowfail) t="delay /dev/mapper/sdeerr 0 1000 /dev/testdisk0 0 0" ;;
	esac
	dmsetup suspend --nolockfs sdedisk && dmsetup load sdedisk --table "0 $SECTORS $t" &&
		dmsetup resume sdedisk
}
# eio CMD...: CMD fails, and with "Input/output error".
eio() {
	local out
	if out=$("$@" 2>&1 > /dev/null); then
		echo "succeeded"
		return 1
	fi
	case $out in
	*"Input/output error"*) return 0 ;;
	*) echo "failed otherwise: $out"; return 1 ;;
	esac
}
# fresh: a random image on the disk, S and S-in, started.
fresh() {
	dm_remove sde-in sde
	disk_mode ok &&
	random_file /tmp/sde-initial $((NCH * C)) &&
	write_direct $SDISK 0 /tmp/sde-initial &&
	cp /tmp/sde-initial /tmp/sde-view &&
	secondary_setup $SDISK /dev/testdisk1 $CS sde && dmsetup message sde 0 start
}
wait_fields() {	# wait_fields NAME "FIELDS" WANT SECONDS
	local i got
	for i in $(seq $(($4 * 10))); do
		# shellcheck disable=SC2086 # FIELDS: several numbers
		got=$(colo_fields "$1" $2)
		[ "$got" = "$3" ] && return 0
		sleep 0.1
	done
	echo "$1: '$got', not '$3' after $4 s: $(dmsetup status "$1")"
	return 1
}

disk_setup 2 16
dmsetup create sdeerr --table "0 $SECTORS error"
dmsetup create sdedisk --table "0 $SECTORS linear /dev/testdisk0 0"
random_file /tmp/sde-p 8192
random_file /tmp/sde-q 4096
random_file /tmp/sde-whole $C

ktap_plan 48
# --- (c) and (a): the disk's reads fail
ktap_check "start over a random image" fresh
write_odirect $IN 4096 /tmp/sde-p			# chunk 0 saved
write_odirect $S $((2 * C + 8192)) /tmp/sde-q		# chunk 2 buffered
model_write /tmp/sde-view $((2 * C + 8192)) /tmp/sde-q
ktap_check "the disk's reads fail" disk_mode noread
ktap_check "(c) a secondary read of an unbuffered chunk fails with EIO" eio read_direct $S $((10 * C)) 4096
chunk_of /tmp/sde-view 0 /tmp/sde-v0
chunk_of /tmp/sde-view 2 /tmp/sde-v2
buffered_exact() { same_bytes $S 0 /tmp/sde-v0 && same_bytes $S $((2 * C)) /tmp/sde-v2; }
ktap_check "(c) secondary reads of buffered chunks are exact (chunk 0: its saved original)" buffered_exact
ktap_check "(c) a partial secondary write to an unbuffered chunk fails with EIO" \
	eio write_odirect $S $((12 * C + 4096)) /tmp/sde-q
ktap_check "(c) broken, error copy_failed" test "$(colo_fields sde 1 7)" = "broken copy_failed"
ktap_check "(c) a whole-chunk secondary write needs no read: it works" write_odirect $S $((13 * C)) /tmp/sde-whole
model_write /tmp/sde-view $((13 * C)) /tmp/sde-whole
refused0=$(colo_status sde-in 3)
ktap_check "(a) a primary write to an unbuffered chunk fails with EIO (its original cannot be saved)" \
	eio write_odirect $IN $((7 * C + 4096)) /tmp/sde-p
chunk_of /tmp/sde-initial 7 /tmp/sde-i7
ktap_check "(a) it never reached the disk (which takes writes)" same_bytes /dev/testdisk0 $((7 * C)) /tmp/sde-i7
ktap_check "(a) broken, error copy_failed" test "$(colo_fields sde 1 7)" = "broken copy_failed"
ktap_check "(a) colo-ingress: broken, 1 write passed, 1 refused (the failed one)" \
	test "$(colo_fields sde-in 1 2 3)" = "broken 1 $((refused0 + 1))"
ktap_check "(a) a primary write to a saved chunk still passes" write_odirect $IN $((C - 4096)) /tmp/sde-q
ktap_check "(a) checkpoint refused while broken" must_fail dmsetup message sde 0 checkpoint
ktap_check "the disk's reads work again" disk_mode ok
ktap_check "(c) the whole secondary view is exact again (checkpoint + secondary writes)" \
	same_bytes $S 0 /tmp/sde-view
failover_standalone() { dmsetup message sde 0 failover && colo_wait_state sde standalone 30; }
ktap_check "(a) failover: standalone" failover_standalone
ktap_check "(a) disk = last checkpoint + secondary writes, byte for byte" same_bytes /dev/testdisk0 0 /tmp/sde-view

# --- (b): the disk's writes fail during the merge
ktap_check "(b) start again over a new random image" fresh
load() {
	local i
	for i in 0 1 2 3 4 5 6 7; do write_odirect $IN $((i * C + 512 * i)) /tmp/sde-q || return 1; done
	for i in 4 5 6 7 8 9 10 11; do
		write_odirect $S $((i * C + 4096 * i)) /tmp/sde-p || return 1
		model_write /tmp/sde-view $((i * C + 4096 * i)) /tmp/sde-p
	done
}
ktap_check "(b) primary writes into 8 chunks, secondary writes into 8 (12 buffered)" load
ktap_check "(b) 12 chunks buffered" test "$(colo_status sde 3)" = "12/256"
ktap_check "(b) the disk's writes fail" disk_mode nowrite
ktap_check "(b) failover accepted" dmsetup message sde 0 failover
ktap_check "(b) merging, nothing merged, error merge_failed" wait_fields sde "1 4 7" "merging 0/12 merge_failed" 30
sleep 1		# the 12 copies (16 at once) have all ended
ktap_check "(b) the secondary view is kept" same_bytes $S 0 /tmp/sde-view
model_write /tmp/sde-view $((5 * C + 8192)) /tmp/sde-q
ktap_check "(b) a secondary write into a chunk that failed to merge works" write_odirect $S $((5 * C + 8192)) /tmp/sde-q
ktap_check "(b) a secondary write to an unbuffered chunk fails with EIO (the disk)" \
	eio write_odirect $S $((30 * C)) /tmp/sde-q
sleep 1
ktap_check "(b) still merging, nothing merged" test "$(colo_fields sde 1 4 7)" = "merging 0/12 merge_failed"
ktap_check "(b) the disk's writes work again" disk_mode ok
ktap_check "(b) another failover retries the merge: standalone" failover_standalone
ktap_check "(b) every chunk merged, no error" test "$(colo_fields sde 1 4 7)" = "standalone 12/12 -"
disk_is_view() { same_bytes /dev/testdisk0 0 /tmp/sde-view && same_bytes $S 0 /tmp/sde-view; }
ktap_check "(b) disk = secondary view, byte for byte" disk_is_view

# --- (d): colo-secondary removed with its merge stalled
ktap_check "(d) start again: a new image, 12 chunks buffered, the disk's writes fail" \
	eval 'fresh && load && disk_mode nowrite'
ktap_check "(d) failover: merging, nothing merged, merge_failed" \
	eval 'dmsetup message sde 0 failover && wait_fields sde "1 4 7" "merging 0/12 merge_failed" 30'
sleep 1
ktap_check "(d) colo-secondary removed (colo-ingress stays)" dmsetup remove sde
ktap_check "(d) colo-ingress: detached, refuses a read" \
	eval 'test "$(colo_status sde-in 1)" = detached && eio read_direct $IN 0 4096'
ktap_check "(d) with colo-ingress removed too, dm-colo cannot be unloaded: it keeps the buffer" \
	eval 'dmsetup remove sde-in && must_fail rmmod dm_colo'
open_count() { dmsetup info -c --noheadings -o open "$1" | tr -d ' '; }
ktap_check "(d) it holds the disk open meanwhile: the disk's device cannot be removed" \
	eval 'test "$(open_count sdedisk)" = 1 && must_fail dmsetup remove sdedisk'
ktap_check "(d) a colo-secondary over the disk with another chunk size is refused" \
	must_fail dmsetup create sde --table "0 $SECTORS colo-secondary $SDISK /dev/testdisk1 $((CS / 2))"
ktap_check "(d) created again over the same devices: merging 0/12, merge_failed" \
	eval 'dmsetup create sde --table "0 $SECTORS colo-secondary $SDISK /dev/testdisk1 $CS" &&
	test "$(colo_fields sde 1 4 7)" = "merging 0/12 merge_failed"'
ktap_check "(d) the secondary view is exact" same_bytes $S 0 /tmp/sde-view
ktap_check "(d) taken over, the kept hold is let go: the disk is open once (the new table)" \
	test "$(open_count sdedisk)" = 1
ktap_check "(d) the disk's writes work again; failover: standalone" eval 'disk_mode ok && failover_standalone'
ktap_check "(d) every chunk merged; disk = secondary view, byte for byte" \
	eval 'test "$(colo_fields sde 1 4 7)" = "standalone 12/12 -" && disk_is_view'

# --- (e): the buffer breaks while a checkpoint waits for in-flight I/O
ktap_check "(e) start again over a new image; secondary writes into 8 chunks" \
	eval 'fresh && load'
ktap_check "(e) the disk's reads fail after 1 s" disk_mode slowfail
write_odirect $IN $((20 * C + 4096)) /tmp/sde-p > /dev/null 2>&1 &	# its copy-in fails
sleep 0.3
ktap_check "(e) a checkpoint while that copy-in runs is refused" \
	must_fail dmsetup message sde 0 checkpoint
wait
ktap_check "(e) broken, copy_failed, epoch 0, 12 chunks still buffered" \
	test "$(colo_fields sde 1 2 3 7)" = "broken 0 12/256 copy_failed"
ktap_check "(e) reads work again; failover: disk = checkpoint + secondary writes" \
	eval 'disk_mode ok && failover_standalone && disk_is_view'
ktap_finish
