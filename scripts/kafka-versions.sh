#!/usr/bin/env bash
# The smoke set of kp's integration tests against other Kafka versions than the test bed's
# default (4.1.1, on which scripts/test.sh runs every suite). For each version: fetch its
# jars (cached in .testbed/jars-<version>), start a 3-node KRaft cluster of it with the
# secured listeners (testbed/kafka.sh, KP_KAFKA_VERSION), run the smoke tests, stop it.
# One cluster at a time, on ports of their own: KP_TESTBED_BASE (default 30092) + 500,
# i.e. node n on 3n592.. (state in $KP_TESTBED_DIR/kafka-<version>, default .testbed/).
#
#   scripts/kafka-versions.sh [VERSION...]     default: $KP_KAFKA_VERSIONS if set (empty:
#                                              none), else "3.9.2 4.4.0"
#
# The smoke set (tests selected by name; every one reads back with a consumer kp did
# not write: confluent-kafka, or Kafka's DumpLogSegments):
#   produce and read back      every codec, byte-identical (integration.rs)
#   transactions               committed and aborted ones with protocol v1, and v2 where
#                              the brokers support it (transactions.rs: Kafka 3.9 has no
#                              transaction.version 2); one over SASL_SSL (security.rs)
#   idempotence, broker kill   20,000 records over SASL_SSL, a broker SIGKILLed and
#                              restarted: none lost, none duplicated (security.rs)
#   security                   SASL_SSL PLAIN/SCRAM-256/512, SASL_PLAINTEXT, mutual TLS,
#                              OAUTHBEARER unsecured JWT, a topic ACL denial (security.rs)
# Needs the test binaries (built by scripts/test.sh before; built here otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

if (($#)); then
  versions=("$@")
else
  read -r -a versions <<<"${KP_KAFKA_VERSIONS-3.9.2 4.4.0}"
fi
if ((${#versions[@]} == 0)); then
  echo "(KP_KAFKA_VERSIONS is empty: no other Kafka version tested)"
  exit 0
fi
tb=${KP_TESTBED_DIR:-$PWD/.testbed}
smoke=(
  every_codec_round_trips_byte_identical
  commit_is_visible_and_abort_is_not
  idempotent_producer_survives_a_broker_kill_over_sasl_ssl
  sasl_ssl_each_mechanism_with_librdkafka_names
  sasl_plaintext_plain_and_scram
  mutual_tls_with_pem_encrypted_key_pkcs12_and_inline_pem
  oauthbearer_unsecured_jwt_for_test_clusters
  topic_authorization_failure_per_record_names_the_topic
  transactions_commit_and_abort_over_sasl_ssl
)
base=$((${KP_TESTBED_BASE:-30092} + 500))

# Nothing of the default cluster's environment may leak into a version's run.
unset KP_BOOTSTRAP KP_TESTBED_NODES KP_SASL_SSL_BOOTSTRAP KP_SSL_BOOTSTRAP \
  KP_SASL_PLAINTEXT_BOOTSTRAP KP_EXPIRED_SSL_BOOTSTRAP KP_NOTYET_SSL_BOOTSTRAP KP_TLS_DIR

summary=()
for v in "${versions[@]}"; do
  t0=$SECONDS
  export KP_KAFKA_VERSION=$v KP_TESTBED_DIR=$tb/kafka-$v KP_TESTBED_JARS=$tb/jars-$v \
    KP_TESTBED_BASE=$base
  echo "== Kafka $v: fetch, start 3 nodes (ports from $((base + 1000)))"
  bash testbed/kafka.sh fetch
  t_fetch=$((SECONDS - t0))
  trap 'bash testbed/kafka.sh stop' EXIT
  bash testbed/kafka.sh start 3
  t_start=$((SECONDS - t0 - t_fetch))
  set -a
  # shellcheck disable=SC1091
  . "$KP_TESTBED_DIR/cluster/env"
  set +a
  echo "== Kafka $v: smoke set against $KP_BOOTSTRAP"
  cargo test --release --test integration --test transactions --test security \
    -- --test-threads=1 "${smoke[@]}"
  bash testbed/kafka.sh stop
  trap - EXIT
  unset KP_BOOTSTRAP KP_TESTBED_NODES
  summary+=("Kafka $v: smoke set passed in $((SECONDS - t0)) s (fetch ${t_fetch} s, start ${t_start} s)")
done
printf '%s\n' "${summary[@]}"
