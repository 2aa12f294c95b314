//! Link anchor only: pulls rdkafka-sys (and with it the static librdkafka,
//! zstd and zlib archives) into this crate's staticlib output.
extern crate rdkafka_sys;

/// librdkafka's version string, so the archive has one symbol of ours.
#[no_mangle]
pub extern "C" fn rdkafka_bundle_version() -> *const std::os::raw::c_char {
    unsafe { rdkafka_sys::bindings::rd_kafka_version_str() }
}
