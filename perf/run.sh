#!/usr/bin/env bash
# perf/run.sh - build what is missing (perf/setup.sh), then run the benchmark
# harness (perf/harness.py): workloads W1..W5 x {kp, librdkafka, franz-go, Java},
# alternating clients, 3 repetitions, medians. ~15 min with defaults on 2 cores.
#
#   perf/run.sh                 full run -> perf/results/<stamp>.{csv,md,json,png}
#   BENCH_QUICK=1 perf/run.sh   smoke run (1 rep, 1/10 of the records, ~3 min)
#
# Other knobs (BENCH_REPS, BENCH_SCALE, BENCH_CLIENTS, BENCH_WORKLOADS, ...):
# see the docstring of perf/harness.py. Set BENCH_SKIP_SETUP=1 to skip the build.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ ${BENCH_SKIP_SETUP:-0} == 1 ]] || "$BENCH/setup.sh"
exec python3 "$BENCH/harness.py" "$@"
