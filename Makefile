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

.PHONY: all lib header-check header-diff examples examples-asan demo test bench clean

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

examples: lib $(addprefix build/,$(EXAMPLES))
examples-asan: lib $(addprefix build/asan/,$(EXAMPLES))

demo: lib examples
	bash scripts/demo.sh

test:
	bash scripts/test.sh

# Side-by-side benchmarks (kp, librdkafka, franz-go, Java); ~15 minutes.
# BENCH_QUICK=1 for a ~3 minute smoke run. Results: bench/results/, BENCHMARKS.md.
bench: lib
	bash bench/run.sh

clean:
	rm -rf build
	$(CARGO) clean
