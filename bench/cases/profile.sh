#!/bin/bash
# Inside the VM (bench/profile boots it): the single-VM cases once, each
# measured run under `perf record -a -g` (bench/lib.sh under_perf), then a
# flat profile of each run by symbol, written next to its perf.data.
#
# Environment: BENCH_CASES (as for local.sh), BENCH_PERF_DIR (where to write).
set -uo pipefail
here=$(dirname "$0")
. "$here/../lib.sh"
: "${BENCH_PERF_DIR:?}"
mkdir -p "$BENCH_PERF_DIR"
perf_ready
BENCH_REPS=1 "$here/local.sh" || exit 1
perf_flat "$BENCH_PERF_DIR"
