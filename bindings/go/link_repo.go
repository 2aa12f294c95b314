//go:build kp_repo

package kp

// -tags kp_repo: against this repository's own build (include/kp.h and
// target/release/libkp.so from `make lib`), as the tests use it. The rpath
// lets test binaries find the library without LD_LIBRARY_PATH.

// #cgo CFLAGS: -I${SRCDIR}/../../include
// #cgo LDFLAGS: -L${SRCDIR}/../../target/release -lkp -Wl,-rpath,${SRCDIR}/../../target/release
import "C"
