#!/bin/bash
# Runner self-test: after the tests that left things behind, the VM is
# clean again and dm_colo loaded.
. "$(dirname "$0")/../lib/ktap.sh"
ktap_plan 4
ktap_check "dm_colo loaded again" grep -q '^dm_colo ' /proc/modules
no_dm() { [ -z "$(dmsetup ls | grep -v '^No devices found')" ]; }
ktap_check "no dm device left" no_dm
no_nbd() { ! ls /sys/block/nbd*/pid > /dev/null 2>&1 && ! pgrep -x nbd-server; }
ktap_check "no NBD connection or nbd-server left" no_nbd
ktap_check "nbd unloaded" bash -c "! grep -q '^nbd ' /proc/modules"
ktap_finish
