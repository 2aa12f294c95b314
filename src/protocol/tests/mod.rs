//! Tests of the protocol layer (run with `cargo test --lib protocol`).

mod batch_tests;
mod broker_side;
mod compression_tests;
mod fuzz_seeds;
mod oracle_batches;
mod oracle_messages;
mod robustness;
mod wire_tests;

/// Property-test cases: `n`, or 2 under Miri (which interprets every
/// instruction; an explicit `cases` in a config overrides PROPTEST_CASES).
pub(crate) const fn cases(n: u32) -> u32 {
    if cfg!(miri) {
        2
    } else {
        n
    }
}
