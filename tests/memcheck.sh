#!/usr/bin/env bash
# The C examples, the C tests of the ABI (tests/c/) and the C++ API test
# (tests/cpp/kp_hpp_test.cpp, examples-cpp/producer.cpp) under valgrind
# memcheck against the real cluster ($KP_BOOTSTRAP): each run must exit as
# it does natively, with 0 memcheck errors and 0 bytes definitely lost.
# `make memcheck` builds the binaries and runs this (several minutes: not in
# scripts/test.sh; ASan/UBSan cover the same programs there).
# Suppressions: tests/valgrind.supp (each entry says why).
set -uo pipefail
cd "$(dirname "$0")/.."
: "${KP_BOOTSTRAP:?KP_BOOTSTRAP must point at a running cluster}"
command -v valgrind >/dev/null || { echo "FAILED: valgrind not installed"; exit 1; }
RF=$(( ${KP_TESTBED_NODES:-3} < 3 ? ${KP_TESTBED_NODES:-3} : 3 ))
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
mkdir -p build/memcheck
LIBDIR=$PWD/target/release

# memcheck NAME CMD...: runs CMD under memcheck (stdin from the caller),
# checks the exit status and the error and leak summaries. Sets $out.
memcheck() {
    local name=$1 log=build/memcheck/$1.log rc
    shift
    out=$(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
        --errors-for-leak-kinds=definite --error-exitcode=99 --track-fds=no \
        --suppressions=tests/valgrind.supp --log-file="$log" "$@" 2>&1)
    rc=$?
    if [ "$rc" = 0 ] && grep -q "ERROR SUMMARY: 0 errors" "$log"; then
        local lost
        lost=$(grep -o "definitely lost: [0-9,]* bytes" "$log" || echo "definitely lost: 0 bytes")
        ok "$name: exit 0, 0 memcheck errors, $lost"
    else
        bad "$name (exit $rc): $(grep -E 'ERROR SUMMARY|definitely lost' "$log") ${out:0:500} (log: $log)"
    fi
}

topic() { # name partitions -> creates and prints a fresh topic
    local t="memcheck-$1-$$"
    bash testbed/kafka.sh create-topic "$t" "$2" "$RF" >/dev/null 2>&1
    echo "$t"
}

t=$(topic producer 3)
memcheck producer build/producer "$KP_BOOTSTRAP" "$t" 20
grep -q "async reports: 40 ok, 0 failed" <<<"$out" && ok "producer under memcheck: 40 reports ok" || bad "producer: $out"

t=$(topic console 3)
seq 1 200 | memcheck console_producer build/console_producer --bootstrap-server "$KP_BOOTSTRAP" --topic "$t" \
    --compression-codec zstd --producer-property linger.ms=10
n=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$t" 200 --timeout 60 2>/dev/null | wc -l)
[ "$n" = 200 ] && ok "console_producer under memcheck: 200 records read back" || bad "console_producer: read $n of 200"

ta=$(topic txa 3)
tb=$(topic txb 2)
memcheck transactional build/transactional "$KP_BOOTSTRAP" "$ta" "$tb" "memcheck-tid-$$" 10

t=$(topic fork 3)
memcheck fork --trace-children=yes --child-silent-after-fork=no build/ctests/fork "$KP_BOOTSTRAP" "$t"
grep -q "parent: 300 delivered, 0 failed" <<<"$out" && ok "fork under memcheck: parent delivers 300" || bad "fork: $out"

t=$(topic log 3)
for mode in quiet panic-flush panic-io panic-silent; do
    memcheck "log-$mode" build/ctests/log "$KP_BOOTSTRAP" "$t" "$mode"
done

if command -v g++ >/dev/null; then
    WARN=(-std=c++17 -Wall -Wextra -Werror -pedantic)
    LINK=(-Iinclude -L"$LIBDIR" -lkp -Wl,-rpath,"$LIBDIR" -lpthread -ldl -lm)
    if g++ "${WARN[@]}" -O1 -g tests/cpp/kp_hpp_test.cpp "${LINK[@]}" -o build/memcheck/kp_hpp_test \
        && g++ "${WARN[@]}" -O1 -g examples-cpp/producer.cpp "${LINK[@]}" -o build/memcheck/cpp_producer; then
        memcheck kp_hpp_test build/memcheck/kp_hpp_test "$KP_BOOTSTRAP" "$(topic cpp-send 3)" "$(topic cpp-txn 2)" \
            "memcheck-cpp-tid-$$" "$(topic cpp-close 2)" "$(topic cpp-batch 3)"
        memcheck cpp_producer build/memcheck/cpp_producer "$KP_BOOTSTRAP" "$(topic cpp-producer 3)" 10
        grep -q "delivered: 40 ok, 0 failed" <<<"$out" && ok "C++ example under memcheck: 40 delivered" || bad "cpp_producer: $out"
    else
        bad "C++ test build"
    fi
fi

echo "memcheck: $passed passed, $failed failed"
[ "$failed" = 0 ]
