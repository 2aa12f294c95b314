#!/usr/bin/env bash
# perf/setup.sh - build/install everything perf/run.sh needs. Idempotent and
# cached (cargo, go and make only redo what changed). Outputs in build/bench/.
#
#   kp            `make lib` (repo Makefile: the working tree), snapshot copied to
#                 build/bench/lib; or, with BENCH_KP_REV=<commit> (e.g. HEAD), a clean
#                 build of that commit (git archive -> build/bench/kp-src, target
#                 build/bench/kp-target), independent of uncommitted edits
#   librdkafka    2.12.1 from the rdkafka-sys 4.10.0+2.12.1 crate (crates.io), static,
#                 with TLS and SASL SCRAM (feature ssl: system OpenSSL, libssl-dev),
#                 via perf/rdkafka-driver (own cargo project, target build/bench/rdkafka)
#   C programs    perf/Makefile: kp-perf, rdkafka-perf, mock-sink
#   Go programs   franz-perf (github.com/twmb/franz-go, Go module proxy), kafka-sink
#   Java          Kafka 4.1.1 jars (testbed/kafka.sh fetch, Maven Central), JavaPerf.class
#   Python        matplotlib (PyPI) for the chart
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
OUT=$REPO/build/bench
JARS=${KP_TESTBED_JARS:-$REPO/.testbed/jars}
mkdir -p "$OUT"
say() { printf 'setup: %s\n' "$*" >&2; }

for tool in cargo go gcc make java javac python3; do
    command -v $tool >/dev/null || { say "missing $tool"; exit 1; }
done
if [[ ! -x /usr/bin/time ]]; then
    say "installing GNU time (apt)"
    apt-get update -qq && apt-get install -y -qq time >/dev/null
fi
# librdkafka's TLS/SASL (W1-sasl1) links the system OpenSSL.
if ! dpkg -s libssl-dev >/dev/null 2>&1; then
    say "installing libssl-dev (apt)"
    apt-get update -qq && apt-get install -y -qq libssl-dev pkg-config >/dev/null
fi

if [[ -n ${BENCH_KP_REV:-} ]]; then
    rev=$(git -C "$REPO" rev-parse --verify "${BENCH_KP_REV}^{commit}")
    say "kp: clean build of commit ${rev:0:12}"
    if [[ $(cat "$OUT/kp-rev" 2>/dev/null) != "$rev" ]]; then
        rm -rf "$OUT/kp-src"
        mkdir -p "$OUT/kp-src"
        git -C "$REPO" archive "$rev" | tar -x -C "$OUT/kp-src"
    fi
    (cd "$OUT/kp-src" && CARGO_TARGET_DIR=$OUT/kp-target cargo build --release --lib -q)
    echo "$rev" >"$OUT/kp-rev"
    kp_make=(KP_LIB="$OUT/kp-target/release/libkp.so" KP_INC="$OUT/kp-src/include")
else
    say "kp: make lib (working tree)"
    make -C "$REPO" -s lib
    rm -f "$OUT/kp-rev"
    kp_make=()
fi

say "librdkafka: cargo build (first time: ~5 min)"
(cd "$BENCH/rdkafka-driver" && CARGO_TARGET_DIR=$OUT/rdkafka cargo build --release --locked -q)
(cd "$BENCH/rdkafka-driver" && CARGO_TARGET_DIR=$OUT/rdkafka cargo metadata --locked --format-version 1 2>/dev/null) \
    | python3 -c 'import json,sys,os; d=json.load(sys.stdin); print([os.path.join(os.path.dirname(p["manifest_path"]),"librdkafka","src") for p in d["packages"] if p["name"]=="rdkafka-sys"][0])' \
    >"$OUT/rdkafka/include-dir"

say "C programs: make -f perf/Makefile"
make -s -f "$BENCH/Makefile" "${kp_make[@]}"

say "Go programs: franz-perf, kafka-sink"
(cd "$BENCH/franz-driver" && go build -trimpath -o "$OUT/franz-perf" .)
(cd "$BENCH/kafka-sink" && go build -trimpath -o "$OUT/kafka-sink" .)

say "Java: Kafka jars, JavaPerf and NullProducer"
KP_TESTBED_JARS=$JARS "$REPO/testbed/kafka.sh" fetch 2>&1 | sed 's/^/  /' >&2
# NullProducer: a Producer that sends nothing (BENCH_JAVA_PRODUCER=NullProducer perf/java-perf.sh ...),
# the floor under every Java producer's figures (BENCHMARKS.md, Java binding, session 11)
for cls in JavaPerf NullProducer; do
    if [[ ! -f $OUT/java/$cls.class || $BENCH/java/$cls.java -nt $OUT/java/$cls.class ]]; then
        mkdir -p "$OUT/java"
        javac -d "$OUT/java" -cp "$JARS/*" "$BENCH/java/$cls.java"
    fi
done

if ! python3 -c 'import matplotlib' 2>/dev/null; then
    say "Python: pip install matplotlib"
    python3 -m pip install -q matplotlib
fi
say "ready: $(cd "$OUT" && ls kp-perf rdkafka-perf mock-sink franz-perf kafka-sink java/JavaPerf.class java/NullProducer.class | tr '\n' ' ')"
