#!/bin/bash
# Unit test of dmcoloctl's command line (host, no device touched): every
# bad invocation exits 2 with one line naming the problem, and every
# command's --help exits 0. Prints KTAP.
ctl=$(dirname "$0")/dmcoloctl
n=0 failed=0
cases=(
	"2|unknown command 'frob'|frob"
	"2|want a NAME|secondary create"
	"2|the only subcommand is 'create'|secondary make s"
	"2|are required|secondary create s --disk /dev/null"
	"2|bad --chunk|secondary create s --disk a --buffer b --listen x --chunk 3q"
	"2|power of two from 4k to 32m|secondary create s --disk a --buffer b --listen x --chunk 12k"
	"2|bad --listen|secondary create s --disk a --buffer b --listen host:99999"
	"2|bad --control-port '8k'|secondary create s --disk a --buffer b --listen h --control-port 8k"
	"2|must differ from the NBD port|secondary create s --disk a --buffer b --listen h:7000 --control-port 7000"
	"2|needs all of|secondary create s --disk a --buffer b --listen h --tls-key k"
	"2|bad NAME|secondary create a/b --disk a --buffer b --listen h"
	"2|are required|primary create p --disk a"
	"2|must be 4k to 4g|primary create p --disk a --secondary h --max-inflight 1k"
	"2|power of two from 4k to 1g|primary create p --disk a --secondary h --region 96k"
	"2|bad --timeout '5k'|primary create p --disk a --secondary h --timeout 5k"
	"2|option '--disk' needs a value|primary create p --disk"
	"2|1 to 3600 seconds|primary create p --disk a --secondary h --timeout 0"
	"2|--connections must be 1|primary create p --disk a --secondary h --connections 0"
	"2|--connections must be 1|primary create p --disk a --secondary h --connections 2"
	"2|--tls-hostname needs|primary create p --disk a --secondary h --tls-hostname x"
	"2|bad --secondary|primary create p --disk a --secondary [::1"
	"2|want a NAME|start"
	"2|unknown option '--fast'|start p --fast"
	"2|want exactly one NAME|checkpoint p q"
	"2|unknown option '--all'|status --all"
	"2|at most one NAME|status a b"
	"2|want a NAME|watch"
	"2|want a NAME|remove"
	"2|want exactly one NAME|remove a b"
	"2|unknown option '--all'|remove a --all"
	"2|unexpected argument|version x"
)
echo "TAP version 13"
cmds=$("$ctl" --help | sed -n '/^commands:/,/^$/{s/^  \([a-z]*\) .*/\1/p}')
echo "1..$((${#cases[@]} + $(echo "$cmds" | wc -w) + 1))"
for c in "${cases[@]}"; do
	want=${c%%|*} rest=${c#*|}
	pattern=${rest%%|*} args=${rest#*|}
	n=$((n + 1))
	# shellcheck disable=SC2086 # the arguments are words
	err=$("$ctl" $args 2>&1 > /dev/null)
	rc=$?
	if [ "$rc" = "$want" ] && [ "$(echo "$err" | wc -l)" = 1 ] && grep -qF -- "$pattern" <<< "$err"; then
		echo "ok $n dmcoloctl $args"
	else
		echo "not ok $n dmcoloctl $args"
		echo "# exit $rc (want $want): $err"
		failed=$((failed + 1))
	fi
done
for c in $cmds; do
	n=$((n + 1))
	if "$ctl" "$c" --help | grep -qE "^usage: dmcoloctl $c( |\$)"; then
		echo "ok $n dmcoloctl $c --help"
	else
		echo "not ok $n dmcoloctl $c --help"
		failed=$((failed + 1))
	fi
done
n=$((n + 1))
"$ctl" 2> /dev/null
if [ $? = 2 ]; then
	echo "ok $n dmcoloctl without a command exits 2"
else
	echo "not ok $n dmcoloctl without a command exits 2"
	failed=$((failed + 1))
fi
[ $failed -eq 0 ]
