# kp - build, check and test. `make demo` and `make test` are the two
# commands the README promises.
CARGO   ?= cargo
CC      ?= gcc
CXX     ?= g++
LIBDIR  := $(CURDIR)/target/release
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
MINOR   := $(word 2,$(subst ., ,$(VERSION)))
SONAME  := $(if $(filter 0,$(MAJOR)),libkp.so.0.$(MINOR),libkp.so.$(MAJOR))
CWARN   := -Wall -Wextra -Werror -pedantic
LDKP    := -L$(LIBDIR) -lkp -Wl,-rpath,$(LIBDIR) -lpthread -ldl -lm
EXAMPLES := producer console_producer transactional
CTESTS   := fork log

.PHONY: all lib header-check header-diff c-tests examples examples-asan examples-cpp demo test bench clean install uninstall fuzz-smoke

all: lib examples

lib:
	$(CARGO) build --release
	ln -sf libkp.so $(LIBDIR)/$(SONAME)

# The committed header must equal what cbindgen generates, and compile as
# strict C99 and as C++11 (included twice) with the library agreeing with
# it: tests/header/.
header-check: lib
	git diff --exit-code -- include/kp.h || (echo "include/kp.h is stale: commit the regenerated header" >&2; exit 1)
	mkdir -p build
	$(CC) -std=c99 $(CWARN) -Iinclude tests/header/header_test.c -o build/header_test_c $(LDKP)
	./build/header_test_c
	$(CXX) -std=c++11 $(CWARN) -Iinclude tests/header/header_test.cpp -o build/header_test_cpp $(LDKP)
	./build/header_test_cpp

# Declarations of include/kp.h against those at git revision BASE (default
# main): empty output means the two differ only in order and comments.
BASE ?= main
header-diff:
	mkdir -p build
	git show $(BASE):include/kp.h > build/kp.h.base
	bash tests/header/declarations.sh build/kp.h.base > build/kp.h.base.decl
	bash tests/header/declarations.sh include/kp.h > build/kp.h.decl
	diff build/kp.h.base.decl build/kp.h.decl

build/%: examples-c/%.c include/kp.h | lib
	mkdir -p build
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(CWARN) -Iinclude $< -o $@ $(LDKP)

build/asan/%: examples-c/%.c include/kp.h | lib
	mkdir -p build/asan
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all $(CWARN) -Iinclude $< -o $@ $(LDKP)

build/ctests/%: tests/c/%.c include/kp.h | lib
	mkdir -p build/ctests
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(CWARN) -Iinclude $< -o $@ $(LDKP)

build/ctests/asan/%: tests/c/%.c include/kp.h | lib
	mkdir -p build/ctests/asan
	$(CC) -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all $(CWARN) -Iinclude $< -o $@ $(LDKP)

examples: lib $(addprefix build/,$(EXAMPLES))
examples-asan: lib $(addprefix build/asan/,$(EXAMPLES))
# C tests of the ABI (tests/c/), plain and sanitized; tests/c/run.sh runs them.
c-tests: lib $(addprefix build/ctests/,$(CTESTS)) $(addprefix build/ctests/asan/,$(CTESTS))

# C++ API (include/kp.hpp): the example and the tests, strict warnings,
# plain and under AddressSanitizer/UBSan (tests/cpp/run.sh runs them).
CXXWARN := $(CWARN) -Wshadow -Wconversion -Wsign-conversion
build/cpp/%: examples-cpp/%.cpp include/kp.hpp include/kp.h | lib
	mkdir -p build/cpp
	$(CXX) -std=c++17 -O2 -g $(CXXWARN) -Iinclude $< -o $@ $(LDKP)
build/cpp-asan/%: examples-cpp/%.cpp include/kp.hpp include/kp.h | lib
	mkdir -p build/cpp-asan
	$(CXX) -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all $(CXXWARN) -Iinclude $< -o $@ $(LDKP)
examples-cpp: lib build/cpp/producer build/cpp-asan/producer

# A few seconds of libFuzzer per fuzz target (nightly + cargo-fuzz; skips
# otherwise). The long campaigns: fuzz/run.sh campaign, docs/FUZZING.md.
fuzz-smoke:
	bash fuzz/run.sh smoke 5

demo: lib examples
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# Side-by-side benchmarks (kp, librdkafka, franz-go, Java); ~15 minutes.
# BENCH_QUICK=1 for a ~3 minute smoke run. Results: perf/results/, BENCHMARKS.md.
bench: lib
	bash perf/run.sh

