//! libFuzzer entry of the `config` target (see `fuzz/src/harness/config.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::harness::config::run(data));
