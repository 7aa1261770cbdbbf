#!/bin/bash
# Unit test of the bash completion (dmcoloctl.bash-completion) against the
# tool built here: commands, per-command options and NAME arguments.
# Prints KTAP.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=dmcoloctl.bash-completion
. "$here/dmcoloctl.bash-completion"
DMCOLO_RUNDIR=$(mktemp -d)
export DMCOLO_RUNDIR
trap 'rm -rf "$DMCOLO_RUNDIR"' EXIT
mkdir "$DMCOLO_RUNDIR/vm1" "$DMCOLO_RUNDIR/vm2"

# The words of stdin, sorted, on one line.
words() { sed '/^$/d' | sort | paste -sd ' '; }
all_cmds=$("$here/dmcoloctl" --help | sed -n '/^commands:/,/^$/{s/^  \([a-z]*\) .*/\1/p}' | words)
# "words typed|what the completion must offer (sorted)"; the last word is
# the one being completed.
cases=(
	"|$all_cmds"
	"fail|failover"
	"--v|--version"
	"st|start status stop"
	"help ch|checkpoint"
	"secondary |create"
	"primary create p --sy|--sync"
	"primary create p --tls-|--tls-ca --tls-cert --tls-hostname --tls-key"
	"secondary create s --c|--chunk --control-port"
	"checkpoint vm1 --|--local"
	"stop |vm1 vm2"
	"failover v|vm1 vm2"
	"stop vm1 |"
	"version |"
	"primary create p --timeout |"
)
echo "TAP version 13"
echo "1..${#cases[@]}"
n=0 failed=0
for c in "${cases[@]}"; do
	typed=${c%%|*} want=${c#*|}
	read -ra COMP_WORDS <<< "dmcoloctl $typed"
	# A trailing space starts a new, empty word.
	[ "${typed: -1}" = " " ] || [ -z "$typed" ] && COMP_WORDS+=("")
	COMP_WORDS[0]=$here/dmcoloctl
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	_dmcoloctl
	got=$(printf '%s\n' "${COMPREPLY[@]}" | words)
	n=$((n + 1))
	if [ "$got" = "$want" ]; then
		echo "ok $n completion of 'dmcoloctl $typed'"
	else
		echo "not ok $n completion of 'dmcoloctl $typed'"
		echo "# want: '$want'"
		echo "# got:  '$got'"
		failed=$((failed + 1))
	fi
done
[ $failed -eq 0 ]
