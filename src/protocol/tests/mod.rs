//! Tests of the protocol layer (run with `cargo test --lib protocol`).

mod batch_tests;
mod broker_side;
mod compression_tests;
mod fuzz_seeds;
mod oracle_batches;
mod oracle_messages;
mod robustness;
mod wire_tests;
