#!/usr/bin/env bash
# perf/baseline.sh REV [DIR] - build kp at commit REV as a benchmark baseline,
# for before/after comparisons in the harness:
#
#   perf/baseline.sh a2db190 /tmp/kp-base
#   BENCH_KP_BASELINE=/tmp/kp-base BENCH_CLIENTS=kp,kp-baseline \
#       BENCH_WORKLOADS=W1-sink,W2-real3 perf/run.sh
#
# The harness then runs client "kp-baseline" (DIR/kp-perf) alternating with
# "kp" (the working tree or BENCH_KP_REV), and its ratio table reads kp / baseline.
#
# Layout of DIR (default build/bench/baseline-<short rev>):
#   src/     git archive of REV
#   target/  its cargo target dir (release)
#   kp-perf  REV's own perf driver (perf/kp-perf.c, or bench/kp-perf.c before the
#            rename), linked against lib/libkp.so (rpath $ORIGIN/lib)
#   kp-rev   the full commit id
# Cached: a second call with the same REV and DIR rebuilds only what changed.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
[[ $# -ge 1 ]] || { echo "usage: perf/baseline.sh REV [DIR]" >&2; exit 2; }
rev=$(git -C "$REPO" rev-parse --verify "$1^{commit}")
DIR=${2:-$REPO/build/bench/baseline-${rev:0:8}}
say() { printf 'baseline: %s\n' "$*" >&2; }

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
if [[ $(cat "$DIR/kp-rev" 2>/dev/null) != "$rev" ]]; then
    say "sources of ${rev:0:12} -> $DIR/src"
    rm -rf "$DIR/src" "$DIR/kp-perf" "$DIR/lib"
    mkdir -p "$DIR/src"
    git -C "$REPO" archive "$rev" | tar -x -C "$DIR/src"
fi
say "cargo build --release --lib (first time: several minutes)"
(cd "$DIR/src" && CARGO_TARGET_DIR=$DIR/target cargo build --release --lib -q)

driver=
for d in perf bench; do
    [[ -f $DIR/src/$d/kp-perf.c ]] && { driver=$DIR/src/$d; break; }
done
[[ -n $driver ]] || { say "no kp-perf.c in perf/ or bench/ at ${rev:0:12}"; exit 1; }
mkdir -p "$DIR/lib"
cp -f "$DIR/target/release/libkp.so" "$DIR/lib/libkp.so"
soname=$(readelf -d "$DIR/lib/libkp.so" | sed -n 's/.*soname: \[\(.*\)\]/\1/p')
[[ -z $soname || $soname == libkp.so ]] || ln -sf libkp.so "$DIR/lib/$soname"
say "driver $(realpath --relative-to="$DIR/src" "$driver")/kp-perf.c -> $DIR/kp-perf"
${CC:-gcc} -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -I"$DIR/src/include" -I"$driver" \
    "$driver/kp-perf.c" "$driver/perf_common.c" -o "$DIR/kp-perf" \
    -L"$DIR/lib" -lkp -Wl,-rpath,'$ORIGIN/lib' -lpthread -ldl -lm
echo "$rev" >"$DIR/kp-rev"
say "ready: BENCH_KP_BASELINE=$DIR"
echo "$DIR"
