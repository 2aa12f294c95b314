#!/usr/bin/env bash
# perf.sh CLIENT [kp-perf flags] - kp's Python binding (CLIENT kp) or
# confluent-kafka-python (CLIENT confluent) in the kp-perf flag/output format, for
# perf/harness.py (clients "kp-python" and "confluent-python", run only when named):
#
#   BENCH_CLIENTS=kp-python,confluent-python BENCH_WORKLOADS=W1-sink,W1-real1,W2-real3 perf/run.sh
#
# Runs bench/produce_bench.py (one Python thread; the produce()/poll(0) loop
# confluent-kafka's documentation shows) with --output kp-perf. The interpreter is
# $KP_PYTHON, else build/bench/pyvenv/bin/python, made here on first use: a venv
# that sees the system's packages (confluent-kafka) with `pip install ./bindings/python`.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
client=${1:?usage: perf.sh kp|confluent [kp-perf flags]}
shift
py=${KP_PYTHON:-$REPO/build/bench/pyvenv/bin/python}
if [[ ! -x $py ]]; then
    [[ -z ${KP_PYTHON:-} ]] || { echo "perf.sh: KP_PYTHON=$py is not executable" >&2; exit 1; }
    echo "perf.sh: making $REPO/build/bench/pyvenv (pip install ./bindings/python)" >&2
    python3 -m venv --system-site-packages "$REPO/build/bench/pyvenv"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$py" -m pip install -q "$REPO/bindings/python" >&2
fi
exec "$py" "$HERE/bench/produce_bench.py" --client "$client" --output kp-perf "$@"
