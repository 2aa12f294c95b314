# Sourced by tests/cpp/run.sh and tests/install/run.sh (from the repo root):
# the cluster ($KP_BOOTSTRAP, replication factor RF), ok/bad counters with
# the closing "N passed, M failed" line, and check_cpp_example.
: "${KP_BOOTSTRAP:?KP_BOOTSTRAP must point at a running cluster (scripts/test.sh sets it)}"
RF=$(( ${KP_TESTBED_NODES:-3} < 3 ? ${KP_TESTBED_NODES:-3} : 3 ))
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
summary() { # what -> prints the counts, returns non-zero on any failure
    echo "$1: $passed passed, $failed failed"
    echo "$passed passed, $failed failed"
    [ "$failed" = 0 ]
}

# check_cpp_example BINARY TOPIC PER_MODE LABEL runs a build of
# examples-cpp/producer.cpp (4 x PER_MODE records) and has the independent
# consumer read them back.
check_cpp_example() {
    local bin=$1 topic=$2 total=$(( 4 * $3 )) label=$4 out n
    if out=$("$bin" "$KP_BOOTSTRAP" "$topic" "$3" 2>&1) && grep -q "delivered: $total ok, 0 failed" <<<"$out"; then
        ok "$label: examples-cpp/producer delivers $total records"
    else
        bad "$label: examples-cpp/producer: $out"
    fi
    n=$(python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$topic" "$total" --timeout 60 2>/dev/null | wc -l)
    [ "$n" = "$total" ] && ok "$label: independent consumer reads the example's $total records" || bad "$label: example read-back $n of $total"
}
