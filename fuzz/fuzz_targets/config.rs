#![no_main]
// See kp::fuzzing::config for the input layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kp::fuzzing::config(data));
