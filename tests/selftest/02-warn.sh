#!/bin/bash
# Runner self-test: every result passes, but the kernel WARNs while it runs.
. "$(dirname "$0")/../lib/ktap.sh"
ktap_plan 1
ktap_check "module that warns inserted" \
	insmod "$DMCOLO_TOP/build/$(uname -r)/selftest/dmcolo_selftest_warn.ko"
ktap_finish
