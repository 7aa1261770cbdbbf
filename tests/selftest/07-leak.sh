#!/bin/bash
# Runner self-test: passes, but the self-test module leaks memory (on a
# kernel with kmemleak, the VM's kmemleak check must fail).
. "$(dirname "$0")/../lib/ktap.sh"
ktap_plan 1
leak() {
	# Loaded by 02-warn, unless its WARNING took that VM down.
	grep -q '^dmcolo_selftest_warn ' /proc/modules ||
		insmod "$DMCOLO_TOP/build/$(uname -r)/selftest/dmcolo_selftest_warn.ko" warn=0 || return 1
	echo leak > /sys/module/dmcolo_selftest_warn/parameters/action
}
ktap_check "the self-test module leaked memory" leak
ktap_finish
