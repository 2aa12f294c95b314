//! The library version, to compare with the KP_VERSION* macros of the
//! header a program was compiled with.

use std::ffi::c_char;

/// The library's version as (major << 16) | (minor << 8) | patch; compare
/// with KP_VERSION from the header to detect a mismatch.
#[no_mangle]
pub extern "C" fn kp_version() -> u32 {
    crate::VERSION_NUMBER
}

/// The library's version as a string, e.g. "0.1.0". Static string.
#[no_mangle]
pub extern "C" fn kp_version_str() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast::<c_char>()
}
