#!/usr/bin/env bash
# Tests of the C++ API (include/kp.hpp) against the real cluster
# ($KP_BOOTSTRAP): tests/cpp/kp_hpp_test.cpp and examples-cpp/producer.cpp,
# built with -std=c++17 -Wall -Wextra -Werror -pedantic (and more) by g++
# and clang++ (when installed), under AddressSanitizer/UBSan (leak detection
# on), and plain with g++. What they wrote is read back with an independent
# consumer (confluent-kafka): values, keys and headers of every send mode
# (batch send and the batched drain included), and read_committed vs
# read_uncommitted for the transactions.
set -uo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/cpp/common.sh
. tests/cpp/common.sh
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

LIBDIR=$PWD/target/release
[ -f "$LIBDIR/libkp.so" ] || { echo "FAILED: $LIBDIR/libkp.so missing (make lib)"; echo "0 passed, 1 failed"; exit 1; }
WARN=(-std=c++17 -Wall -Wextra -Werror -pedantic -Wshadow -Wconversion -Wsign-conversion)
LINK=(-Iinclude -L"$LIBDIR" -lkp -Wl,-rpath,"$LIBDIR" -lpthread -ldl -lm)
# -O0: the sanitizers check as much (more of the stack stays instrumented) and
# the test compiles 2-3x faster than at -O1 (g++ 16 s vs 37 s of CPU); the
# plain build is -O2 and gives the optimiser's warnings.
SAN=(-O0 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all)
mkdir -p build/cpp-test

compilers=(g++)
if command -v clang++ >/dev/null; then compilers+=(clang++); else echo "note: clang++ not installed; g++ only"; fi

# The header alone, with every warning, as C++17 and C++20 (std::span as a Bytes source).
for cxx in "${compilers[@]}"; do
    for std in c++17 c++20; do
        if "$cxx" -std=$std -Wall -Wextra -Werror -pedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast \
            -Iinclude -fsyntax-only tests/cpp/header_check.cpp 2>build/cpp-test/err.txt; then
            ok "$cxx -std=$std: kp.hpp compiles with -Wall -Wextra -Werror -pedantic -Wconversion -Wold-style-cast"
        else
            bad "$cxx -std=$std: $(head -20 build/cpp-test/err.txt)"
        fi
    done
done

