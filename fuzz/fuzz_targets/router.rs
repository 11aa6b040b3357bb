//! libFuzzer entry of the `router` target (see `fuzz/src/harness/router.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::harness::router::run(data));
