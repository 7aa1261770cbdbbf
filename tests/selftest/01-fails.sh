#!/bin/bash
# Runner self-test: one passing and one failing KTAP result.
. "$(dirname "$0")/../lib/ktap.sh"
ktap_plan 2
ktap_ok "passes"
ktap_fail "fails on purpose"
ktap_finish
