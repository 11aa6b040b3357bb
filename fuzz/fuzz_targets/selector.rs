//! libFuzzer entry of the `selector` target (see `fuzz/src/harness/selector.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::harness::selector::run(data));
