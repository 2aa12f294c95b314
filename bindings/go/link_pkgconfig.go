//go:build !kp_repo && !kp_static

package kp

// Default build: against an installed copy of kp found with pkg-config
// (`make install` writes kp.pc; set PKG_CONFIG_PATH for a custom prefix).

// #cgo pkg-config: kp
import "C"
