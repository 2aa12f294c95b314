#!/usr/bin/env bash
# Installs the binding as a user would (`pip install ./bindings/python`, which builds
# libkp with cargo and bundles it) into a throwaway venv that also sees the system's
# pytest, cffi and confluent_kafka, then runs the binding's tests against the Kafka
# cluster in KP_BOOTSTRAP. Set PYTHON to use another interpreter.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${KP_BOOTSTRAP:?KP_BOOTSTRAP must name the test cluster}"
PYTHON=${PYTHON:-python3}
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
"$PYTHON" -m venv --system-site-packages "$venv"
unset KP_LIBRARY
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q ./bindings/python
(cd / && "$venv/bin/python" -c 'import kp; print("kp", kp.libversion()[0], "from", kp.__file__)')
"$venv/bin/python" -m pytest -p no:cacheprovider -q bindings/python/tests
