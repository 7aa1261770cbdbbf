#!/bin/bash
# Runner self-test: passes, but leaves dm_colo unloaded.
. "$(dirname "$0")/../lib/ktap.sh"
ktap_plan 1
ktap_check "dm_colo unloaded (and not loaded again)" rmmod dm_colo
ktap_finish
