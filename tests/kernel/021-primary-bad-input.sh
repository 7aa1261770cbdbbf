#!/bin/bash
# Malformed colo-primary constructor lines and messages: each is refused
# (messages with the documented errno: EINVAL for unknown words and extra
# arguments, EBUSY for start/stop/resync in the wrong state, EIO for a
# checkpoint outside replicating, at once), no device is left behind, the
# state does not change, and the device works afterwards. The remote is a
# ramdisk behind dm-linear here (no NBD needed to parse a table); loading
# the `error` target under it makes the primary degraded.
# Only on deb612: argument parsing does not depend on the disks or on
# parallel vCPUs (the debug kernel checks the parsers in 040).
# kernels: deb612
# timeout: 300
. "$(dirname "$0")/../lib/vm-test.sh"

vm_test_on_exit /tmp/pbad- bad good rem tinyl tinyr
disk_setup 3 32
SZ=$((32 * 2048))

# refuse_msg STATE ERRNO_TEXT MESSAGE...: the message to `good` fails at
# once with that error and the state stays STATE.
refuse_msg() {
	local state=$1 err=$2 out rc
	shift 2
	out=$(timeout 10 dmsetup message good 0 "$@" 2>&1)
	rc=$?
	if [ $rc -eq 0 ]; then
		ktap_fail "$state: message '$*' refused ($err)" "it was accepted"
	elif [ $rc -eq 124 ]; then
		ktap_fail "$state: message '$*' refused ($err)" "no answer within 10 s"
	elif [[ $out != *"$err"* ]]; then
		ktap_fail "$state: message '$*' refused ($err)" "wrong error: $out"
	elif [ "$(colo_status good 1)" != "$state" ]; then
		ktap_fail "$state: message '$*' refused ($err)" "state changed to $(colo_status good 1)"
	else
		ktap_ok "$state: message '$*' refused ($err)"
	fi
}
EINVAL="Invalid argument" EBUSY="Device or resource busy" EIO="Input/output error"

ktap_plan 70
T="0 $SZ colo-primary"
R="$T /dev/testdisk0 /dev/testdisk1"
refuse_table bad "$T"
refuse_table bad "$T /dev/testdisk0"
refuse_table bad "$T /dev/nonexistent /dev/testdisk1"
refuse_table bad "$T /dev/testdisk0 /dev/nonexistent"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk0"
refuse_table bad "$R 1"
refuse_table bad "$R 1 foo"
refuse_table bad "$R 2 nosync foo"
refuse_table bad "$R 1 mode"
refuse_table bad "$R 2 mode fast"
refuse_table bad "$R 2 mode 1"
refuse_table bad "$R 4 mode sync mode async"
refuse_table bad "$R 2 nosync nosync"
refuse_table bad "$R 4 max_inflight_kb 64 max_inflight_kb 128"
refuse_table bad "$R 4 region_sectors 1024 region_sectors 2048"
refuse_table bad "$R 1 max_inflight_kb"
refuse_table bad "$R 2 max_inflight_kb abc"
refuse_table bad "$R 2 max_inflight_kb 0"
refuse_table bad "$R 2 max_inflight_kb 3"
refuse_table bad "$R 2 max_inflight_kb 4194305"
refuse_table bad "$R 2 max_inflight_kb -64"
refuse_table bad "$R 2 max_inflight_kb 64k"
refuse_table bad "$R 2 max_inflight_kb 99999999999999999999"
refuse_table bad "$R 1 region_sectors"
refuse_table bad "$R 2 region_sectors 1000"
refuse_table bad "$R 2 region_sectors 4"
refuse_table bad "$R 2 region_sectors 0"
refuse_table bad "$R 2 region_sectors 4194304"
refuse_table bad "0 2048 colo-primary /dev/testdisk0 /dev/testdisk1 2 region_sectors 4096"
refuse_table bad "$R 3 mode sync"
refuse_table bad "$R 1 mode sync"
refuse_table bad "$R x mode sync"
refuse_table bad "$R -1"
refuse_table bad "$R 2 region_sectors 1024 extra"
refuse_table bad "0 $((SZ + 8)) colo-primary /dev/testdisk0 /dev/testdisk1"
dmsetup create tinyl --table "0 $((SZ / 2)) linear /dev/testdisk2 0"
dmsetup create tinyr --table "0 $((SZ / 2)) linear /dev/testdisk2 $((SZ / 2))"
refuse_table bad "$T /dev/mapper/tinyl /dev/testdisk1"
refuse_table bad "$T /dev/testdisk0 /dev/mapper/tinyr"
dm_remove tinyl tinyr

