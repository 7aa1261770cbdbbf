# shellcheck shell=bash
# tests/run's judge: one test's KTAP, exit status, leftovers and kernel log
# turned into leaf results, and the end of each VM (module unload,
# kmemleak). Sourced by tests/run; uses its settings (top, KVER,
# KCMDLINE) and tests/lib/ktap.sh.

# Kernel log lines of one segment ("boot", a test name, "shutdown") that
# match the report patterns, each with the 40 lines after it (where the
# call trace is); segments are cut at dmcolo-test markers.
segment_reports() {
	[ -f "$1" ] || return 0
	awk -v want="$2" '
		{ sub(/\r$/, "") }
		/dmcolo-test: begin / { sub(/.*dmcolo-test: begin /, ""); seg = $1; next }
		/dmcolo-test: end / { seg = "between"; next }
		{ if ((seg == "" ? "boot" : seg) == want) print }
	' "$1" | "$top/tests/vm/report-lines" 40
}

show() { sed 's/^/# /' | head -n "${2:-30}"; }

# judge_shutdown UNIT DIR: the end of one VM, from tests/vm/guest-suite's
# DIR/shutdown: every module of ours unloads (dm_colo loaded until then),
# and kmemleak, on a kernel booted with kmemleak=on ($KCMDLINE), is active
# and has no report naming our modules (tests/vm/kmemleak-ours; the other
# reports are listed, not failed).
judge_shutdown() {
	local unit=$1 dir=$2 st=$2/shutdown line state bad=no ours others
	if [ ! -f "$st" ] || ! grep -qx done "$st"; then
		ktap_leaf fail "$unit/shutdown" "the VM did not finish its shutdown (module unload, kmemleak scan)"
		[ ! -f "$st" ] || show < "$st"
		return
	fi
	while IFS= read -r line; do
		case $line in
		"rmmod "*|"dm_colo not loaded"|"kmemleak: inactive after"*)
			ktap_leaf fail "$unit/shutdown" "$line"; bad=yes ;;
		esac
	done < "$st"
	[ $bad = yes ] || ktap_leaf ok "$unit/shutdown"
	state=$(sed -n 's/^kmemleak: //p' "$st" | head -n 1)
	if [ "$state" != active ]; then
		if [[ " $KCMDLINE " == *" kmemleak=on "* ]]; then
			ktap_leaf fail "$unit/kmemleak" "kmemleak not active on a kmemleak=on kernel: ${state:-no state}"
		else
			echo "# $unit: kmemleak ${state:-not reported} ($KVER has none): no leak check"
		fi
		return
	fi
	ours=$("$top/tests/vm/kmemleak-ours" "$dir")
	others=$("$top/tests/vm/kmemleak-ours" -o "$dir")
	if [ -n "$ours" ]; then
		ktap_leaf fail "$unit/kmemleak" "kmemleak: $(echo "$ours" | grep -c '^unreferenced object') leaks naming our modules"
		echo "$ours" | show 60
	else
		ktap_leaf ok "$unit/kmemleak"
	fi
	if [ -n "$others" ]; then
		echo "# $unit: kmemleak: $(echo "$others" | grep -c '^unreferenced object') reports not naming our modules (not failed):"
		echo "$others" | show 40
	fi
}

# judge KERNEL NAME DIR RC|crashed: turn one test's KTAP, exit status and
# kernel log into leaf results.
judge() {
	local kname=$1 name=$2 dir=$3 rc=$4 plan results=0 line kr sub
	local log=$dir/$name.out
	plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | head -n 1)
	while IFS= read -r line; do
		results=$((results + 1))
		sub=$(echo "$line" | sed -E 's/^(not )?ok [0-9]+ -? ?//')
		case $line in
		"not ok "*) ktap_leaf fail "$kname/$name/${sub%% # *}" ;;
		*"# SKIP"*|*"# skip"*) ktap_leaf skip "$kname/$name/${sub%% # *}" "${sub#* # [Ss][Kk][Ii][Pp]}" ;;
		*) ktap_leaf ok "$kname/$name/$sub" ;;
		esac
	done < <(grep -E '^(not )?ok [0-9]+' "$log")
	grep '^# figure: ' "$log" | sed "s|^# figure: |# figure: $kname/$name: |"

	if [ "$rc" = crashed ]; then
		ktap_leaf fail "$kname/$name" "the VM went down during this test"
		kr=$(segment_reports "$dir/console.log" "$name")
		{ echo "$kr"; tail -n 30 "$dir/console.log"; } | show 90
		return
	fi
	kr=$(segment_reports "$dir/console.log" "$name")
	if [ -n "$kr" ]; then
		ktap_leaf fail "$kname/$name" "kernel report"
		echo "$kr" | show 60
	fi
	if [ -s "$dir/$name.leftovers" ]; then
		ktap_leaf fail "$kname/$name" "left behind: $(paste -sd, "$dir/$name.leftovers" | sed 's/,/, /g')"
	fi
	case $rc in
	0|1) ;;
	4) [ $results -gt 0 ] || ktap_leaf skip "$kname/$name" "$(grep -m1 -i 'skip' "$log" | sed 's/^#* *//')" ;;
	124|137) ktap_leaf fail "$kname/$name" "timed out" ;;
	*) ktap_leaf fail "$kname/$name" "exit status $rc" ;;
	esac
	if [ "$rc" = 1 ] && ! grep -qE '^not ok ' "$log"; then
		ktap_leaf fail "$kname/$name" "exit status 1 without a failed result"
	fi
	if [ "$rc" != 4 ] && [ -n "$plan" ] && [ "$plan" -ne "$results" ]; then
		ktap_leaf fail "$kname/$name" "planned $plan results, got $results"
	elif [ "$rc" != 4 ] && [ -z "$plan" ]; then
		ktap_leaf fail "$kname/$name" "no KTAP plan"
	fi
	if grep -qE '^not ok |^# guest-suite' "$log" || [ "$rc" != 0 ] && [ "$rc" != 4 ]; then
		grep -vE '^(ok|TAP version|1\.\.)' "$log" | show 40
	fi
}

# judge_vms UNIT NAME DIR: the VMs a host-orchestrated test booted
# (DIR/VM/): each one's kernel log, its leftovers after the test (it ran
# the test in its role) and its end; a VM the test killed (mv_kill) or
# that went down has no shutdown.
judge_vms() {
	local unit=$1 name=$2 dir=$3 log vm kr f
	for log in "$dir"/*/console.log; do
		[ -f "$log" ] || continue
		vm=$(basename "$(dirname "$log")")
		kr=$("$top/tests/vm/report-lines" 40 < "$log")
		if [ -n "$kr" ]; then
			ktap_leaf fail "$unit/$name/$vm" "kernel report in $vm's console.log"
			echo "$kr" | show 60
		fi
	done
	for f in "$dir"/*/vm.out; do
		vm=$(basename "$(dirname "$f")")
		if [ -s "$dir/$vm/$name.leftovers" ]; then
			ktap_leaf fail "$unit/$name/$vm" "left behind: $(paste -sd, "$dir/$vm/$name.leftovers" | sed 's/,/, /g')"
		fi
		if [ -f "$dir/$vm/shutdown" ]; then
			judge_shutdown "$unit/$name/$vm" "$dir/$vm"
		else
			echo "# $unit/$name/$vm: no shutdown checks (module unload, kmemleak): the VM was killed or went down"
		fi
	done
}
