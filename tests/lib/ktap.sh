# shellcheck shell=bash
# KTAP output for shell tests, kselftest style: exit 0 when all passed,
# 1 when any failed, 4 when everything was skipped.
#
#   ktap_plan N                  "TAP version 13" and "1..N"
#   ktap_ok NAME | ktap_fail NAME [WHY] | ktap_skip NAME WHY
#   ktap_check NAME CMD...       ok when CMD succeeds, else not ok with its output
#   ktap_results FILE            results another program printed (numbered
#                                from the next one): counted, and FILE shown
#   ktap_finish                  exits with the kselftest status
#   ktap_skip_all WHY            plan 0, exit 4

_ktap_n=0 _ktap_fail=0 _ktap_pass=0

ktap_plan() { echo "TAP version 13"; echo "1..$1"; }
ktap_ok() { _ktap_n=$((_ktap_n + 1)); _ktap_pass=$((_ktap_pass + 1)); echo "ok $_ktap_n $1"; }
ktap_fail() {
	_ktap_n=$((_ktap_n + 1)); _ktap_fail=$((_ktap_fail + 1))
	echo "not ok $_ktap_n $1"
	[ -z "${2:-}" ] || echo "$2" | sed 's/^/# /'
}
ktap_skip() { _ktap_n=$((_ktap_n + 1)); echo "ok $_ktap_n $1 # SKIP $2"; }
ktap_check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ktap_ok "$name"
	else
		ktap_fail "$name" "$* failed: $out"
	fi
}
ktap_results() {
	cat "$1"
	_ktap_n=$((_ktap_n + $(grep -cE '^(not )?ok [0-9]+' "$1")))
	_ktap_pass=$((_ktap_pass + $(grep -cE '^ok [0-9]+' "$1")))
	_ktap_fail=$((_ktap_fail + $(grep -cE '^not ok [0-9]+' "$1")))
}
ktap_skip_all() { echo "TAP version 13"; echo "1..0 # SKIP $1"; exit 4; }
ktap_finish() {
	[ $_ktap_fail -eq 0 ] || exit 1
	[ $_ktap_pass -gt 0 ] || [ $_ktap_n -eq 0 ] || exit 4
	exit 0
}
