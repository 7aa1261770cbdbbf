#!/bin/bash
# The concurrent model (build/tests/colo-concurrent): four writer processes
# on the primary's device and four on the secondary view, on disjoint
# 512-byte sectors that share every chunk, while readers check every
# acknowledged write on both devices, exactly. First on one node
# (colo-ingress + colo-secondary), then on the pair (colo-primary, sync
# and async, forwarding over NBD to an export that writes through: no
# forward waits in nbd-server's page cache). Each run ends with the disks
# compared with the model after a checkpoint, or after a failover's merge.
# kernels: deb61 deb612
# (not the debug kernel: its paths are the data paths every other test
# takes there, and CI's 90 minutes would not hold it; deb61 runs it on
# scsi_debug disks with its vCPUs in parallel)
# timeout: 900
. "$(dirname "$0")/../lib/vm-test.sh"

CONC=$DMCOLO_TOP/build/tests/colo-concurrent
D=/dev/testdisk0 B=/dev/testdisk1 L=/dev/testdisk2
SIN=/dev/mapper/sec-in
SIZE=$((4 << 20)) T=/tmp/concurrent
OPS=$(colo_by_kernel 500 400 300)	# deb61: parallel vCPUs
pair_test $T

mkdir -p $T
disk_setup 3 16
random_file $T/initial $SIZE
fresh() { for d in $D $L; do write_direct $d 0 $T/initial || return 1; done; }
# concurrent PRIMARY_DEV SEED: the model over PRIMARY_DEV and the view.
concurrent() {
	"$CONC" --primary "$1" --secondary $S --initial $T/initial --size $SIZE \
		--out-primary $T/primary --out-secondary $T/secondary --writers 4 \
		--readers 2 --ops "$OPS" --seed "$2" > $T/log 2>&1 || { cat $T/log; return 1; }
}
# disk_is DEV MODEL: the first SIZE bytes of DEV are MODEL.
disk_is() { same_bytes "$1" 0 "$2"; }

ktap_plan 14
# --- one node
fresh
ktap_check "colo-secondary + colo-ingress, started" \
	eval 'secondary_setup $D $B 128 sec && dmsetup message sec 0 start'
ktap_check "8 writers and 4 readers on the ingress and the view ($OPS writes each)" concurrent $SIN 1
ktap_check "... the disk is the initial image + the primary writes" disk_is $D $T/primary
ktap_check "failover: merged, the disk is the initial image + the secondary writes" \
	eval 'dmsetup message sec 0 failover && colo_wait_state sec standalone 120 && disk_is $D $T/secondary'
secondary_teardown sec

fresh
ktap_check "again, then a checkpoint: the view is the initial image + the primary writes" \
	eval 'secondary_setup $D $B 128 sec && dmsetup message sec 0 start && concurrent $SIN 2 &&
		dmsetup message sec 0 checkpoint && disk_is $S $T/primary'
secondary_teardown sec

# --- the pair: the export writes each write through before it replies
export NBD_EXPORT_EXTRA="sync = true"
seed=3
for mode in sync async; do
	fresh
	ktap_check "pair, $mode mode, replicating" \
		eval 'pair_setup pri $L sec $D $B $NBD nosync mode $mode && pair_start 60'
	ktap_check "$mode: 8 writers and 4 readers on the primary and the secondary view" \
		concurrent $P $seed
	ktap_check "$mode: primary checkpoint: local disk = secondary disk = initial + primary writes" \
		eval 'dmsetup message pri 0 checkpoint && disk_is $L $T/primary && disk_is $D $T/primary'
	ktap_check "$mode: the view still holds the secondary writes, then the checkpoint drops them" \
		eval 'disk_is $S $T/secondary && dmsetup message sec 0 checkpoint && disk_is $S $T/primary'
	pair_teardown pri sec $NBD
	seed=$((seed + 1))
done
unset NBD_EXPORT_EXTRA
ktap_check "no nbd-server left" eval '! pgrep -x nbd-server'
ktap_finish
