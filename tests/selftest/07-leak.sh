#!/bin/bash
# Runner self-test: passes, but the self-test module leaks memory (on a
# kernel with kmemleak, the VM's kmemleak check must fail).
. "$(dirname "$0")/../lib/ktap.sh"
. "$(dirname "$0")/selftest-module"
ktap_plan 1
ktap_check "the self-test module leaked memory" selftest_module leak
ktap_finish
