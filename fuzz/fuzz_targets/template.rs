//! libFuzzer entry of the `template` target (see `fuzz/src/harness/template.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::harness::template::run(data));
