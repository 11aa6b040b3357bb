//! libFuzzer entry of the `onnx` target (see `fuzz/src/harness/onnx.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| augur_fuzz::harness::onnx::run(data));
