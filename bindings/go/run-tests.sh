#!/usr/bin/env bash
# Tests of the Go binding against the Kafka cluster in KP_BOOTSTRAP:
#   1. gofmt, go vet, and `go test -race` of package kp built against this
#      repository's build (-tags kp_repo: include/kp.h, target/release/libkp.so);
#      the tests read back with the independent consumer in tests/verify/.
#   2. The example program built as a user would: against an installed copy
#      (`make install` into a temporary prefix) through pkg-config, once shared
#      and once statically linked (-tags kp_static, libkp.a), both run against
#      the cluster and their records read back by the independent consumer.
# Needs go (1.19 or later; scripts/install-deps.sh installs it) and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
: "${KP_BOOTSTRAP:?KP_BOOTSTRAP must name the test cluster}"
command -v go >/dev/null || { echo "go is not installed (scripts/install-deps.sh installs it)" >&2; exit 1; }
[ -f target/release/libkp.so ] || make -s lib
export CGO_ENABLED=1
# No VCS stamping: a checkout owned by another user makes `git status` fail.
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
go version

cd bindings/go
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || { echo "gofmt: not formatted: $unformatted" >&2; exit 1; }
go vet -tags kp_repo ./...
# cgocheck=1 is Go's default; named here because the tests rely on it.
GODEBUG=cgocheck=1 go test -race -tags kp_repo -count=1 -parallel 8 ./...

work=$(mktemp -d /tmp/kp-go-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
make -s -C "$REPO" install PREFIX="$work/prefix" >"$work/install.log" 2>&1 \
    || { tail -5 "$work/install.log" >&2; exit 1; }
export PKG_CONFIG_PATH=$work/prefix/lib/pkgconfig
# A build cache of their own: Go's cache does not notice a change of
# pkg-config's output or of an installed header or library (golang/go#24544,
# #24355), so a package compiled against an earlier run's prefix (since
# deleted) would be linked again.
export GOCACHE=$work/gocache
go build -o "$work/producer-shared" ./examples/producer
go build -tags kp_static -o "$work/producer-static" ./examples/producer
if ldd "$work/producer-static" | grep -q libkp; then
    echo "the kp_static build still needs libkp.so:" >&2
    ldd "$work/producer-static" >&2
    exit 1
fi
topic=go-examples-$(date +%s%N)
python3 "$REPO/tests/verify/create_topics.py" "$KP_BOOTSTRAP" 1 "$topic:3"
LD_LIBRARY_PATH=$work/prefix/lib "$work/producer-shared" -bootstrap "$KP_BOOTSTRAP" -topic "$topic" -n 200
"$work/producer-static" -bootstrap "$KP_BOOTSTRAP" -topic "$topic" -n 200
got=$(python3 "$REPO/tests/verify/consume.py" "$KP_BOOTSTRAP" "$topic" 800 --timeout 60 | wc -l)
[ "$got" = 800 ] || { echo "the consumer read $got records of the examples, want 800" >&2; exit 1; }
echo "examples (pkg-config shared and kp_static): 800 records read back by confluent-kafka"
