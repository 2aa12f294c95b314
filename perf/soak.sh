#!/usr/bin/env bash
# perf/soak.sh - long run at a fixed rate with broker restarts (issue 14; not in CI).
#
#   perf/soak.sh                      30 minutes, 2,000 records/s, a broker restart every 4 minutes
#   SOAK_SECONDS=600 perf/soak.sh     shorter
#
# What it does:
#   1. starts its own 3-broker cluster (KP_TESTBED_DIR=/tmp/kp-soak, ports from
#      KP_TESTBED_BASE=10092), creates topic "soak" (6 partitions, RF 3, min.insync.replicas 2);
#   2. runs build/bench/kp-perf (perf/setup.sh builds it) for SOAK_SECONDS at SOAK_RATE
#      records/s: 100 B, 1,000 keys, acks=all, idempotent, linger 5 ms;
#   3. every SOAK_RESTART_EVERY seconds SIGKILLs one broker (in turn: 1, 2, 3, 1, ...)
#      and starts it again;
#   4. samples kp-perf's RSS, threads and open descriptors every SOAK_SAMPLE seconds
#      (/proc/PID/status, /proc/PID/fd);
#   5. checks: kp-perf exits 0 with no failed record, and the topic's end offsets add up
#      to exactly the records sent (idempotence: no loss, no duplicate);
#   6. writes perf/results/soak-STAMP.csv (samples), .md (summary) and .png (plot).
# Exit status 0 when every check passed.
set -euo pipefail
PERF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$PERF/.." && pwd)
SECONDS_TOTAL=${SOAK_SECONDS:-1800}
RATE=${SOAK_RATE:-2000}
RESTART_EVERY=${SOAK_RESTART_EVERY:-240}
SAMPLE=${SOAK_SAMPLE:-5}
OUT=${SOAK_OUT:-$PERF/results}
export KP_TESTBED_DIR=${KP_TESTBED_DIR:-/tmp/kp-soak}
# Below the kernel's ephemeral port range (32768-60999): a client reconnecting in
# a loop to a killed broker's port in that range can be handed that very port as
# its own source port (a TCP self-connect), and the broker cannot restart on it.
export KP_TESTBED_BASE=${KP_TESTBED_BASE:-10092}
export KP_TESTBED_JARS=${KP_TESTBED_JARS:-$REPO/.testbed/jars}
export KP_TESTBED_SECURITY=${KP_TESTBED_SECURITY:-0}
KAFKA=$REPO/testbed/kafka.sh
PERF_BIN=${SOAK_KP_PERF:-$REPO/build/bench/kp-perf}
say() { printf '[%s] soak: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ -x $PERF_BIN ]] || { say "missing $PERF_BIN: run perf/setup.sh first"; exit 1; }
stamp=$(date +%Y%m%d-%H%M%S)
rev=$(git -C "$REPO" rev-parse --short HEAD)$([[ -z $(git -C "$REPO" status --porcelain -- src) ]] || echo " + uncommitted src/ changes")
mkdir -p "$OUT"
csv=$OUT/soak-$stamp.csv
md=$OUT/soak-$stamp.md
log=$KP_TESTBED_DIR/soak-$stamp-kp-perf.log
records=$((SECONDS_TOTAL * RATE))

cleanup() {
    [[ -n ${perf_pid:-} ]] && kill "$perf_pid" 2>/dev/null || true
    "$KAFKA" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "starting 3 brokers (base port $KP_TESTBED_BASE, state $KP_TESTBED_DIR)"
"$KAFKA" start 3 >&2
set -a; . "$KP_TESTBED_DIR/cluster/env"; set +a
"$KAFKA" create-topic soak 6 3 min.insync.replicas=2 >&2

cmd=("$PERF_BIN" --bootstrap "$KP_BOOTSTRAP" --topic soak --num-records "$records" --record-size 100
     --throughput "$RATE" --acks all --idempotence=true --keys 1000 --linger-ms 5 --compression none
     --report-interval-ms 30000)
say "${cmd[*]}"
"${cmd[@]}" >"$log" 2>&1 &
perf_pid=$!

echo "t_s,rss_kib,threads,fds,event" >"$csv"
t0=$(date +%s)
next_restart=$((t0 + RESTART_EVERY))
node=1
restarts=0
sample() { # event
    local st rss thr fds
    st=$(cat "/proc/$perf_pid/status" 2>/dev/null) || return 1
    rss=$(awk '/^VmRSS:/ {print $2}' <<<"$st")
    thr=$(awk '/^Threads:/ {print $2}' <<<"$st")
    fds=$(ls "/proc/$perf_pid/fd" 2>/dev/null | wc -l)
    echo "$(($(date +%s) - t0)),$rss,$thr,$fds,$1" >>"$csv"
}
while kill -0 "$perf_pid" 2>/dev/null; do
    sample "" || break
    now=$(date +%s)
    if ((now >= next_restart && now - t0 < SECONDS_TOTAL - 60)); then
        say "SIGKILL node $node and restart it"
        "$KAFKA" kill-node "$node" >&2
        sample "kill node $node" || true
        "$KAFKA" start-node "$node" >&2
        sample "node $node back" || true
        restarts=$((restarts + 1))
        node=$((node % 3 + 1))
        next_restart=$(($(date +%s) + RESTART_EVERY))
    fi
    sleep "$SAMPLE"
done
set +e
wait "$perf_pid"
rc=$?
set -e
perf_pid=
elapsed=$(($(date +%s) - t0))
summary=$(grep -E "records sent|records failed|missing" "$log" || true)
say "kp-perf exit $rc after ${elapsed} s: $summary"

# Every record exactly once: the end offsets of a fresh topic add up to the records sent.
offsets=$("$KAFKA" java org.apache.kafka.tools.GetOffsetShell --bootstrap-server "$KP_BOOTSTRAP" \
    --topic soak --time -1 2>/dev/null)
on_topic=$(awk -F: '{s += $3} END {print s + 0}' <<<"$offsets")
say "records on the topic: $on_topic of $records"

python3 "$PERF/soak_plot.py" "$csv" "$OUT/soak-$stamp.png" >"$OUT/soak-$stamp.stats"
failed=$(sed -n 's/^\([0-9]*\) records failed\./\1/p' "$log")
ok=1
[[ $rc -eq 0 && -z $failed && $on_topic -eq $records ]] || ok=0
{
    echo "# Soak $stamp"
    echo
    echo "- command: \`SOAK_SECONDS=$SECONDS_TOTAL SOAK_RATE=$RATE SOAK_RESTART_EVERY=$RESTART_EVERY perf/soak.sh\`"
    echo "- kp @ $rev (kp-perf as perf/setup.sh last built it), Kafka ${KP_KAFKA_VERSION:-4.1.1}, 3 brokers, topic soak (6 partitions, RF 3, min.insync.replicas 2)"
    echo "- producer: \`${cmd[*]#"$REPO/"}\`"
    echo "- ran ${elapsed} s; ${restarts} broker restarts (SIGKILL, then start-node), every ${RESTART_EVERY} s"
    echo "- kp-perf exit status $rc; ${failed:-0} failed records"
    echo "- $(grep -E '^[0-9]+ records sent, .* 99.9th' "$log" || echo 'no summary line')"
    echo "- records on the topic (sum of end offsets, GetOffsetShell): $on_topic of $records"
    echo "- samples every ${SAMPLE} s ($(($(wc -l <"$csv") - 1)) rows, soak-$stamp.csv):"
    sed 's/^/  - /' "$OUT/soak-$stamp.stats"
    echo "- verdict: $([[ $ok == 1 ]] && echo 'every check passed' || echo 'FAILED')"
} >"$md"
cat "$md"
rm -f "$OUT/soak-$stamp.stats"
[[ $ok == 1 ]]
