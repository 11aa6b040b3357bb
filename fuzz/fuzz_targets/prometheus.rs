//! libFuzzer entry of the `prometheus` target (see `fuzz/src/harness/prometheus.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::harness::prometheus::run(data));
