#!/bin/bash
# Runner self-test: passes, also after a VM that went down before it.
. "$(dirname "$0")/../lib/ktap.sh"
ktap_plan 1
ktap_check "the VM runs tests after a failure" test -w /mnt/dmcolo
ktap_finish
