#![no_main]
// See kp::fuzzing::record_batch for the input layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kp::fuzzing::record_batch(data));
