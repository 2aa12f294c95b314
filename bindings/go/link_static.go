//go:build kp_static && !kp_repo

package kp

// -tags kp_static: links libkp.a of an installed copy (found with
// pkg-config, whose --static flags add the system libraries libkp.a needs),
// so the program needs no libkp.so at run time.

// #cgo pkg-config: --static kp
// #cgo LDFLAGS: -l:libkp.a
import "C"
