#!/usr/bin/env bash
# The demo: starts a local single-broker Kafka (unless KP_BOOTSTRAP points at
# one), produces through the C example, and reads the records back with
# Kafka's own console consumer.
set -euo pipefail
cd "$(dirname "$0")/.."
started=0
if [ -z "${KP_BOOTSTRAP:-}" ]; then
  bash scripts/install-deps.sh
  bash testbed/kafka.sh start 1
  started=1
  trap 'bash testbed/kafka.sh stop' EXIT
  # shellcheck disable=SC1091
  source .testbed/cluster/env
  export KP_BOOTSTRAP
fi
make -s examples
topic=kp-demo-$$
bash testbed/kafka.sh create-topic "$topic" 3 1
echo "== producing through examples-c/producer.c to $topic on $KP_BOOTSTRAP"
./build/producer "$KP_BOOTSTRAP" "$topic" 5
echo "== reading back with Kafka's ConsoleConsumer"
bash testbed/kafka.sh consume "$topic" 15
echo "== demo finished (broker started here: $started)"
