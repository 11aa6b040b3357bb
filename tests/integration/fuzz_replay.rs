//! The fuzz corpora replayed on stable: every input a campaign kept in `fuzz/corpus/<target>/`
//! and every crash it found (`fuzz/regressions/<target>/`) runs through the same harness as
//! under libFuzzer (`fuzz/src/harness/`), so a fix that regresses fails here, with the file's
//! name.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

#[allow(unreachable_pub, dead_code)]
#[path = "../../fuzz/src/harness/mod.rs"]
mod harness;

/// The files of `fuzz/<kind>/<target>/`, sorted (none when the directory does not exist).
fn inputs(kind: &str, target: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    files.sort();
    files
}

/// Runs every input of the target's corpus and its regressions (crashes found, kept apart
/// so that corpus minimization never drops them); names each that panics.
fn replay(target: &str, run: fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(
        corpus.len() >= 10,
        "fuzz/corpus/{target}: only {} inputs",
        corpus.len()
    );
    let mut failed = Vec::new();
    for file in corpus.iter().chain(inputs("regressions", target).iter()) {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: inputs that fail:\n{}",
        failed.join("\n")
    );
}

#[test]
fn config_corpus() {
    replay("config", harness::config::run);
}

#[test]
fn selector_corpus() {
    replay("selector", harness::selector::run);
}

#[test]
fn template_corpus() {
    replay("template", harness::template::run);
}

#[test]
fn router_corpus() {
    replay("router", harness::router::run);
}

#[test]
fn prometheus_corpus() {
    replay("prometheus", harness::prometheus::run);
}

#[test]
fn onnx_corpus() {
    replay("onnx", harness::onnx::run);
}
