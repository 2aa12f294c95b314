#!/usr/bin/env bash
# Runs the C examples against the real cluster ($KP_BOOTSTRAP), plain and
# under AddressSanitizer/UBSan, and checks what they wrote with an
# independent consumer (confluent-kafka).
set -uo pipefail
cd "$(dirname "$0")/.."
: "${KP_BOOTSTRAP:?KP_BOOTSTRAP must point at a running cluster (scripts/test.sh sets it)}"
RF=$(( ${KP_TESTBED_NODES:-3} < 3 ? ${KP_TESTBED_NODES:-3} : 3 ))
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

count_records() { # topic expected -> prints how many the independent consumer read
    python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$1" "$2" --timeout 60 2>/dev/null | wc -l
}

# The sanitizer builds really carry the sanitizer runtimes.
for ex in producer console_producer transactional; do
    libs=$(ldd "build/asan/$ex")   # not piped into grep -q: with pipefail, SIGPIPE would fail it
    if grep -q libasan <<<"$libs" && grep -q libubsan <<<"$libs"; then
        ok "build/asan/$ex links libasan and libubsan"
    else
        bad "build/asan/$ex is not linked with the sanitizers"
    fi
done

# The plain builds a third time under valgrind memcheck (tests/valgrind.sh).
. tests/valgrind.sh
variants=(build build/asan)
if valgrind_enabled; then
    valgrind_wrappers build/valgrind build/producer build/console_producer build/transactional
    variants+=(build/valgrind)
fi

for variant in "${variants[@]}"; do
    topic="cex-producer-${variant//\//-}-$$"
    bash testbed/kafka.sh create-topic "$topic" 3 "$RF" >/dev/null 2>&1
    if out=$("$variant/producer" "$KP_BOOTSTRAP" "$topic" 20 2>&1); then
        ok "$variant/producer exits 0"
    else
        bad "$variant/producer failed: $out"
    fi
    grep -q "async reports: 40 ok, 0 failed" <<<"$out" && ok "$variant/producer reports 20 sync + 20 async deliveries" \
        || bad "$variant/producer report summary: $(tail -1 <<<"$out")"
    grep -q "metrics: 60 delivered, 0 failed" <<<"$out" && ok "$variant/producer: kp_producer_metrics counts 60 delivered" \
        || bad "$variant/producer metrics: $(grep metrics: <<<"$out")"
    n=$(count_records "$topic" 60)
    [ "$n" = 60 ] && ok "$variant/producer: independent consumer reads 60 records" || bad "$variant/producer: consumer read $n of 60"

    topic="cex-console-${variant//\//-}-$$"
    bash testbed/kafka.sh create-topic "$topic" 3 "$RF" >/dev/null 2>&1
    if seq 1 500 | sed 's/.*/key-&:value-&/' | "$variant/console_producer" --bootstrap-server "$KP_BOOTSTRAP" --topic "$topic" \
        --property parse.key=true --property key.separator=: --compression-codec lz4 --producer-property linger.ms=10; then
        ok "$variant/console_producer exits 0"
    else
        bad "$variant/console_producer exit status"
    fi
    recs=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$topic" 500 --timeout 60 2>/dev/null)
    n=$(wc -l <<<"$recs")
    [ "$n" = 500 ] && ok "$variant/console_producer: 500 records read back" || bad "$variant/console_producer: read $n of 500"
    # key-7 -> base64 "a2V5LTc=", value-7 -> "dmFsdWUtNw=="
    grep -q '"key": "a2V5LTc=", "value": "dmFsdWUtNw=="' <<<"$recs" && ok "$variant/console_producer: key and value split at the separator" \
        || bad "$variant/console_producer: key-7/value-7 not found"

    if err=$(echo x | "$variant/console_producer" --bootstrap-server "$KP_BOOTSTRAP" --topic "bad topic" 2>&1); then
        bad "$variant/console_producer accepted an invalid topic"
    else
        grep -q "INVALID_TOPIC" <<<"$err" && ok "$variant/console_producer: invalid topic fails with INVALID_TOPIC" || bad "message: $err"
    fi
    if err=$(echo x | "$variant/console_producer" --bootstrap-server "$KP_BOOTSTRAP" --topic t --producer-property no.such=1 2>&1); then
        bad "$variant/console_producer accepted an unknown property"
    else
        grep -q "no.such" <<<"$err" && ok "$variant/console_producer: unknown property is named" || bad "message: $err"
    fi
    if err=$(echo x | "$variant/console_producer" --bootstrap-server 127.0.0.1:1 --topic t \
        --producer-property delivery.timeout.ms=2000 --producer-property request.timeout.ms=1000 --producer-property linger.ms=0 2>&1); then
        bad "$variant/console_producer succeeded with an unreachable broker"
    else
        grep -q "ALL_BROKERS_DOWN" <<<"$err" && ok "$variant/console_producer: unreachable broker reported (non-zero exit)" || bad "message: $err"
    fi

    ta="cex-txa-${variant//\//-}-$$"
    tb="cex-txb-${variant//\//-}-$$"
    bash testbed/kafka.sh create-topic "$ta" 3 "$RF" >/dev/null 2>&1
    bash testbed/kafka.sh create-topic "$tb" 2 "$RF" >/dev/null 2>&1
    if out=$("$variant/transactional" "$KP_BOOTSTRAP" "$ta" "$tb" "cex-tid-${variant//\//-}-$$" 25 2>&1); then
        ok "$variant/transactional exits 0 (75 ok + 25 purged reports, close OK)"
    else
        bad "$variant/transactional failed: $out"
    fi
    n=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$ta" 25 --timeout 60 --isolation read_committed 2>/dev/null | wc -l)
    [ "$n" = 25 ] && ok "$variant/transactional: read_committed sees only the committed 25 on $ta" || bad "$variant/transactional: read_committed saw $n on $ta"
    n=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$ta" 50 --timeout 60 --isolation read_uncommitted 2>/dev/null | wc -l)
    [ "$n" = 50 ] && ok "$variant/transactional: read_uncommitted sees committed + aborted (50)" || bad "$variant/transactional: read_uncommitted saw $n"
    n=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$tb" 25 --timeout 60 --isolation read_committed 2>/dev/null | wc -l)
    [ "$n" = 25 ] && ok "$variant/transactional: $tb has the committed 25 and no purged record" || bad "$variant/transactional: $tb read_committed saw $n"
