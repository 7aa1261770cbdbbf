# shellcheck shell=bash
# KTAP output for shell tests, kselftest style: exit 0 when all passed,
# 1 when any failed, 4 when everything was skipped.
#
#   ktap_plan N                  "TAP version 13" and "1..N"
#   ktap_ok NAME | ktap_fail NAME [WHY] | ktap_skip NAME WHY
#   ktap_check NAME CMD...       ok when CMD succeeds, else not ok with its
#                                output (and returns 1)
#   ktap_wait NAME PID LOG       ok when the background PID exits 0, else
#                                not ok with LOG (its output)
#   ktap_results FILE            results another program printed (numbered
#                                from the next one): counted, and FILE shown
#   ktap_finish                  exits with the kselftest status
#   ktap_skip_all WHY            plan 0, exit 4
#
# The runners (tests/run, tests/check, tests/packaging) print their results
# with the same counters, in one line each, the detail in their logs:
#
#   ktap_leaf ok|fail|skip NAME [REASON]   "not ok N NAME # REASON"
#   ktap_number_from N           number the next result N + 1
#   ktap_renumber < FILE         another runner's results, numbered on from
#                                ours (its summary line dropped, the rest
#                                shown); count them with ktap_add_counts
#   ktap_add_counts P F S        add passed, failed, skipped results
#   ktap_n                       the last number given
#   ktap_counts                  "P F S"
#   ktap_summary                 "P passed, F failed[, S skipped]"
#   ktap_all_passed              true when nothing failed

_ktap_n=0 _ktap_fail=0 _ktap_pass=0 _ktap_skip=0

ktap_plan() { echo "TAP version 13"; echo "1..$1"; }
ktap_ok() { _ktap_n=$((_ktap_n + 1)); _ktap_pass=$((_ktap_pass + 1)); echo "ok $_ktap_n $1"; }
ktap_fail() {
	_ktap_n=$((_ktap_n + 1)); _ktap_fail=$((_ktap_fail + 1))
	echo "not ok $_ktap_n $1"
	[ -z "${2:-}" ] || echo "$2" | sed 's/^/# /'
}
ktap_skip() {
	_ktap_n=$((_ktap_n + 1)); _ktap_skip=$((_ktap_skip + 1))
	echo "ok $_ktap_n $1 # SKIP $2"
}
ktap_check() {
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		ktap_ok "$name"
	else
		ktap_fail "$name" "$* failed: $out"
		return 1
	fi
}
ktap_wait() {
	if wait "$2"; then
		ktap_ok "$1"
	else
		ktap_fail "$1" "$(cat "$3")"
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

ktap_leaf() {
	_ktap_n=$((_ktap_n + 1))
	case $1 in
	ok) echo "ok $_ktap_n $2"; _ktap_pass=$((_ktap_pass + 1)) ;;
	skip) echo "ok $_ktap_n $2 # SKIP ${3:-}"; _ktap_skip=$((_ktap_skip + 1)) ;;
	fail) echo "not ok $_ktap_n $2${3:+ # $3}"; _ktap_fail=$((_ktap_fail + 1)) ;;
	esac
}
ktap_number_from() { _ktap_n=$1; }
ktap_renumber() {
	local line
	while IFS= read -r line; do
		case $line in
		"ok "[0-9]*|"not ok "[0-9]*)
			_ktap_n=$((_ktap_n + 1))
			echo "$line" | sed -E "s/^(not )?ok [0-9]+ /\1ok $_ktap_n /" ;;
		[0-9]*" passed, "*) ;;
		*) echo "$line" ;;
		esac
	done
}
ktap_add_counts() {
	_ktap_pass=$((_ktap_pass + $1)) _ktap_fail=$((_ktap_fail + $2))
	_ktap_skip=$((_ktap_skip + $3))
}
ktap_n() { echo $_ktap_n; }
ktap_counts() { echo "$_ktap_pass $_ktap_fail $_ktap_skip"; }
ktap_summary() {
	local line="$_ktap_pass passed, $_ktap_fail failed"
	[ $_ktap_skip -eq 0 ] || line="$line, $_ktap_skip skipped"
	echo "$line"
}
ktap_all_passed() { [ $_ktap_fail -eq 0 ]; }
