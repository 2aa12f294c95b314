#!/usr/bin/env bash
# java-perf.sh - the Java client in the kp-perf flag/output format.
#
#   perf/java-perf.sh --bootstrap B --topic T --num-records N --record-size S [kp-perf flags]
#
# Runs Kafka 4.1's org.apache.kafka.tools.ProducerPerformance through
# `testbed/kafka.sh java` (it prints the summary line itself). For what that
# tool cannot do - keyed records (--keys N > 0) or several sending threads
# (--threads N > 1) - it runs perf/java/JavaPerf.java (compiled by
# perf/setup.sh) instead, with the same JVM options. Either way it then
# prints kp-perf's "client cpu ..." line, measured from outside with
# /usr/bin/time (user+sys and peak RSS of the JVM, start-up and JIT included).
#
# JVM options: $BENCH_JAVA_OPTS, default = what Kafka's kafka-producer-perf-test.sh
# uses (512 MiB heap, G1, MaxGCPauseMillis=20), with the full JIT.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
BUILD=${BENCH_BUILD:-$REPO/build/bench}
JARS=${KP_TESTBED_JARS:-$REPO/.testbed/jars}
JAVA_OPTS=${BENCH_JAVA_OPTS:--Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}

bootstrap="" topic="" num="" size="" tput=-1 keys=0 threads=1 txn="" txndur=""
props=()
while (($#)); do
    a=$1 v=""
    if [[ $a == --*=* ]]; then v=${a#*=}; a=${a%%=*}; shift
    elif [[ $a == --idempotence ]]; then
        if [[ ${2:-} == true || ${2:-} == false ]]; then v=$2; shift 2; else v=true; shift; fi
    else v=${2:?"$a needs a value"}; shift 2; fi
    case $a in
        --bootstrap | --bootstrap-server) bootstrap=$v ;;
        --topic) topic=$v ;;
        --num-records) num=$v ;;
        --record-size) size=$v ;;
        --throughput) tput=$v ;;
        --acks) props+=("acks=$v") ;;
        --linger-ms) props+=("linger.ms=$v") ;;
        --batch-size) props+=("batch.size=$v") ;;
        --compression) props+=("compression.type=$v") ;;
        --idempotence) props+=("enable.idempotence=$v") ;;
        --keys) keys=$v ;;
        --threads) threads=$v ;;
        --transactional-id) txn=$v ;;
        --transaction-duration-ms) txndur=$v ;;
        --producer-property) props+=("$v") ;;
        --report-interval-ms) ;;
        *) echo "java-perf.sh: unknown flag $a" >&2; exit 2 ;;
    esac
done
[[ -n $bootstrap && -n $topic && -n $num && -n $size ]] \
    || { echo "java-perf.sh: --bootstrap, --topic, --num-records and --record-size are required" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# BENCH_JAVA_PRODUCER=<Producer class> (on BENCH_JAVA_CLASSPATH, JVM flags in BENCH_JAVA_EXTRA_OPTS):
# JavaPerf over that class instead of KafkaProducer (bindings/java/perf.sh: kp's Java binding;
# NullProducer, built by perf/setup.sh: sends nothing - what the JVM and JavaPerf cost alone).
if ((keys > 0 || threads > 1)) || [[ -n ${BENCH_JAVA_PRODUCER:-} ]]; then
    [[ -z $txn ]] || { echo "java-perf.sh: --transactional-id only with ProducerPerformance (no --keys/--threads)" >&2; exit 2; }
    tool=JavaPerf
    args=(--bootstrap "$bootstrap" --topic "$topic" --num-records "$num" --record-size "$size"
          --throughput "$tput" --keys "$keys" --threads "$threads")
    for p in "${props[@]}"; do args+=(--producer-property "$p"); done
    # shellcheck disable=SC2086
    cmd=(java $JAVA_OPTS ${BENCH_JAVA_EXTRA_OPTS:-} -Djava.awt.headless=true
         ${BENCH_JAVA_PRODUCER:+-Dperf.producer.class=$BENCH_JAVA_PRODUCER}
         -Dlog4j2.configurationFile="$REPO/testbed/log4j2-tools.properties"
         -cp "$BUILD/java:${BENCH_JAVA_CLASSPATH:+$BENCH_JAVA_CLASSPATH:}$JARS/*" JavaPerf "${args[@]}")
else
    tool=ProducerPerformance
    args=(--topic "$topic" --num-records "$num" --record-size "$size" --throughput "$tput"
          --producer-props "bootstrap.servers=$bootstrap" "${props[@]}")
    [[ -n $txn ]] && args+=(--transactional-id "$txn")
    [[ -n $txndur ]] && args+=(--transaction-duration-ms "$txndur")
    cmd=(env KP_TOOLS_FAST=0 "KP_TOOLS_JAVA_OPTS=$JAVA_OPTS" KP_TESTBED_JARS="$JARS"
         "$REPO/testbed/kafka.sh" java org.apache.kafka.tools.ProducerPerformance "${args[@]}")
fi
echo "java-perf.sh: Java client via $tool${BENCH_JAVA_PRODUCER:+ over $BENCH_JAVA_PRODUCER}" >&2
rc=0
/usr/bin/time -f '%U %S %M' -o "$tmp/time" "${cmd[@]}" | tee "$tmp/out" || rc=$?
read -r user sys rss_kb <"$tmp/time" || { echo "java-perf.sh: no /usr/bin/time output" >&2; exit 1; }
sent=$(sed -n 's/^\([0-9]*\) records sent, .* 50th.*/\1/p' "$tmp/out" | tail -1)
awk -v u="$user" -v s="$sys" -v m="$rss_kb" -v n="${sent:-0}" 'BEGIN {
    printf "client cpu %.2f s (user %.2f s, sys %.2f s), %.2f cpu-s per million records, peak rss %.1f MiB.\n",
        u + s, u, s, (n > 0 ? (u + s) * 1e6 / n : 0), m / 1024 }'
[[ -n $sent && $sent == "$num" ]] || { ((rc)) || rc=1; }
exit "$rc"