done

# The console producer on the secured listeners, settings given as --producer-property
# (scripts/test.sh exports the testbed's secured addresses; alice may write sec-*).
if [ -n "${KP_SASL_SSL_BOOTSTRAP:-}" ]; then
    topic="sec-cex-console-$$"
    bash testbed/kafka.sh create-topic "$topic" 2 "$RF" >/dev/null 2>&1
    sasl=(--producer-property security.protocol=SASL_SSL --producer-property sasl.mechanism=SCRAM-SHA-256
        --producer-property sasl.username=alice --producer-property "ssl.ca.location=$KP_TLS_DIR/ca.pem")
    if seq 1 100 | build/console_producer --bootstrap-server "$KP_SASL_SSL_BOOTSTRAP" --topic "$topic" \
        "${sasl[@]}" --producer-property sasl.password=alice-secret; then
        ok "console_producer over SASL_SSL (SCRAM-SHA-256) exits 0"
    else
        bad "console_producer over SASL_SSL exit status"
    fi
    n=$(python3 tests/verify/consume.py "$KP_SSL_BOOTSTRAP" "$topic" 100 --timeout 60 \
        --config security.protocol=SSL --config "ssl.ca.location=$KP_TLS_DIR/ca.pem" \
        --config "ssl.certificate.location=$KP_TLS_DIR/client.pem" \
        --config "ssl.key.location=$KP_TLS_DIR/client.key" 2>/dev/null | wc -l)
    [ "$n" = 100 ] && ok "console_producer over SASL_SSL: 100 records read back over mutual TLS" \
        || bad "console_producer over SASL_SSL: read $n of 100"
    if err=$(echo x | build/console_producer --bootstrap-server "$KP_SASL_SSL_BOOTSTRAP" --topic "$topic" \
        "${sasl[@]}" --producer-property sasl.password=wrong-secret 2>&1); then
        bad "console_producer succeeded with a wrong password"
    elif grep -q "SASL authentication failed for user alice with SCRAM-SHA-256" <<<"$err" && ! grep -q wrong-secret <<<"$err"; then
        ok "console_producer: wrong password fails, says why, does not print it"
    else
        bad "console_producer wrong-password message: $err"
    fi
fi

if valgrind_enabled; then
    if out=$(valgrind_verdict build/valgrind); then ok "${out#ok: }"; else bad "${out#FAILED: }"; fi
fi

echo "c examples: $passed passed, $failed failed"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
