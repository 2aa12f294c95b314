#!/usr/bin/env bash
# perf.sh - kp's Java binding in the kp-perf flag/output format, for perf/harness.py
# (client "kp-java": BENCH_CLIENTS=java,kp-java,kp python3 perf/harness.py ...).
#
#   bindings/java/perf.sh --bootstrap B --topic T --num-records N --record-size S [kp-perf flags]
#
# perf/java-perf.sh with BENCH_JAVA_PRODUCER=dev.kp.KpProducer: JavaPerf - the loop
# the harness runs for the Java client on keyed workloads - over KpProducer, with the
# Java client's JVM options, CPU and peak RSS measured from outside (/usr/bin/time).
# PERF_PRODUCER=java runs the same loop over KafkaProducer instead.
#
# Needs bindings/java/build-native.sh and `mvn compile` (or run-tests.sh) done once,
# and Kafka's jars in $KP_TESTBED_JARS (testbed/kafka.sh fetch).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BUILD=${BENCH_BUILD:-$REPO/build/bench}
JARS=${KP_TESTBED_JARS:-$REPO/.testbed/jars}
[[ -f $HERE/target/classes/dev/kp/KpProducer.class && -f $HERE/target/native/libkpjni.so ]] \
    || { echo "perf.sh: build first: bindings/java/build-native.sh && (cd bindings/java && mvn -q compile)" >&2; exit 1; }
if [[ ! -f $BUILD/java/JavaPerf.class || $REPO/perf/java/JavaPerf.java -nt $BUILD/java/JavaPerf.class ]]; then
    mkdir -p "$BUILD/java"
    javac -d "$BUILD/java" -cp "$JARS/*" "$REPO/perf/java/JavaPerf.java"
fi
case ${PERF_PRODUCER:-kp} in
    kp) export BENCH_JAVA_PRODUCER=dev.kp.KpProducer ;;
    java) export BENCH_JAVA_PRODUCER=org.apache.kafka.clients.producer.KafkaProducer ;;
    *) echo "perf.sh: PERF_PRODUCER is kp or java" >&2; exit 2 ;;
esac
export BENCH_JAVA_CLASSPATH=$HERE/target/classes
# the native libraries through java.library.path (not copied out of the jar)
export BENCH_JAVA_EXTRA_OPTS="-Djava.library.path=$HERE/target/native --enable-native-access=ALL-UNNAMED"
export KP_TESTBED_JARS=$JARS BENCH_BUILD=$BUILD
exec "$REPO/perf/java-perf.sh" "$@"
