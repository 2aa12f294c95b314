#!/usr/bin/env bash
# build-native.sh - compiles the JNI glue (src/main/c/kpjni.c) into
# target/native/libkpjni.so against include/kp.h and the repository's
# target/release/libkp.so (built by `make lib`), and puts libkp.so.0.1 beside
# it: Maven packages both into the jar, and the tests load them from there.
#
#   KP_LIB_DIR   directory holding libkp.so (default: <repo>/target/release)
#   JAVA_HOME    JDK whose include/jni.h to use (default: the one javac belongs to)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LIB_DIR=${KP_LIB_DIR:-$REPO/target/release}
JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
OUT=$HERE/target/native
[[ -f $LIB_DIR/libkp.so ]] || { echo "build-native.sh: no $LIB_DIR/libkp.so (run make lib)" >&2; exit 1; }
mkdir -p "$OUT"
# libkpjni.so's DT_NEEDED is libkp's soname (libkp.so.0.1); $ORIGIN finds it beside it.
soname=$(readelf -d "$LIB_DIR/libkp.so" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
# a stripped copy: the jar carries it (the debug info stays in target/release)
strip --strip-unneeded -o "$OUT/${soname:-libkp.so}" "$LIB_DIR/libkp.so"
gcc -std=c11 -D_GNU_SOURCE -O2 -g -fPIC -shared -Wall -Wextra -Werror \
    -I"$JAVA_HOME/include" -I"$JAVA_HOME/include/linux" -I"$REPO/include" \
    -o "$OUT/libkpjni.so" "$HERE/src/main/c/kpjni.c" \
    -L"$OUT" -l:"${soname:-libkp.so}" -Wl,-rpath,'$ORIGIN' -Wl,--no-undefined
