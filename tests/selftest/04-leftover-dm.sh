#!/bin/bash
# Runner self-test: passes, but leaves a dm device behind.
. "$(dirname "$0")/../lib/ktap.sh"
ktap_plan 1
ktap_check "a dm device created (and left)" dmsetup create selftest-left --table "0 8 zero"
ktap_finish