# g++ plain and sanitized; clang++ sanitized (its plain build adds little).
variants=()
for cxx in "${compilers[@]}"; do
    kinds=(plain asan)
    [ "$cxx" = clang++ ] && kinds=(asan)
    for kind in "${kinds[@]}"; do
        out=build/cpp-test/${cxx//+/x}-$kind # topic names may not contain '+'
        flags=(-O2 -g)
        [ $kind = asan ] && flags=("${SAN[@]}")
        if "$cxx" "${WARN[@]}" "${flags[@]}" tests/cpp/kp_hpp_test.cpp "${LINK[@]}" -o "$out-test" 2>build/cpp-test/err.txt \
            && "$cxx" "${WARN[@]}" "${flags[@]}" examples-cpp/producer.cpp "${LINK[@]}" -o "$out-producer" 2>build/cpp-test/err.txt; then
            ok "$cxx $kind: test and example build with ${WARN[*]}"
            variants+=("$out")
        else
            bad "$cxx $kind build: $(head -30 build/cpp-test/err.txt)"
        fi
        if [ $kind = asan ]; then
            libs=$(ldd "$out-test" 2>/dev/null)
            if grep -q libasan <<<"$libs" && grep -q libubsan <<<"$libs"; then
                ok "$cxx asan: the test links libasan and libubsan"
            elif syms=$(nm "$out-test" 2>/dev/null) && grep -q __asan_init <<<"$syms" && grep -q __ubsan_handle <<<"$syms"; then
                ok "$cxx asan: the ASan and UBSan runtimes are linked in (statically)"
            else
                bad "$cxx asan: not linked with the sanitizers"
            fi
        fi
    done
done

# g++'s plain build a second time under valgrind memcheck (tests/valgrind.sh).
. tests/valgrind.sh
if valgrind_enabled && [ -x build/cpp-test/gxx-plain-test ] && [ -x build/cpp-test/gxx-plain-producer ]; then
    # The test forks: its child has lost the parent's threads by design, so only
    # the parent's leaks count (valgrind_verdict below reads its report); see
    # tests/c/run.sh.
    valgrind_wrapper build/cpp-test/gxx-valgrind-test build/cpp-test/gxx-plain-test --errors-for-leak-kinds=none
    valgrind_wrapper build/cpp-test/gxx-valgrind-producer build/cpp-test/gxx-plain-producer
    variants+=(build/cpp-test/gxx-valgrind)
fi

values_of() { # file -> sorted "key|value|headers" lines
    python3 - "$1" <<'PY'
import base64, json, sys
d = lambda s: None if s is None else base64.b64decode(s).decode()
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        print("%s|%s|%s" % (d(r["key"]), d(r["value"]), ";".join("%s=%s" % (k, d(v)) for k, v in r["headers"])))
PY
}

n=25
specs=()
for v in "${variants[@]}"; do
    name=${v#build/cpp-test/}
    specs+=("cpp-send-$name-$$:3" "cpp-txn-$name-$$:2" "cpp-close-$name-$$:3" "cpp-example-$name-$$:3" "cpp-batch-$name-$$:3")
done
python3 tests/verify/create_topics.py "$KP_BOOTSTRAP" "$RF" "${specs[@]}" || bad "creating the test topics"

for v in "${variants[@]}"; do
    name=${v#build/cpp-test/}
    send_topic="cpp-send-$name-$$"
    txn_topic="cpp-txn-$name-$$"
    close_topic="cpp-close-$name-$$"
    batch_topic="cpp-batch-$name-$$"
    log=build/cpp-test/$name.log
    if "$v-test" "$KP_BOOTSTRAP" "$send_topic" "$txn_topic" "cpp-tid-$name-$$" "$close_topic" "$batch_topic" >"$log" 2>&1; then
        ok "$name: kp_hpp_test exits 0 ($(tail -1 "$log"))"
    else
        bad "$name: kp_hpp_test failed: $(grep -E '^FAILED|ERROR|Sanitizer|runtime error' "$log" | head -20) $(tail -3 "$log")"
    fi
    sed "s/^/   [$name] /" "$log"

    python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$send_topic" $((4 * n)) --timeout 60 >build/cpp-test/$name-send.json 2>/dev/null
    got=$(values_of build/cpp-test/$name-send.json | sort)
    want=$(for i in $(seq 0 $((n - 1))); do
        echo "None|fire-$i|"
        echo "key-$i|callback-$i|origin=kp.hpp;index=hv-$i;null-header=None"
        echo "None|sync-$i|"
        echo "None|future-$i|"
    done | sort)
    if [ "$got" = "$want" ]; then
        ok "$name: the independent consumer reads back all $((4 * n)) records byte for byte (keys, values, headers incl. a null header value)"
    else
        bad "$name: read-back differs: $(diff <(echo "$want") <(echo "$got") | head -10)"
    fi
    future_parts=$(python3 -c 'import json,sys,base64
print(sorted({json.loads(l)["partition"] for l in open(sys.argv[1]) if base64.b64decode(json.loads(l)["value"]).startswith(b"future-")}))' build/cpp-test/$name-send.json)
    [ "$future_parts" = "[1]" ] && ok "$name: records sent with partition=1 are all in partition 1" || bad "$name: future records in partitions $future_parts"

    committed=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$txn_topic" 10 --timeout 60 --isolation read_committed 2>/dev/null >build/cpp-test/$name-rc.json; values_of build/cpp-test/$name-rc.json | sort)
    want=$(for i in $(seq 0 9); do echo "None|committed-$i|"; done | sort)
    [ "$committed" = "$want" ] && ok "$name: read_committed sees exactly the 10 committed records, none of the aborted" \
        || bad "$name: read_committed saw: $(tr '\n' ' ' <<<"$committed")"
    m=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$txn_topic" 20 --timeout 60 --isolation read_uncommitted 2>/dev/null | wc -l)
    [ "$m" = 20 ] && ok "$name: read_uncommitted sees committed + aborted (20)" || bad "$name: read_uncommitted saw $m"

    # batch-topic: send_batch (with a header each), the drained records, the
    # throwing-logger producer's and the fork test's; the two records the
    # broker refused (MESSAGE_TOO_LARGE) must not be there.
    python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$batch_topic" 88 --timeout 60 >build/cpp-test/$name-batch.json 2>/dev/null
    got=$(values_of build/cpp-test/$name-batch.json | sort)
    want=$( (for i in $(seq 0 39); do echo "None|batch-$i|batch=bh-$i"; echo "None|drain-$i|"; done
        for i in $(seq 0 4); do echo "None|logger-threw-$i|"; done
        printf '%s\n' "None|drain-ctx|" "None|fork-before|" "None|fork-after|") | sort)
    [ "$got" = "$want" ] && ok "$name: the independent consumer reads back the 88 records of batch-topic byte for byte (40 batch-sent with headers, 41 drained, 5 + 2 more)" \
        || bad "$name: batch-topic read-back differs: $(diff <(echo "$want") <(echo "$got") | head -10)"

    check_cpp_example "$v-producer" "cpp-example-$name-$$" 20 "$name"
done

if valgrind_enabled && [ -x build/cpp-test/gxx-valgrind-test ]; then
    if out=$(valgrind_verdict build/cpp-test); then ok "${out#ok: }"; else bad "${out#FAILED: }"; fi
fi

summary "c++ tests"
