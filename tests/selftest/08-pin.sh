#!/bin/bash
# Runner self-test: passes, but pins the self-test module (its unload at the
# end of the VM must fail).
. "$(dirname "$0")/../lib/ktap.sh"
ktap_plan 1
pin() {
	grep -q '^dmcolo_selftest_warn ' /proc/modules ||
		insmod "$DMCOLO_TOP/build/$(uname -r)/selftest/dmcolo_selftest_warn.ko" warn=0 || return 1
	echo pin > /sys/module/dmcolo_selftest_warn/parameters/action
}
ktap_check "the self-test module pinned" pin
ktap_finish
