#!/usr/bin/env bash
# Coverage-guided fuzzing of kp's decoders (cargo-fuzz / libFuzzer; needs the
# nightly toolchain and `cargo install cargo-fuzz`). See docs/FUZZING.md.
#
#   fuzz/run.sh smoke [SECONDS]          every target for SECONDS (default 5)
#   fuzz/run.sh campaign TARGET SECONDS  one long run; prints CPU time and
#                                        libFuzzer's final stats
#   fuzz/run.sh budget TARGET CPU_SECS   one run that is stopped (SIGINT, so
#                                        libFuzzer prints its final stats) once
#                                        the fuzzer has used CPU_SECS of CPU:
#                                        a shared machine's wall time says little
#   fuzz/run.sh merge TARGET             minimise the run's new inputs into
#                                        the committed corpus
#
# Inputs found during a run go to fuzz/corpus-run/<target>/ (not committed);
# crashes to fuzz/artifacts/<target>/. Single allocations above 256 MiB count
# as crashes (-malloc_limit_mb): a decoder must never trust a length field.
set -uo pipefail
cd "$(dirname "$0")"
TARGETS=(responses record_batch compression sasl config)
FLAGS=(-rss_limit_mb=2048 -malloc_limit_mb=256 -max_len=4096 -timeout=20)

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "SKIP: libFuzzer runs need 'cargo +nightly fuzz' (rustup toolchain install nightly; cargo install cargo-fuzz);"
    echo "      the committed corpora are still replayed by 'cargo test --lib fuzzing'"
    exit 0
fi

run() { # target seconds -> libFuzzer run on the committed and the run corpus
    local t=$1 s=$2
    mkdir -p "corpus-run/$t" "artifacts/$t"
    cargo +nightly fuzz run -O "$t" "corpus-run/$t" "corpus/$t" -- \
        "${FLAGS[@]}" -max_total_time="$s" -artifact_prefix="artifacts/$t/" -print_final_stats=1
}

case "${1:-smoke}" in
smoke)
    secs=${2:-5}
    cargo +nightly fuzz build -O || exit 1
    failed=0
    for t in "${TARGETS[@]}"; do
        if out=$(run "$t" "$secs" 2>&1); then
            echo "ok: fuzz $t ${secs}s: $(grep -E '^#[0-9]+.*DONE' <<<"$out" | tail -1)"
        else
            echo "FAILED: fuzz $t:"
            tail -40 <<<"$out"
            failed=$((failed + 1))
        fi
    done
    [ "$failed" = 0 ]
    ;;
campaign)
    t=${2:?target}
    s=${3:?seconds}
    mkdir -p "corpus-run/$t" "artifacts/$t"
    cargo +nightly fuzz build -O "$t" || exit 1
    /usr/bin/time -f "cpu: user %U s, system %S s, wall %e s, max rss %M KiB" \
        nice -n 19 cargo +nightly fuzz run -O "$t" "corpus-run/$t" "corpus/$t" -- \
        "${FLAGS[@]}" -max_total_time="$s" -artifact_prefix="artifacts/$t/" -print_final_stats=1
    ;;
budget)
    t=${2:?target}
    budget=${3:?cpu seconds}
    mkdir -p "corpus-run/$t" "artifacts/$t"
    cargo +nightly fuzz build -O "$t" || exit 1
    bin=$(ls -d target/*/release/"$t" | head -1)
    start=$(date +%s)
    # nice execs the fuzzer, so $! is the fuzzer itself. No -max_total_time:
    # libFuzzer counts wall time, the budget here is CPU time.
    nice -n 19 "$bin" "corpus-run/$t" "corpus/$t" "${FLAGS[@]}" \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 &
    pid=$!
    tick=$(getconf CLK_TCK)
    cpu=0
    while kill -0 "$pid" 2>/dev/null; do
        # utime + stime of the fuzzer (fields 14 and 15 after the command name)
        cpu=$(awk -v t="$tick" '{ sub(/^.*\) /, ""); print int(($12 + $13) / t) }' "/proc/$pid/stat" 2>/dev/null || echo "$cpu")
        [ "$cpu" -ge "$budget" ] && kill -INT "$pid"
        sleep 5
    done
    wait "$pid"; rc=$?
    echo "budget: target $t cpu ${cpu} s of ${budget} s, wall $(( $(date +%s) - start )) s, exit $rc"
    [ -z "$(ls -A "artifacts/$t")" ] || { echo "artifacts/$t is not empty"; exit 1; }
    ;;
merge)
    t=${2:?target}
    cargo +nightly fuzz run -O "$t" "corpus/$t" "corpus-run/$t" -- -merge=1 "${FLAGS[@]}"
    ;;
*)
    echo "usage: $0 smoke [SECONDS] | campaign TARGET SECONDS | budget TARGET CPU_SECONDS | merge TARGET" >&2
    exit 2
    ;;
esac
