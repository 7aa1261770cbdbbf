#!/bin/bash
# Runner self-test: passes, but pins the self-test module (its unload at the
# end of the VM must fail).
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/selftest-module"
ktap_plan 1
ktap_check "the self-test module pinned" selftest_module pin
ktap_finish