# A good device; its remote can be made to fail.
dmsetup create rem --table "0 $SZ linear /dev/testdisk1 0"
G="$T /dev/testdisk0 /dev/mapper/rem 1 nosync"
ktap_check "a well-formed device is accepted" dmsetup create good --table "$G"
ktap_check "idle, 64/64 regions in sync (nosync)" \
	test "$(colo_status good 1) $(colo_status good 3)" = "idle 64/64"
reload_refused() {
	dmsetup load good --table "$1" > /dev/null 2>&1 && { dmsetup clear good; return 1; }
	[ "$(colo_status good 1)" = idle ] && [ "$(dmsetup table good | cut -d' ' -f3-)" = \
		"colo-primary $(cat /sys/block/$(disk_name /dev/testdisk0)/dev) $(dmsetup info -c --noheadings -o major,minor --separator : rem) 1 nosync" ]
}
ktap_check "reload with a bad mode refused, the live table kept" reload_refused "$T /dev/testdisk0 /dev/mapper/rem 2 mode bogus"

refuse_msg idle "$EINVAL" foo
refuse_msg idle "$EINVAL" 123
refuse_msg idle "$EINVAL" start now
refuse_msg idle "$EINVAL" failover
refuse_msg idle "$EIO" checkpoint
refuse_msg idle "$EINVAL" checkpoint 1
refuse_msg idle "$EBUSY" resync
refuse_msg idle "$EBUSY" stop
refuse_msg idle "$EINVAL" start full now
refuse_msg idle "$EBUSY" resync full
ktap_check "start" dmsetup message good 0 start
ktap_check "replicating" colo_wait_state good replicating 30
refuse_msg replicating "$EBUSY" start
refuse_msg replicating "$EBUSY" resync
refuse_msg replicating "$EBUSY" start full
refuse_msg replicating "$EINVAL" stop now
refuse_msg replicating "$EINVAL" checkpoint now
refuse_msg replicating "$EINVAL" merge

# The remote fails: the caller's write still succeeds, the device degrades.
random_file /tmp/pbad-q 4096
dmsetup suspend rem && dmsetup load rem --table "0 $SZ error" && dmsetup resume rem
ktap_check "a write while the remote fails succeeds" pwrite_direct /dev/mapper/good $((3 << 20)) /tmp/pbad-q
ktap_check "degraded" colo_wait_state good degraded 30
refuse_msg degraded "$EBUSY" start
refuse_msg degraded "$EIO" checkpoint
refuse_msg degraded "$EINVAL" resync now
dmsetup suspend rem && dmsetup load rem --table "0 $SZ linear /dev/testdisk1 0" && dmsetup resume rem
ktap_check "resync once the remote works again" dmsetup message good 0 resync
resynced() { colo_wait_state good replicating 30 && [ "$(colo_status good 4)" = 1 ]; }
ktap_check "replicating again, the one region written copied" resynced
ktap_check "stop" dmsetup message good 0 stop
refuse_msg idle "$EIO" checkpoint

random_file /tmp/pbad-pat $((256 << 10))
round_trip() { write_direct_dev /dev/mapper/good 4096 /tmp/pbad-pat && same_bytes /dev/mapper/good 4096 /tmp/pbad-pat; }
ktap_check "the device still round-trips data" round_trip
ktap_check "the local disk holds it" same_bytes /dev/testdisk0 4096 /tmp/pbad-pat
ktap_check "the remote holds the write made while it failed (resync)" same_bytes /dev/testdisk1 $((3 << 20)) /tmp/pbad-q
ktap_finish
