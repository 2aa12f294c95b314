#![no_main]
// See kp::fuzzing::sasl for the input layout.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kp::fuzzing::sasl(data));
