#![no_main]
// See kp::fuzzing::responses for the input layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kp::fuzzing::responses(data));
