#!/bin/bash
# Inside the VM (bench/profile boots it): the single-VM cases once, each
# measured run under `perf record -a -g` (bench/lib.sh under_perf), then a
# flat profile of each run by symbol, written next to its perf.data.
#
# Environment: BENCH_CASES (as for local.sh), BENCH_PERF_DIR (where to write).
set -uo pipefail
here=$(dirname "$0")
: "${BENCH_PERF_DIR:?}"
mkdir -p "$BENCH_PERF_DIR"
# Kernel symbols for perf (Debian hides kernel addresses by default).
echo 0 > /proc/sys/kernel/kptr_restrict
echo -1 > /proc/sys/kernel/perf_event_paranoid
BENCH_REPS=1 "$here/local.sh" || exit 1
for data in "$BENCH_PERF_DIR"/*.data; do
	[ -f "$data" ] || continue
	# Symbols come from this kernel's /proc/kallsyms (modules included).
	perf report -i "$data" --kallsyms=/proc/kallsyms --stdio --no-children \
		--sort dso,sym -g none \
		--percent-limit 0.5 2> /dev/null | grep -v '^$' > "${data%.data}.txt" ||
		echo "profile: perf report of $data failed" >&2
done
