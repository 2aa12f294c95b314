#!/usr/bin/env bash
# Runs every test: unit tests, header checks, and the integration tests and
# C examples against a real 3-broker Kafka cluster started here (or the one
# KP_BOOTSTRAP points at; tests that kill brokers then skip themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
bash scripts/install-deps.sh

echo "== format and lint"
cargo fmt --check
cargo clippy --release --all-targets -- -D warnings

echo "== build, header check (C99 and C++)"
make -s header-check examples examples-asan c-tests

echo "== unit and property tests (incl. the replay of the committed fuzz corpora)"
cargo test --release --lib

# libFuzzer itself (nightly, cargo-fuzz, an ASan build of every target: tens of
# minutes the first time) only when asked; the corpora replay above always runs.
if [ "${KP_FUZZ_SMOKE:-0}" = 1 ]; then
  echo "== fuzz smoke: 5 s of libFuzzer per target"
  bash fuzz/run.sh smoke 5
fi

main_testbed=0
if [ -z "${KP_BOOTSTRAP:-}" ]; then
  main_testbed=1
  # KP_TESTBED_PROXY=1: each node's listener PROXIED, for tests/faults.rs's fault proxy
  KP_TESTBED_PROXY=1 bash testbed/kafka.sh start 3
  trap 'bash testbed/kafka.sh stop' EXIT
  # shellcheck disable=SC1091
  source .testbed/cluster/env
  export KP_BOOTSTRAP KP_TESTBED_NODES KP_PROXIED_BOOTSTRAP
  # the same cluster's secured listeners (TLS, SASL), for tests/security.rs
  export KP_SASL_SSL_BOOTSTRAP KP_SSL_BOOTSTRAP KP_SASL_PLAINTEXT_BOOTSTRAP KP_TLS_DIR \
    KP_EXPIRED_SSL_BOOTSTRAP KP_NOTYET_SSL_BOOTSTRAP
fi

suites=(--test integration --test transactions --test metrics --test abi --test faults --test leader)
if [ -n "${KP_SASL_SSL_BOOTSTRAP:-}" ]; then
  suites+=(--test security)
else
  echo "(no secured listeners known: tests/security.rs not run)"
fi
echo "== integration tests against $KP_BOOTSTRAP"
cargo test --release "${suites[@]}" -- --test-threads=1

echo "== C examples (plain and AddressSanitizer/UBSan)"
bash tests/c_examples.sh

echo "== C tests of the ABI (fork; plain and AddressSanitizer/UBSan)"
bash tests/c/run.sh

echo "== C++ API (kp.hpp; g++ and clang++, plain and AddressSanitizer/UBSan)"
bash tests/cpp/run.sh

echo "== installed copy: make install, pkg-config, static link, CMake find_package(kp)"
bash tests/install/run.sh

echo "== Python binding (pip install ./bindings/python into a venv; pytest against $KP_BOOTSTRAP)"
bash bindings/python/run-tests.sh

echo "== Go binding (go vet, go test -race against $KP_BOOTSTRAP; examples via pkg-config, shared and static)"
bash bindings/go/run-tests.sh

echo "== Java binding (JNI glue + Maven/JUnit 5 against $KP_BOOTSTRAP; quick tests also on the newest JDK)"
bash bindings/java/run-tests.sh

echo "== Ruby binding (Debian ruby + ruby-ffi; minitest against $KP_BOOTSTRAP)"
bash bindings/ruby/run-tests.sh

# One cluster at a time: the 4.1.1 cluster stops before the other versions start.
if [ "$main_testbed" = 1 ]; then bash testbed/kafka.sh stop; fi
echo "== other Kafka versions (${KP_KAFKA_VERSIONS-3.9.2 4.4.0}): smoke set on a 3-node cluster of each"
bash scripts/kafka-versions.sh