# ---- install / uninstall (README "Install") ----
# GNU-style variables: make install PREFIX=/opt/kp DESTDIR=/tmp/stage
# libdir=... includedir=... Installs libkp.so.$(VERSION) with its soname
# link ($(SONAME)) and dev link (libkp.so), libkp.a, kp.h, kp.hpp, kp.pc
# and the CMake package (find_package(kp): kp::kp, kp::kp_shared, kp::kp_static).
PREFIX       ?= /usr/local
DESTDIR      ?=
libdir       ?= $(PREFIX)/lib
includedir   ?= $(PREFIX)/include
pkgconfigdir ?= $(libdir)/pkgconfig
cmakedir     ?= $(libdir)/cmake/kp
REALNAME     := libkp.so.$(VERSION)
# System libraries a static link of libkp.a needs: what rustc links for a
# Rust staticlib (kp's dependencies add none: zstd's C code is inside
# libkp.a). tests/install/run.sh links statically with exactly this list.
STATIC_LIBS   = $(shell d=$$(mktemp -d) && echo | rustc --crate-type staticlib --crate-name kp_native_libs --print native-static-libs --out-dir $$d - 2>&1 | sed -n 's/.*native-static-libs: //p'; rm -rf $$d)
static_libs   = $(if $(kp_static_libs),,$(eval kp_static_libs := $(STATIC_LIBS)))$(kp_static_libs)
cmake_static_libs = $(subst $(space),;,$(patsubst -l%,%,$(filter-out -lc,$(static_libs))))
empty        :=
space        := $(empty) $(empty)
relpath       = $(shell realpath -m --relative-to='$(1)' '$(2)')
SUBST         = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(libdir)|g' -e 's|@INCLUDEDIR@|$(includedir)|g' \
                    -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' -e 's|@MINOR@|$(MINOR)|g' \
                    -e 's|@SONAME@|$(SONAME)|g' -e 's|@REALNAME@|$(REALNAME)|g' \
                    -e 's|@STATIC_LIBS@|$(static_libs)|g' -e 's|@CMAKE_STATIC_LIBS@|$(cmake_static_libs)|g' \
                    -e 's|@CMAKEDIR_TO_PREFIX@|$(call relpath,$(cmakedir),$(PREFIX))|g' \
                    -e 's|@LIBDIR_REL@|$(call relpath,$(PREFIX),$(libdir))|g' \
                    -e 's|@INCLUDEDIR_REL@|$(call relpath,$(PREFIX),$(includedir))|g' \
                    -e 's|@SIZEOF_VOID_P@|$(shell getconf LONG_BIT | sed 's/64/8/;s/32/4/')|g'

install: lib
	@test -n "$(PREFIX)" || { echo "install: PREFIX is empty" >&2; exit 1; }
	@test -n "$(static_libs)" || { echo "install: could not learn the static link libraries from rustc" >&2; exit 1; }
	@readelf -d $(LIBDIR)/libkp.so | grep -q 'SONAME.*\[$(SONAME)\]' || { echo "install: $(LIBDIR)/libkp.so lacks SONAME $(SONAME)" >&2; exit 1; }
	install -d '$(DESTDIR)$(libdir)' '$(DESTDIR)$(includedir)' '$(DESTDIR)$(pkgconfigdir)' '$(DESTDIR)$(cmakedir)'
	install -m 755 $(LIBDIR)/libkp.so '$(DESTDIR)$(libdir)/$(REALNAME)'
	ln -sfn $(REALNAME) '$(DESTDIR)$(libdir)/$(SONAME)'
	ln -sfn $(SONAME) '$(DESTDIR)$(libdir)/libkp.so'
	install -m 644 $(LIBDIR)/libkp.a '$(DESTDIR)$(libdir)/libkp.a'
	install -m 644 include/kp.h include/kp.hpp '$(DESTDIR)$(includedir)/'
	$(SUBST) packaging/kp.pc.in > '$(DESTDIR)$(pkgconfigdir)/kp.pc'
	$(SUBST) packaging/kpConfig.cmake.in > '$(DESTDIR)$(cmakedir)/kpConfig.cmake'
	$(SUBST) packaging/kpConfigVersion.cmake.in > '$(DESTDIR)$(cmakedir)/kpConfigVersion.cmake'
	chmod 644 '$(DESTDIR)$(pkgconfigdir)/kp.pc' '$(DESTDIR)$(cmakedir)/kpConfig.cmake' '$(DESTDIR)$(cmakedir)/kpConfigVersion.cmake'

uninstall:
	rm -f '$(DESTDIR)$(libdir)/$(REALNAME)' '$(DESTDIR)$(libdir)/$(SONAME)' '$(DESTDIR)$(libdir)/libkp.so' \
	      '$(DESTDIR)$(libdir)/libkp.a' '$(DESTDIR)$(includedir)/kp.h' '$(DESTDIR)$(includedir)/kp.hpp' \
	      '$(DESTDIR)$(pkgconfigdir)/kp.pc' '$(DESTDIR)$(cmakedir)/kpConfig.cmake' '$(DESTDIR)$(cmakedir)/kpConfigVersion.cmake'
	-rmdir '$(DESTDIR)$(cmakedir)' 2>/dev/null || true

clean:
	rm -rf build
	$(CARGO) clean
