#!/usr/bin/env bash
# Installs kp into a temporary prefix (`make install`), checks the layout
# (soname, symlinks, pkg-config file, CMake package), then builds programs
# OUT OF TREE against the installed copy only:
#   - a C program with `pkg-config --cflags --libs kp` (shared),
#   - the same statically linked with `pkg-config --static` (libkp.a),
#   - a CMake project with find_package(kp): kp::kp, kp::kp_static and the
#     C++ example (examples-cpp/producer.cpp, kp.hpp),
# runs each against the real cluster ($KP_BOOTSTRAP) and reads the records
# back with an independent consumer (confluent-kafka). Ends with
# `make uninstall` leaving the prefix empty, and a DESTDIR staging install.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
# shellcheck source=tests/cpp/common.sh
. tests/cpp/common.sh

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR=${VERSION%%.*}
MINOR=$(cut -d. -f2 <<<"$VERSION")
if [ "$MAJOR" = 0 ]; then SONAME=libkp.so.0.$MINOR; else SONAME=libkp.so.$MAJOR; fi

work=$(mktemp -d /tmp/kp-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
lib=$prefix/lib

# The programs below must see nothing of the build tree.
unset LD_LIBRARY_PATH CPATH C_INCLUDE_PATH CPLUS_INCLUDE_PATH LIBRARY_PATH
export PKG_CONFIG_PATH=$lib/pkgconfig

if make -s install PREFIX="$prefix" >"$work/install.log" 2>&1; then
    ok "make install PREFIX=$prefix"
else
    bad "make install failed: $(tail -5 "$work/install.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

# ---- layout
soname=$(readelf -d "$lib/libkp.so.$VERSION" 2>/dev/null | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "$SONAME" ] && ok "libkp.so.$VERSION has SONAME $soname (readelf -d)" || bad "SONAME is '$soname', want $SONAME"
[ "$(readlink "$lib/$SONAME")" = "libkp.so.$VERSION" ] && ok "$SONAME -> libkp.so.$VERSION" || bad "$SONAME link: $(readlink "$lib/$SONAME")"
[ "$(readlink "$lib/libkp.so")" = "$SONAME" ] && ok "libkp.so -> $SONAME" || bad "libkp.so link: $(readlink "$lib/libkp.so")"
for f in lib/libkp.a include/kp.h include/kp.hpp lib/pkgconfig/kp.pc lib/cmake/kp/kpConfig.cmake lib/cmake/kp/kpConfigVersion.cmake; do
    [ -f "$prefix/$f" ] && ok "installed $f" || bad "missing $f"
done
cmp -s include/kp.h "$prefix/include/kp.h" && cmp -s include/kp.hpp "$prefix/include/kp.hpp" \
    && ok "installed headers equal include/kp.h and include/kp.hpp" || bad "installed headers differ"
[ "$(pkg-config --modversion kp)" = "$VERSION" ] && ok "pkg-config --modversion kp = $VERSION" || bad "pkg-config --modversion: $(pkg-config --modversion kp 2>&1)"
static_libs=$(pkg-config --static --libs kp)
grep -q -- "-lpthread" <<<"$static_libs" && ok "pkg-config --static --libs kp: $static_libs" || bad "Libs.private missing: $static_libs"

count_values() { # topic expected label -> checks the independent consumer's records
    local topic=$1 n=$2 label=$3
    python3 tests/verify/consume.py "$KP_BOOTSTRAP" "$topic" "$n" --timeout 60 >"$work/$label.json" 2>/dev/null
    python3 - "$n" "$label" "$work/$label.json" <<'PY'
import base64, json, sys
n, label = int(sys.argv[1]), sys.argv[2]
recs = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
values = sorted(base64.b64decode(r["value"]).decode() for r in recs)
want = sorted("%s-%d" % (label, i) for i in range(n))
hdr_ok = all(r["headers"] == [["built-by", base64.b64encode(label.encode()).decode()]] for r in recs)
if values == want and hdr_ok:
    sys.exit(0)
print("read %d records (want %d), values match: %s, headers match: %s" % (len(recs), n, values == want, hdr_ok))
sys.exit(1)
PY
}

run_app() { # binary label
    local bin=$1 label=$2 topic="kp-install-$2-$$" out why
    if out=$("$bin" "$KP_BOOTSTRAP" "$topic" 200 "$label" 2>&1) && grep -q "$label: 200 delivered, 0 failed" <<<"$out"; then
        ok "$label: 200 records delivered"
    else
        bad "$label: $out"
    fi
    if why=$(count_values "$topic" 200 "$label"); then
        ok "$label: independent consumer reads the 200 values and headers back"
    else
        bad "$label: $why"
    fi
}

# ---- C with pkg-config, shared
cd "$work"
cp "$REPO/tests/install/app.c" .
if cc -std=c11 -Wall -Wextra -Werror -pedantic app.c $(pkg-config --cflags --libs kp) \
    -Wl,-rpath,"$(pkg-config --variable=libdir kp)" -o app-pkgconfig 2>"$work/cc.log"; then
    ok "cc app.c \$(pkg-config --cflags --libs kp)"
else
    bad "pkg-config build: $(cat "$work/cc.log")"
fi
needed=$(readelf -d app-pkgconfig 2>/dev/null | sed -n 's/.*Shared library: \[\(libkp[^]]*\)\]/\1/p')
[ "$needed" = "$SONAME" ] && ok "app-pkgconfig needs $SONAME (the soname, not libkp.so)" || bad "app-pkgconfig NEEDED: '$needed'"
resolved=$(ldd app-pkgconfig | sed -n 's/.*libkp[^ ]* => \([^ ]*\).*/\1/p')
[ "$resolved" = "$lib/$SONAME" ] && ok "app-pkgconfig loads $resolved" || bad "app-pkgconfig loads '$resolved'"

# ---- C, static link with pkg-config --static (-l:libkp.a picks the archive next to libkp.so)
if cc -std=c11 -Wall -Wextra -Werror -pedantic app.c $(pkg-config --cflags kp) \
    $(pkg-config --static --libs kp | sed 's/-lkp\b/-l:libkp.a/') -o app-static 2>"$work/cc.log"; then
    ok "static link with \$(pkg-config --static --libs kp)"
else
    bad "static build: $(cat "$work/cc.log")"
fi
if readelf -d app-static 2>/dev/null | grep -q 'NEEDED.*libkp'; then
    bad "app-static still needs libkp.so"
else
    ok "app-static needs no libkp.so (libkp.a linked in)"
fi

# ---- CMake: find_package(kp)
cmake_ok=0
if cmake -S "$REPO/tests/install/cmake" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
        -DKP_EXAMPLE_CPP="$REPO/examples-cpp/producer.cpp" >"$work/cmake.log" 2>&1 \
    && cmake --build "$work/cmake-build" -j 2 >>"$work/cmake.log" 2>&1; then
    ok "CMake project with find_package(kp 0.1) builds (kp::kp, kp::kp_static, C++ example)"
    cmake_ok=1
    grep -q "kp $VERSION from $prefix/lib/cmake/kp" "$work/cmake.log" && ok "find_package found kp $VERSION in the prefix" \
        || bad "find_package: $(grep 'kp ' "$work/cmake.log" | head -2)"
else
    bad "CMake build: $(tail -15 "$work/cmake.log")"
fi
if [ $cmake_ok = 1 ]; then
    needed=$(readelf -d cmake-build/app_shared | sed -n 's/.*Shared library: \[\(libkp[^]]*\)\]/\1/p')
    [ "$needed" = "$SONAME" ] && ok "CMake kp::kp links the shared library ($needed)" || bad "kp::kp NEEDED '$needed'"
    readelf -d cmake-build/app_static | grep -q 'NEEDED.*libkp' && bad "kp::kp_static needs libkp.so" \
        || ok "CMake kp::kp_static links libkp.a"
fi
for ask in "0.$((MINOR + 1))" "$((MAJOR + 1)).0"; do
    out=$(cmake -S "$REPO/tests/install/version" -B "$work/version-$ask" -DCMAKE_PREFIX_PATH="$prefix" -DKP_ASK="$ask" 2>&1)
    grep -q "kp-version-check: not found" <<<"$out" && ok "find_package(kp $ask) refuses kp $VERSION (ABI policy)" \
        || bad "find_package(kp $ask): $(grep kp-version-check <<<"$out")"
done
cd "$REPO"

# ---- run them against the cluster
python3 tests/verify/create_topics.py "$KP_BOOTSTRAP" "$RF" \
    kp-install-{pkgconfig,static,cmake-shared,cmake-static,cpp}-$$:3 || bad "creating the test topics"
run_app "$work/app-pkgconfig" pkgconfig
run_app "$work/app-static" static
if [ $cmake_ok = 1 ]; then
    run_app "$work/cmake-build/app_shared" cmake-shared
    run_app "$work/cmake-build/app_static" cmake-static
    check_cpp_example "$work/cmake-build/producer_cpp" "kp-install-cpp-$$" 50 "CMake-built C++ example"
fi

# ---- uninstall leaves nothing behind
if make -s uninstall PREFIX="$prefix" >"$work/uninstall.log" 2>&1; then
    left=$(find "$prefix" \( -type f -o -type l \) | sed "s|$prefix/||")
    [ -z "$left" ] && ok "make uninstall removes every installed file" || bad "left after uninstall: $left"
else
    bad "make uninstall: $(cat "$work/uninstall.log")"
fi

# ---- DESTDIR staging: files land under DESTDIR, paths inside name the final PREFIX
stage=$work/stage
if make -s install PREFIX=/opt/kp DESTDIR="$stage" >"$work/install2.log" 2>&1 \
    && [ -f "$stage/opt/kp/lib/libkp.so.$VERSION" ] && [ -f "$stage/opt/kp/lib/cmake/kp/kpConfig.cmake" ]; then
    ok "make install PREFIX=/opt/kp DESTDIR=... stages under DESTDIR"
else
    bad "DESTDIR install: $(tail -3 "$work/install2.log")"
fi
grep -q '^prefix=/opt/kp$' "$stage/opt/kp/lib/pkgconfig/kp.pc" 2>/dev/null && ! grep -q "$stage" "$stage/opt/kp/lib/pkgconfig/kp.pc" \
    && ok "kp.pc names the final prefix /opt/kp, not the staging directory" || bad "kp.pc: $(head -3 "$stage/opt/kp/lib/pkgconfig/kp.pc" 2>&1)"
make -s uninstall PREFIX=/opt/kp DESTDIR="$stage" >/dev/null 2>&1
left=$(find "$stage" \( -type f -o -type l \))
[ -z "$left" ] && ok "make uninstall with DESTDIR removes the staged files" || bad "left in stage: $left"

# ---- a multiarch libdir, and the CMake package found where the tree was moved to
arch=$(cc -print-multiarch 2>/dev/null)
multi=lib${arch:+/$arch}
make -s install PREFIX=/usr libdir=/usr/$multi DESTDIR="$stage" >"$work/install3.log" 2>&1 \
    || bad "install with libdir=/usr/$multi: $(tail -3 "$work/install3.log")"
out=$(cmake -S "$REPO/tests/install/version" -B "$work/version-moved" -DCMAKE_PREFIX_PATH="$stage/usr" -DKP_ASK="$MAJOR.$MINOR" 2>&1)
grep -q "kp-version-check: found $VERSION at $stage/usr/$multi/libkp.so.$VERSION" <<<"$out" \
    && ok "libdir=/usr/$multi staged under DESTDIR: find_package(kp $MAJOR.$MINOR) resolves the moved tree (relocatable package)" \
    || bad "moved tree: $(grep kp-version-check <<<"$out")"

summary "install tests"
