//! Loads the ONNX Runtime shared library through `ort` (once per process, only when an ONNX
//! model is used) and opens sessions on model files.
//!
//! The library is found at `--onnxruntime-library` / `ORT_DYLIB_PATH`, else next to the
//! augur executable, else in the project cache `.ci/onnxruntime` fills
//! (`.cache/onnxruntime/`, for development and tests). A missing or unloadable library is a
//! [`RuntimeError`], never a panic.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use clap::Args;
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, ValueType};

use super::contract::Signature;

/// File name of the library in PyPI's `onnxruntime` wheel that augur is tested with.
pub const LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// Flags choosing the ONNX Runtime library.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct RuntimeArgs {
    /// ONNX Runtime shared library (libonnxruntime.so.1.31.1 from PyPI's onnxruntime 1.31.1
    /// wheel). Only loaded when an ONNX model is used.
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub onnxruntime_library: Option<PathBuf>,
}

/// Why ONNX Runtime is not available.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// The library given explicitly does not exist.
    #[error(
        "ONNX Runtime library {path} does not exist (given by {given_by}); `.ci/onnxruntime` fetches {LIBRARY_FILE} from PyPI's onnxruntime wheel"
    )]
    Missing { path: PathBuf, given_by: String },
    /// No library given and none in the default places.
    #[error(
        "ONNX Runtime library not found: pass --onnxruntime-library PATH or set ORT_DYLIB_PATH (looked in {looked}); `.ci/onnxruntime` fetches {LIBRARY_FILE} from PyPI's onnxruntime wheel"
    )]
    NotFound { looked: String },
    /// The file exists but is not a usable ONNX Runtime.
    #[error("cannot load ONNX Runtime from {path}: {why}")]
    Load { path: PathBuf, why: String },
}

/// The library chosen by flags, used at the first load.
static CHOSEN: Mutex<Option<PathBuf>> = Mutex::new(None);
/// Serialises the first load.
static LOADING: Mutex<()> = Mutex::new(());
/// The loaded library and its environment.
static LOADED: OnceLock<(PathBuf, Environment)> = OnceLock::new();

/// Records the library the flags name; takes effect at the first load (a process loads
/// ONNX Runtime at most once).
pub fn choose_library(path: Option<PathBuf>) {
    *CHOSEN.lock().unwrap_or_else(PoisonError::into_inner) = path;
}

/// Path of the loaded library, if one is loaded.
pub fn loaded_library() -> Option<&'static Path> {
    LOADED.get().map(|(path, _)| path.as_path())
}

/// Where the library would be loaded from: `explicit` (flag or `ORT_DYLIB_PATH`), else
/// `ORT_DYLIB_PATH`, else the executable's directory, else the project cache.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, RuntimeError> {
    if let Some(path) = explicit {
        return existing(path, "--onnxruntime-library or ORT_DYLIB_PATH");
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return existing(Path::new(&path), "ORT_DYLIB_PATH");
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join(LIBRARY_FILE));
    }
    candidates.push(project_cache());
    match candidates.iter().find(|c| c.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(RuntimeError::NotFound {
            looked: candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Where `.ci/onnxruntime` puts the library in this source tree.
pub fn project_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".cache/onnxruntime")
        .join(LIBRARY_FILE)
}

fn existing(path: &Path, given_by: &str) -> Result<PathBuf, RuntimeError> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(RuntimeError::Missing {
            path: path.to_path_buf(),
            given_by: given_by.to_owned(),
        })
    }
}

/// The ONNX Runtime environment, loading the library on first use from the chosen path
/// (see [`choose_library`]) or the default places.
pub fn environment() -> Result<&'static Environment, RuntimeError> {
    if let Some((_, env)) = LOADED.get() {
        return Ok(env);
    }
    let chosen = CHOSEN
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    load(chosen.as_deref())
}

/// Loads ONNX Runtime from `explicit` or the default places (see [`locate`]). Once a
/// library is loaded, later calls return its environment whatever they ask for.
pub fn load(explicit: Option<&Path>) -> Result<&'static Environment, RuntimeError> {
    let _guard = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, env)) = LOADED.get() {
        return Ok(env);
    }
    let path = locate(explicit)?;
    let load_error = |why: String| RuntimeError::Load {
        path: path.clone(),
        why,
    };
    let builder = ort::init_from(&path).map_err(|e| load_error(e.to_string()))?;
    let env = builder
        .with_name("augur")
        .with_telemetry(false)
        .build()
        .map_err(|e| load_error(e.to_string()))?;
    tracing::info!(library = %path.display(), "loaded ONNX Runtime");
    let (_, env) = LOADED.get_or_init(|| (path, env));
    Ok(env)
}

/// Opens a session on `bytes` (an `.onnx` file's contents): one intra-op thread (augur's
/// models are small; batching gives the speed), all graph optimisations.
pub(crate) fn open_session(env: &Environment, bytes: &[u8]) -> Result<Session, String> {
    fn build(env: &Environment, bytes: &[u8]) -> ort::Result<Session> {
        Session::builder(env)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .with_intra_threads(1)?
            .with_inter_threads(1)?
            .commit_from_memory(bytes)
    }
    build(env, bytes).map_err(|e| e.to_string())
}

/// The inputs and outputs of a session as the contract check reads them.
pub(crate) fn signatures(session: &Session) -> (Vec<Signature>, Vec<Signature>) {
    let convert = |outlets: &[ort::value::Outlet]| {
        outlets
            .iter()
            .map(|o| {
                let (elem, dims) = match o.dtype() {
                    ValueType::Tensor { ty, shape, .. } => (
                        Some(match ty {
                            TensorElementType::Float32 => "float32".to_owned(),
                            TensorElementType::Float64 => "float64".to_owned(),
                            other => other.to_string(),
                        }),
                        shape.iter().map(|&d| if d < 0 { -1 } else { d }).collect(),
                    ),
                    _ => (None, Vec::new()),
                };
                Signature {
                    name: o.name().to_owned(),
                    elem,
                    dims,
                }
            })
            .collect()
    };
    (convert(session.inputs()), convert(session.outputs()))
}

/// For tests: ONNX Runtime from the project cache, fetched with `.ci/onnxruntime` if it is
/// not there yet. Panics (failing the test) with what to run when that is impossible.
#[cfg(test)]
pub(crate) fn test_environment() -> &'static Environment {
    static FETCH: Mutex<()> = Mutex::new(());
    let library = project_cache();
    {
        let _guard = FETCH.lock().unwrap_or_else(PoisonError::into_inner);
        if !library.is_file() {
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/onnxruntime");
            let fetched = std::process::Command::new("bash")
                .arg(&script)
                .stdout(std::process::Stdio::null())
                .status();
            if !matches!(fetched, Ok(status) if status.success()) {
                panic!(
                    "ONNX Runtime is not in {} and {} could not fetch it ({fetched:?}); run `bash .ci/setup`",
                    library.display(),
                    script.display()
                );
            }
        }
    }
    load(Some(&library)).unwrap_or_else(|e| panic!("{e}; run `bash .ci/setup`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_missing_library_is_a_clean_error() {
        let err = locate(Some(Path::new("/nonexistent/libonnxruntime.so")))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "ONNX Runtime library /nonexistent/libonnxruntime.so does not exist (given by --onnxruntime-library or ORT_DYLIB_PATH); `.ci/onnxruntime` fetches libonnxruntime.so.1.31.1 from PyPI's onnxruntime wheel"
            )
        );
    }
}
