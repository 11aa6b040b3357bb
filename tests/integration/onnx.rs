//! `augur train --verify` with a missing or broken ONNX Runtime library: the real binary
//! exits with a clean error naming the library, before fitting anything, and never panics.

use std::path::Path;
use std::process::Command;

/// Runs `augur train --verify` on a one-line trace with `library`; returns (status, stderr).
fn train_with_library(dir: &Path, library: &Path) -> (Option<i32>, String) {
    let trace = dir.join("trace.csv");
    std::fs::write(&trace, "timestamp,value\n0,1\n60,2\n")
        .unwrap_or_else(|e| panic!("write {}: {e}", trace.display()));
    let output = Command::new(env!("CARGO_BIN_EXE_augur"))
        .arg("train")
        .arg(format!("--trace={}", trace.display()))
        .args(["--targets=max@10", "--verify"])
        .arg(format!("--out={}", dir.join("m.onnx").display()))
        .arg(format!("--onnxruntime-library={}", library.display()))
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap_or_else(|e| panic!("run augur: {e}"));
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_missing_onnxruntime_library_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let library = dir.path().join("absent/libonnxruntime.so");
    let (status, stderr) = train_with_library(dir.path(), &library);
    assert_eq!(
        (status, stderr),
        (
            Some(1),
            format!(
                "augur: ONNX Runtime library {} does not exist (given by --onnxruntime-library or ORT_DYLIB_PATH); `.ci/onnxruntime` fetches libonnxruntime.so.1.31.1 from PyPI's onnxruntime wheel\n",
                library.display()
            )
        )
    );
    assert!(!dir.path().join("m.onnx").exists());
}

#[test]
fn a_file_that_is_not_onnxruntime_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let library = dir.path().join("libonnxruntime.so");
    std::fs::write(&library, "not a shared library").unwrap_or_else(|e| panic!("{e}"));
    let (status, stderr) = train_with_library(dir.path(), &library);
    let expected = format!(
        "augur: cannot load ONNX Runtime from {path}: failed to load from `{path}`: ",
        path = library.display()
    );
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
