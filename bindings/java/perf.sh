#!/usr/bin/env bash
# perf.sh - kp's Java binding in the kp-perf flag/output format, for perf/harness.py
# (client "kp-java": BENCH_CLIENTS=java,kp-java,kp perf/run.sh ...).
#
#   bindings/java/perf.sh --bootstrap B --topic T --num-records N --record-size S [kp-perf flags]
#
# Runs perf/java/JavaPerf.java - the loop perf/java-perf.sh runs for the Java
# client - with -Dperf.producer.class=dev.kp.KpProducer, with the same JVM
# options as perf/java-perf.sh (512 MiB heap, G1: those of Kafka's
# kafka-producer-perf-test.sh), and prints kp-perf's "client cpu ..." line,
# measured from outside with /usr/bin/time (user+sys and peak RSS of the
# JVM, start-up and JIT included). PERF_PRODUCER=java runs the same loop over
# KafkaProducer instead (same driver, only the Producer class differs).
#
# Needs: run-tests.sh or build-native.sh + `mvn package` done once (target/
# holds the classes and the native libraries); Kafka's jars in
# $KP_TESTBED_JARS (testbed/kafka.sh fetch).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
JARS=${KP_TESTBED_JARS:-$REPO/.testbed/jars}
JAVA_OPTS=${BENCH_JAVA_OPTS:--Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent}
OUT=$HERE/target/perf
CLASSES=$HERE/target/classes
[[ -f $CLASSES/dev/kp/KpProducer.class && -f $HERE/target/native/libkpjni.so ]] \
    || { echo "perf.sh: build first: bindings/java/build-native.sh && (cd bindings/java && mvn -q compile)" >&2; exit 1; }
if [[ ! -f $OUT/JavaPerf.class || $REPO/perf/java/JavaPerf.java -nt $OUT/JavaPerf.class ]]; then
    mkdir -p "$OUT"
    javac -d "$OUT" -cp "$JARS/*" "$REPO/perf/java/JavaPerf.java"
fi
case ${PERF_PRODUCER:-kp} in
    kp) cls=dev.kp.KpProducer ;;
    java) cls=org.apache.kafka.clients.producer.KafkaProducer ;;
    *) echo "perf.sh: PERF_PRODUCER is kp or java" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
num=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case ${args[i]} in
        --num-records) num=${args[i + 1]} ;;
        --num-records=*) num=${args[i]#*=} ;;
    esac
done
echo "perf.sh: JavaPerf over $cls" >&2
rc=0
# shellcheck disable=SC2086
/usr/bin/time -f '%U %S %M' -o "$tmp/time" \
    java $JAVA_OPTS -Djava.awt.headless=true -Djava.library.path="$HERE/target/native" \
    -Dperf.producer.class=$cls --enable-native-access=ALL-UNNAMED \
    -Dlog4j2.configurationFile="$REPO/testbed/log4j2-tools.properties" \
    -cp "$OUT:$CLASSES:$JARS/*" JavaPerf "$@" | tee "$tmp/out" || rc=$?
read -r user sys rss_kb <"$tmp/time" || { echo "perf.sh: no /usr/bin/time output" >&2; exit 1; }
sent=$(sed -n 's/^\([0-9]*\) records sent, .* 50th.*/\1/p' "$tmp/out" | tail -1)
awk -v u="$user" -v s="$sys" -v m="$rss_kb" -v n="${sent:-0}" 'BEGIN {
    printf "client cpu %.2f s (user %.2f s, sys %.2f s), %.2f cpu-s per million records, peak rss %.1f MiB.\n",
        u + s, u, s, (n > 0 ? (u + s) * 1e6 / n : 0), m / 1024 }'
[[ -n $sent && $sent == "${num:-x}" ]] || { ((rc)) || rc=1; }
exit "$rc"
