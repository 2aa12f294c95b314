#!/usr/bin/env bash
# Idempotent installer of the tools kp's tests use, for a fresh Debian 12 machine.
# Installs only what is missing (and runs `apt-get update` only then):
#   - kcat                     independent consumer for cross-checks (Debian: kcat 1.7.1, librdkafka 2.0.2)
#   - valgrind                 memory checks of the C ABI examples
#   - confluent_kafka (python) independent consumer for cross-checks, for the DEFAULT python3:
#       * default python3 is /usr/bin/python3 -> apt package python3-confluent-kafka (1.7.0)
#       * otherwise (e.g. pyenv 3.11, first on PATH on the dev machine, which cannot see
#         Debian's dist-packages) -> `python3 -m pip install confluent-kafka`
#         (verified 2026-11: pyenv 3.11.7 gets confluent-kafka 2.x wheels with bundled librdkafka)
#   - java 17 + maven          only if missing (needed by testbed/kafka.sh)
#   - openssl                  only if missing (testbed/kafka.sh makes per-run TLS certificates)
#   - cmake, pkg-config        out-of-tree builds against an installed kp (tests/install)
#   - clang                    the C++ API tests build with clang++ as well as g++ (tests/cpp)
#   - golang-go                the Go binding's tests (bindings/go; needs Go 1.19 or later)
#   - ruby, ruby-ffi, ruby-minitest  the Ruby binding and its tests (bindings/ruby; no gem server needed)
# then fetches the Kafka jars: testbed/kafka.sh fetch (cached in .testbed/jars).
# Set PYTHON=/path/to/python to target another interpreter.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
export DEBIAN_FRONTEND=noninteractive

log() { printf 'install-deps: %s\n' "$*" >&2; }

SUDO=()
if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || { log "not root and no sudo"; exit 1; }
    SUDO=(sudo)
fi

apt_pkgs=()
command -v kcat >/dev/null || apt_pkgs+=(kcat)
command -v valgrind >/dev/null || apt_pkgs+=(valgrind)
command -v java >/dev/null || apt_pkgs+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || apt_pkgs+=(maven)
command -v javac >/dev/null || apt_pkgs+=(openjdk-17-jdk-headless) # bindings/java builds with it
# testbed/kafka.sh makes the secured listeners' certificates with the openssl CLI
command -v openssl >/dev/null || apt_pkgs+=(openssl)
command -v cmake >/dev/null || apt_pkgs+=(cmake)
command -v pkg-config >/dev/null || apt_pkgs+=(pkg-config)
command -v clang++ >/dev/null || apt_pkgs+=(clang)
command -v go >/dev/null || apt_pkgs+=(golang-go)
# Ruby binding (bindings/ruby/run-tests.sh): Debian's ruby, ffi gem and minitest
command -v ruby >/dev/null || apt_pkgs+=(ruby)
if ! command -v ruby >/dev/null || ! ruby -e 'require "ffi"; require "minitest"' 2>/dev/null; then
    apt_pkgs+=(ruby-ffi ruby-minitest)
fi
# Python binding tests (bindings/python/run-tests.sh): pytest, cffi, venv; pip below otherwise
if [[ $(command -v "$PYTHON") == /usr/bin/python3 ]] && ! "$PYTHON" -c 'import pytest, cffi, ensurepip' 2>/dev/null; then
    apt_pkgs+=(python3-pytest python3-cffi python3-venv)
fi

# The Python binding compiles a C extension at pip install: it needs Python.h
if ! "$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
    [[ $(command -v "$PYTHON") == /usr/bin/python3 ]] && apt_pkgs+=(python3-dev)
fi

pip_confluent=0
if ! "$PYTHON" -c 'import confluent_kafka' 2>/dev/null; then
    if [[ $(command -v "$PYTHON") == /usr/bin/python3 ]]; then
        apt_pkgs+=(python3-confluent-kafka)
    else
        pip_confluent=1
    fi
fi

if ((${#apt_pkgs[@]})); then
    log "apt-get install: ${apt_pkgs[*]}"
    "${SUDO[@]}" apt-get update -qq >&2
    "${SUDO[@]}" apt-get install -y -qq "${apt_pkgs[@]}" >&2
else
    log "apt packages already present (kcat, valgrind, java, mvn, cmake, pkg-config, clang)"
fi

if ((pip_confluent)); then
    log "pip install confluent-kafka for $(command -v "$PYTHON") (Debian's python3-confluent-kafka only serves /usr/bin/python3)"
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install -q 'confluent-kafka>=2.3'
    command -v pyenv >/dev/null && pyenv rehash 2>/dev/null || true
else
    log "python confluent_kafka present (or installed via apt) for $(command -v "$PYTHON")"
fi
"$PYTHON" -c 'import pytest, cffi' 2>/dev/null || { log "pip install pytest cffi"; PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install -q pytest cffi; }
"$PYTHON" -c 'import confluent_kafka as c; v = c.version(); v = v[0] if isinstance(v, tuple) else v; print("install-deps: confluent_kafka", v, "librdkafka", c.libversion()[0])' >&2

# rustfmt and clippy: make test runs `cargo fmt --check` and `cargo clippy -D warnings`
if command -v rustup >/dev/null; then
    for comp in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$comp" || { log "rustup component add $comp"; rustup component add "$comp" >&2; }
    done
fi

"$REPO_ROOT/testbed/kafka.sh" fetch
log "done"
