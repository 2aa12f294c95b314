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

.PHONY: all lib header-check examples examples-asan demo test bench clean

all: lib examples

lib:
	$(CARGO) build --release
	ln -sf libkp.so $(LIBDIR)/$(SONAME)

# The committed header must equal what cbindgen generates, and compile as
# strict C99 and as C++.
header-check: lib
	git diff --exit-code -- include/kp.h || (echo "include/kp.h is stale: commit the regenerated header" >&2; exit 1)
	mkdir -p build
	printf '#include "kp.h"\nint main(void){ kp_record_t r = KP_RECORD_INIT; kp_metrics_t m = KP_METRICS_INIT; (void)r; return kp_version() == KP_VERSION && kp_producer_metrics(NULL, &m) == KP_ERR_INVALID_ARG ? 0 : 1; }\n' > build/header_c.c
	$(CC) -std=c99 $(CWARN) -Iinclude build/header_c.c -o build/header_c $(LDKP)
	./build/header_c
	printf '#include "kp.h"\nint main() { kp_record_t r = KP_RECORD_INIT; kp_metrics_t m = KP_METRICS_INIT; (void)r; return kp_version() == KP_VERSION && kp_producer_metrics(NULL, &m) == KP_ERR_INVALID_ARG ? 0 : 1; }\n' > build/header_cpp.cpp
	$(CXX) -std=c++11 $(CWARN) -Iinclude build/header_cpp.cpp -o build/header_cpp $(LDKP)
	./build/header_cpp

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
# BENCH_QUICK=1 for a ~3 minute smoke run. Results: perf/results/, BENCHMARKS.md.
bench: lib
	bash perf/run.sh

clean:
	rm -rf build
	$(CARGO) clean
