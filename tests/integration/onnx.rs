//! `augur train` through the real binary: clean errors for a missing or broken ONNX Runtime
//! library, and a trained model that ONNX Runtime runs to the built-in `linear` model's output.

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

/// The check: a model written by the real `augur train` binary, run by the real ONNX
/// Runtime, forecasts what the built-in `linear` model fitted on the same history does.
#[test]
fn a_model_made_by_augur_train_matches_the_built_in_linear_model() {
    use augur::forecast::{Model as _, Target};

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let trace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/traces/nasa_ksc_1995_07_10-13_60s.csv");
    let out = dir.path().join("nasa.onnx");
    let output = Command::new(env!("CARGO_BIN_EXE_augur"))
        .arg("train")
        .arg(format!("--trace={}", trace.display()))
        .args(["--targets=max@10,point@10", "--verify"])
        .arg(format!("--out={}", out.display()))
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap_or_else(|e| panic!("run augur: {e}"));
    assert!(
        output.status.success(),
        "augur train failed (run .ci/setup to fetch ONNX Runtime): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("wrote {}: linear model", out.display())),
        "{stdout}"
    );

    let history = augur::forecast::trace::load_csv(&trace).unwrap_or_else(|e| panic!("{e}"));
    let targets = [Target::Max(10), Target::Point(10)];
    let onnx = augur::forecast::onnx::OnnxModel::load(&out)
        .unwrap_or_else(|e| panic!("load {}: {e}", out.display()))
        .fit(&history, &targets)
        .unwrap_or_else(|e| panic!("{e}"));
    let linear = augur::forecast::model::build("linear")
        .unwrap_or_else(|e| panic!("{e}"))
        .fit(&history, &targets)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut compared = 0;
    for origin in (history.len() - 300)..history.len() {
        let seen = history.prefix(origin + 1);
        let from_onnx = onnx.predict(&seen).unwrap_or_else(|e| panic!("onnx: {e}"));
        let from_rust = linear
            .predict(&seen)
            .unwrap_or_else(|e| panic!("linear: {e}"));
        assert_eq!(from_onnx.len(), 2);
        for (o, r) in from_onnx.iter().zip(&from_rust) {
            // float32 in ONNX Runtime against f64 in Rust.
            assert!(
                (o - r).abs() <= 1e-4 * r.abs().max(1.0),
                "origin {origin}: onnx {o} vs linear {r}"
            );
        }
        compared += 1;
    }
    assert_eq!(compared, 300);
}
