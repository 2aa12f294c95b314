#!/usr/bin/env bash
# Runs the C tests of tests/c/ against the real cluster ($KP_BOOTSTRAP),
# plain and under AddressSanitizer/UBSan (make c-tests builds both), and
# checks what they wrote with an independent consumer (confluent-kafka).
set -uo pipefail
cd "$(dirname "$0")/../.."
: "${KP_BOOTSTRAP:?KP_BOOTSTRAP must point at a running cluster (scripts/test.sh sets it)}"
RF=$(( ${KP_TESTBED_NODES:-3} < 3 ? ${KP_TESTBED_NODES:-3} : 3 ))
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# The plain builds a third time under valgrind memcheck (tests/valgrind.sh).
. tests/valgrind.sh
variants=(build/ctests build/ctests/asan)
if valgrind_enabled; then
    valgrind_wrapper build/ctests/valgrind/log build/ctests/log
    # The forked child has lost the parent's threads by design (kp refuses it
    # every call): blocks only those threads referenced look lost to memcheck
    # there. The child's report is silent (--child-silent-after-fork) and its
    # leaks do not set the exit status; the parent's report is checked in full.
    valgrind_wrapper build/ctests/valgrind/fork build/ctests/fork --errors-for-leak-kinds=none
    variants+=(build/ctests/valgrind)
fi

for variant in "${variants[@]}"; do
    topic="ctest-fork-${variant//\//-}-$$"
    bash testbed/kafka.sh create-topic "$topic" 3 "$RF" >/dev/null 2>&1
    if out=$("$variant/fork" "$KP_BOOTSTRAP" "$topic" 2>&1); then
        ok "$variant/fork: the child's calls fail with KP_ERR_FORKED at once, silently"
    else
        bad "$variant/fork: $out"
    fi
    grep -q "parent: 300 delivered, 0 failed" <<<"$out" && ok "$variant/fork: the parent delivers all 300" \
        || bad "$variant/fork parent: $(tail -1 <<<"$out")"
    n=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$topic" 300 --timeout 60 2>/dev/null | wc -l)
    [ "$n" = 300 ] && ok "$variant/fork: independent consumer reads 300 records" || bad "$variant/fork: consumer read $n of 300"
    # kp never prints: log.c prints nothing itself when it passes, so any
    # byte on stdout or stderr came from kp (or says what failed).
    topic="ctest-log-${variant//\//-}-$$"
    bash testbed/kafka.sh create-topic "$topic" 3 "$RF" >/dev/null 2>&1
    for mode in quiet panic-flush panic-silent panic-io; do
        out=$("$variant/log" "$KP_BOOTSTRAP" "$topic" "$mode" 2>&1)
        rc=$?
        if [ "$rc" = 0 ] && [ -z "$out" ]; then
            ok "$variant/log $mode: nothing printed on stdout/stderr"
        else
            bad "$variant/log $mode (exit $rc): ${out:0:2000}"
        fi
    done
    n=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$topic" 130 --timeout 60 2>/dev/null | wc -l)
    [ "$n" = 130 ] && ok "$variant/log: independent consumer reads the 130 records" || bad "$variant/log: consumer read $n of 130"
done
if valgrind_enabled; then
    if out=$(valgrind_verdict build/ctests/valgrind); then ok "${out#ok: }"; else bad "${out#FAILED: }"; fi
fi
echo "C tests: $passed passed, $failed failed"
[ "$failed" = 0 ]
