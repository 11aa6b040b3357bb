//! `augur train` through the real binary: clean errors for a missing or broken ONNX Runtime
//! library, and models trained on a trace CSV or on a real Prometheus range query that ONNX
//! Runtime runs to the built-in `linear` model's output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use augur::forecast::{History, Model as _, Target};

use crate::support::TestPrometheus;

/// The shared NASA trace: 4,320 one-minute buckets from 1995-07-10 00:00 UTC, no gaps.
const NASA: &str = "tests/fixtures/traces/nasa_ksc_1995_07_10-13_60s.csv";

const WEEK: i64 = 7 * 86_400;

fn nasa() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(NASA)
}

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

/// Runs the real `augur train --targets=max@10,point@10 --verify --out=OUT` with `source`
/// (where the history comes from) and ONNX Runtime from the project cache; returns stdout.
fn train(source: &[String], out: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_augur"))
        .arg("train")
        .args(source)
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
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts that the ONNX model at `out`, run by ONNX Runtime, forecasts what the built-in
/// `linear` model fitted on `history` does from each of the last 300 origins of `history`.
fn assert_onnx_matches_linear(out: &Path, history: &History) {
    let targets = [Target::Max(10), Target::Point(10)];
    let onnx = augur::forecast::onnx::OnnxModel::load(out)
        .unwrap_or_else(|e| panic!("load {}: {e}", out.display()))
        .fit(history, &targets)
        .unwrap_or_else(|e| panic!("{e}"));
    let linear = augur::forecast::model::build("linear")
        .unwrap_or_else(|e| panic!("{e}"))
        .fit(history, &targets)
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

/// The check: a model written by the real `augur train` binary, run by the real ONNX
/// Runtime, forecasts what the built-in `linear` model fitted on the same history does.
#[test]
fn a_model_made_by_augur_train_matches_the_built_in_linear_model() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("nasa.onnx");
    let stdout = train(&[format!("--trace={}", nasa().display())], &out);
    assert!(
        stdout.contains(&format!("wrote {}: linear model", out.display())),
        "{stdout}"
    );
    let history = augur::forecast::trace::load_csv(&nasa()).unwrap_or_else(|e| panic!("{e}"));
    assert_onnx_matches_linear(&out, &history);
}

/// The Prometheus path of the issue: the NASA trace backfilled into a real Prometheus as a
/// gauge, moved forward by whole weeks (same time-of-day and day-of-week phase) to end
/// within the last week, and read back by `augur train --query` as a 1-minute range query.
/// The sample at `t` is augur's bucket starting at `t - step`, so each CSV row (bucket
/// start `s`, value `v`) is written at `s + 60`, and the query runs from the first bucket's
/// end to the last one's (one sample per evaluation, none left to the 5-minute lookback).
/// The history read is the CSV's to the bit: the model equals, byte for byte, the one
/// trained on the shifted CSV, and ONNX Runtime runs it to the built-in `linear` fit.
#[test]
fn a_model_trained_on_a_prometheus_range_query_matches_the_csv_fit() {
    let csv = augur::forecast::trace::load_csv(&nasa()).unwrap_or_else(|e| panic!("{e}"));
    let step = csv.step;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_else(|e| panic!("{e}"))
        .as_secs() as i64;
    let last_end = csv.start + csv.len() as i64 * step;
    let shift = (now - last_end).div_euclid(WEEK) * WEEK;
    let shifted = History::new(csv.start + shift, step, csv.values.clone());

    let mut openmetrics = String::from("# TYPE nasa_requests_per_second gauge\n");
    for (i, v) in shifted.values.iter().enumerate() {
        let end = shifted.start + (i as i64 + 1) * step;
        // `{v:?}` round-trips the f64, so Prometheus stores exactly the CSV's value.
        writeln!(openmetrics, "nasa_requests_per_second {v:?} {end}")
            .unwrap_or_else(|e| panic!("{e}"));
    }
    openmetrics.push_str("# EOF\n");
    let prometheus = TestPrometheus::start(&openmetrics);

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("p.onnx");
    let (first, last) = (shifted.start + step, last_end + shift);
    let stdout = train(
        &[
            format!("--prometheus-url={}", prometheus.url()),
            "--query=nasa_requests_per_second".to_owned(),
            format!("--start={first}"),
            format!("--end={last}"),
            "--step=1m".to_owned(),
        ],
        &out,
    );
    let rfc3339 = |t: i64| {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(t as u64))
            .to_string()
    };
    let trained_on = format!(
        "{} query nasa_requests_per_second: 4320 buckets of 60s from {} to {}",
        prometheus.url(),
        rfc3339(shifted.start),
        rfc3339(last - step)
    );
    let wrote = stdout.lines().next().unwrap_or_default();
    assert!(
        wrote.starts_with(&format!(
            "wrote {}: linear model, step 60s, ",
            out.display()
        )) && wrote.ends_with(&format!("; trained on {trained_on}")),
        "{stdout}"
    );

    // The same shifted history from a CSV, recorded with the same `augur.trained_on`.
    let trace = dir.path().join("shifted.csv");
    let mut text = String::from("timestamp,value\n");
    for (i, v) in shifted.values.iter().enumerate() {
        writeln!(text, "{},{v:?}", shifted.start + i as i64 * step)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(&trace, text).unwrap_or_else(|e| panic!("write {}: {e}", trace.display()));
    let from_csv = dir.path().join("c.onnx");
    train(
        &[
            format!("--trace={}", trace.display()),
            format!("--trained-on={trained_on}"),
        ],
        &from_csv,
    );
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    assert!(
        read(&out) == read(&from_csv),
        "the model trained on Prometheus differs from the one trained on the shifted CSV"
    );

    assert_onnx_matches_linear(&out, &shifted);
}
