# shellcheck shell=bash
# tests/run's schedule: which tests run on which kernel, the debug kernel's
# tests cut in shards balanced by each test's last duration, and the
# workers that take the units (a kernel, or a shard) from one queue,
# heaviest first. Sourced by tests/run; uses its settings (top, suite,
# tests, host_tests, narrow, kernels, jobs, pattern, prefix, ran).

# Each test's seconds in the last run on each kernel.
durations=${DMCOLO_CACHE:-/var/cache/dm-colo}/durations

# record_durations KERNEL CONSOLE_LOG: each test's seconds between its
# begin and end markers (kernel timestamps) into $durations/KERNEL.
record_durations() {
	local file=$durations/$1 new
	mkdir -p "$durations" 2>/dev/null || return 0
	new=$(awk '
		{ sub(/\r$/, "") }
		/dmcolo-test: (begin|end) / {
			if (!match($0, /^\[ *[0-9]+\.[0-9]+\]/)) next
			t = substr($0, RSTART + 1, RLENGTH - 2) + 0
			name = $0; sub(/.*dmcolo-test: (begin|end) /, "", name); sub(/ .*/, "", name)
			if ($0 ~ /dmcolo-test: begin /) begin[name] = t
			else if (name in begin && name != "shutdown") printf "%s %d\n", name, t - begin[name] + 1
		}' "$2")
	[ -n "$new" ] || return 0
	(
		flock 9
		{ echo "$new"; [ ! -f "$file" ] || cat "$file"; } | awk '!seen[$1]++' | sort > "$file.tmp" &&
			mv "$file.tmp" "$file"
	) 9> "$durations/.lock"
}

# test_weight KERNEL NAME: its last duration there, else its timeout.
test_weight() {
	local w="" file=${DMCOLO_WEIGHTS:-$durations}/$1
	[ ! -f "$file" ] || w=$(awk -v t="$2" '$1 == t { print $2; exit }' "$file")
	[ -n "$w" ] || w=$(sed -n 's/^# timeout: *\([0-9][0-9]*\).*/\1/p' "$suite/$2.sh" | head -n 1)
	echo "${w:-300}"
}

# for_kernel KERNEL TEST...: the TESTs that run on KERNEL. A "# kernels:
# K..." header line narrows a test to those kernels in the whole suite
# (--suite DIR runs every test on every kernel asked for).
for_kernel() {
	local k=$1 t only=""
	shift
	for t in "$@"; do
		[ $narrow = no ] || only=$(sed -n 's/^# kernels: *//p' "$t" | head -n 1)
		[ -z "$only" ] || [[ " $only " == *" $k "* ]] || continue
		echo "$t"
	done
}
# kernel_tests KERNEL, host_tests_for KERNEL: the VM tests and the
# host-orchestrated tests that run on KERNEL.
kernel_tests() { for_kernel "$1" "${tests[@]}"; }
host_tests_for() { for_kernel "$1" "${host_tests[@]}"; }

# shard_tests KERNEL I N: the names of shard I of N: tests taken longest
# first, each into the lightest shard so far (ties to the lowest index).
shard_tests() {
	local t
	for t in $(kernel_tests "$1"); do
		t=$(basename "$t" .sh)
		echo "$(test_weight "$1" "$t") $t"
	done | sort -k1,1nr -k2,2 | awk -v want="$2" -v n="$3" '
		{ best = 0; for (i = 1; i < n; i++) if (load[i] < load[best]) best = i
		  load[best] += $1; if (best == want) print $2 }' | sort
}

# unit_weight KERNEL[@I/N]: the sum of its tests' weights.
unit_weight() {
	local kname=${1%@*} shard="" t sum=0
	[ "$1" = "$kname" ] || shard=${1#*@}
	if [ -n "$shard" ]; then
		for t in $(shard_tests "$kname" "${shard%/*}" "${shard#*/}"); do
			sum=$((sum + $(test_weight "$kname" "$t")))
		done
	else
		for t in $(kernel_tests "$kname"); do
			sum=$((sum + $(test_weight "$kname" "$(basename "$t" .sh)")))
		done
	fi
	echo $sum
}

# run_lanes: the kernels as units (the debug kernel, about 9 times slower
# than the others, cut in 4 shards), run by $jobs workers that take the
# next unit from a queue, heaviest first; each unit is a child runner
# writing to a file. Then the units' results, renumbered from ours, in the
# order of the kernels given.
run_lanes() {
	local units=() k i f line rest p fl sk u
	for k in $kernels; do
		if [ "$k" = debug ] && [ ${#tests[@]} -ge 4 ]; then
			for i in 0 1 2 3; do units+=("debug@$i/4"); done
		else
			units+=("$k")
		fi
	done
	# Build what every VM shares once, before the workers race for it.
	make -s -C "$top" test-tools > /dev/null 2>&1
	local dir=$top/build/results/lanes
	rm -rf "$dir"
	mkdir -p "$dir/weights"
	# One snapshot of the durations, so every child cuts the same shards.
	cp "$durations"/* "$dir/weights/" 2>/dev/null
	export DMCOLO_WEIGHTS=$dir/weights
	for u in "${units[@]}"; do
		echo "$(unit_weight "$u") $u"
	done | sort -k1,1nr | awk '{ print $2 }' > "$dir/queue"
	echo "# units, heaviest first: $(tr '\n' ' ' < "$dir/queue")"
	: > "$dir/taken"
	for i in $(seq "$jobs"); do
		(
			while :; do
				u=$( (
					flock 9
					u=$(grep -vxF -f "$dir/taken" "$dir/queue" | head -n 1)
					[ -z "$u" ] || echo "$u" >> "$dir/taken"
					echo "$u"
				) 9> "$dir/.lock")
				[ -n "$u" ] || break
				f=$dir/unit-${u//[@\/]/-}
				t0=$SECONDS
				"$0" --kernels "$u" --suite "$suite" --narrow "$narrow" \
					${pattern:+--tests "$pattern"} \
					--after 0 --counts "$f.counts" --jobs 1 > "$f.out" 2>&1
				# Progress as it comes: a CI log cut at its time
				# limit still shows which units ended, and when.
				echo "# unit $u done in $((SECONDS - t0)) s (passed failed skipped: $(cat "$f.counts" 2>/dev/null || echo none))"
			done
		) &
	done
	wait
	for u in "${units[@]}"; do
		ran+=("$(result_dir "$u")")
		f=$dir/unit-${u//[@\/]/-}
		ktap_renumber < "$f.out"
		if read -r p fl sk < "$f.counts" 2> /dev/null; then
			ktap_add_counts "$p" "$fl" "$sk"
		else
			ktap_leaf fail "unit-$u" "the unit wrote no counts"
		fi
	done
}

# result_dir KERNEL[@I/N]: where run_kernel leaves that kernel's results.
result_dir() {
	local kname=${1%@*} shard=""
	[ "$1" = "$kname" ] || shard=${1#*@}
	echo "$top/build/results/$prefix$kname${shard:+-${shard%/*}}"
}
