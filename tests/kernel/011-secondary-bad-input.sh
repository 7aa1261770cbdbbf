#!/bin/bash
# Malformed constructor lines and messages for colo-secondary and
# colo-ingress: each is refused with an error, the state does not change,
# the kernel stays silent, and the devices work afterwards.
# Not on deb61: argument parsing does not depend on the disks or on
# parallel vCPUs; not on the debug kernel: 040 takes the same refusal
# paths there, for every target.
# kernels: deb612
# timeout: 400
. "$(dirname "$0")/../lib/vm-test.sh"

vm_test_on_exit /tmp/bad- bad bad-in bad-tiny good-in good
disk_setup 2 32
SZ=$((32 * 2048))

# refuse_msg DEV STATE MESSAGE...: the message fails and the state stays.
refuse_msg() {
	local dev=$1 state=$2
	shift 2
	if dmsetup message "$dev" 0 "$@" > /dev/null 2>&1; then
		ktap_fail "message refused in $state: $*" "it was accepted"
	elif [ "$(colo_status good 1)" != "$state" ]; then
		ktap_fail "message refused in $state: $*" "state changed to $(colo_status good 1)"
	else
		ktap_ok "message refused in $state: $*"
	fi
}

ktap_plan 48
T="0 $SZ colo-secondary"
refuse_table bad "$T"
refuse_table bad "$T /dev/testdisk0"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 abc"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 0"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 4"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 12"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 -8"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 131072"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 99999999999999999999"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 8x"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 0x10"
refuse_table bad "$T /dev/nonexistent /dev/testdisk1 8"
refuse_table bad "$T /dev/testdisk0 /dev/nonexistent 8"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk0 8"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 8 1 foo"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 8 x"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 8 2 a"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 8 -1"
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 8 0 extra"
refuse_table bad "0 $((SZ + 8)) colo-secondary /dev/testdisk0 /dev/testdisk1 8"
dmsetup create bad-tiny --table "0 4 linear /dev/testdisk1 0"
refuse_table bad "$T /dev/testdisk0 /dev/mapper/bad-tiny 8"
dm_remove bad-tiny
refuse_table bad "0 $SZ colo-ingress"
refuse_table bad "0 $SZ colo-ingress /dev/testdisk0 /dev/testdisk1"
refuse_table bad-in "0 $SZ colo-ingress /dev/testdisk0"
refuse_table bad-in "0 $SZ colo-ingress /dev/nonexistent"

ktap_check "a well-formed pair is accepted" secondary_setup /dev/testdisk0 /dev/testdisk1 8 good
refuse_table bad "$T /dev/testdisk0 /dev/testdisk1 8"
refuse_table bad-in "0 $((SZ + 8)) colo-ingress /dev/testdisk0"
reload_refused() {
	dmsetup load good --table "$1" 2>/dev/null && { dmsetup clear good; return 1; }
	return 0
}
ktap_check "reload with another buffer_dev refused" \
	reload_refused "$T /dev/testdisk0 /dev/testdisk0 8"
ktap_check "reload with another chunk size refused" \
	reload_refused "$T /dev/testdisk0 /dev/testdisk1 16"

refuse_msg good idle foo
refuse_msg good idle 123
refuse_msg good idle start now
refuse_msg good idle checkpoint
refuse_msg good idle failover
refuse_msg good idle stop
refuse_msg good-in idle start
dmsetup message good 0 start
refuse_msg good running start
refuse_msg good running checkpoint 1
refuse_msg good running "START" "now"
refuse_msg good running merge
dmsetup message good 0 failover
for _ in $(seq 100); do [ "$(colo_status good 1)" = standalone ] && break; sleep 0.1; done
refuse_msg good standalone start
refuse_msg good standalone checkpoint
refuse_msg good standalone stop
refuse_msg good standalone failover

random_file /tmp/bad-pat $((256 << 10))
ktap_check "the device still round-trips data" \
	bash -c "$(declare -f write_direct read_direct same_bytes); write_direct /dev/mapper/good 4096 /tmp/bad-pat && same_bytes /dev/mapper/good 4096 /tmp/bad-pat"
ktap_check "and the standalone disk holds it" same_bytes /dev/testdisk0 4096 /tmp/bad-pat
ktap_finish
