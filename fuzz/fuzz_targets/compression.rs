#![no_main]
// See kp::fuzzing::compression for the input layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kp::fuzzing::compression(data));
