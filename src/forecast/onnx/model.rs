//! [`OnnxModel`]: a forecaster read from an `.onnx` file that follows the augur contract,
//! run through ONNX Runtime in batches and reloaded when the file changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ort::session::Session;
use ort::value::Tensor;

use super::contract::{self, Contract};
use super::runtime;
use crate::forecast::{Fitted, History, Model, ModelError, Target};

/// How often the model file is checked for changes by default.
pub const DEFAULT_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// A forecaster backed by an ONNX model file. `fit` estimates nothing (the file holds a
/// trained model); it checks that the history's step and the requested targets match the
/// model's metadata. Forecasts of many series run as one batch.
pub struct OnnxModel {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    name: String,
    check_every: Duration,
    state: Mutex<State>,
}

/// A loaded file: its session and what its metadata declares.
struct Loaded {
    session: Session,
    contract: Contract,
    has_phase: bool,
}

struct State {
    loaded: Loaded,
    /// The file as last looked at (loaded or rejected), to notice the next change.
    seen: Option<FileStamp>,
    checked: Instant,
}

/// What identifies a version of the file: modification time and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: SystemTime,
    len: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok()?,
        len: meta.len(),
    })
}

impl OnnxModel {
    /// Loads `path` (ONNX Runtime is loaded on first use, see [`runtime`]) and checks it
    /// against the contract. Errors name the file and what is wrong.
    pub fn load(path: impl AsRef<Path>) -> Result<OnnxModel, ModelError> {
        Self::load_with_check_interval(path, DEFAULT_CHECK_INTERVAL)
    }

    /// [`OnnxModel::load`], checking the file for changes at most every `check_every`.
    pub fn load_with_check_interval(
        path: impl AsRef<Path>,
        check_every: Duration,
    ) -> Result<OnnxModel, ModelError> {
        let path = path.as_ref().to_path_buf();
        let seen = stamp(&path);
        let loaded = open(&path).map_err(ModelError::Invalid)?;
        Ok(OnnxModel {
            shared: Arc::new(Shared {
                name: path.display().to_string(),
                path,
                check_every,
                state: Mutex::new(State {
                    loaded,
                    seen,
                    checked: Instant::now(),
                }),
            }),
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// What the currently loaded file declares.
    pub fn contract(&self) -> Contract {
        self.shared.lock().loaded.contract.clone()
    }
}

/// Reads, opens and checks a model file; the error names the file.
fn open(path: &Path) -> Result<Loaded, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
    let env = runtime::environment().map_err(|e| format!("{shown}: {e}"))?;
    let session = runtime::open_session(env, &bytes)
        .map_err(|why| format!("{shown}: ONNX Runtime cannot load it: {why}"))?;
    let metadata = session
        .metadata()
        .map_err(|e| format!("{shown}: cannot read its metadata: {e}"))?;
    let contract = Contract::from_metadata(|key| metadata.custom(key))
        .map_err(|why| format!("{shown}: {why}"))?;
    drop(metadata);
    let (inputs, outputs) = runtime::signatures(&session);
    contract
        .check_signature(&inputs, &outputs)
        .map_err(|why| format!("{shown}: {why}"))?;
    let has_phase = inputs.iter().any(|i| i.name == contract::PHASE);
    Ok(Loaded {
        session,
        contract,
        has_phase,
    })
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state, after reloading the file if it changed since it was last looked at (at
    /// most every `check_every`). A file that fails to load leaves the previous model in
    /// place; the reason is logged once per version of the file.
    fn current(&self) -> std::sync::MutexGuard<'_, State> {
        let mut state = self.lock();
        if state.checked.elapsed() < self.check_every {
            return state;
        }
        state.checked = Instant::now();
        let now = stamp(&self.path);
        if now == state.seen {
            return state;
        }
        state.seen = now;
        let path = self.path.display();
        if now.is_none() {
            tracing::warn!(model = %path, "model file is gone; keeping the loaded model");
            return state;
        }
        match open(&self.path) {
            Ok(loaded) => {
                tracing::info!(
                    model = %path,
                    targets = %contract::format_targets(&loaded.contract.targets),
                    lookback = loaded.contract.lookback,
                    "reloaded model file"
                );
                state.loaded = loaded;
            }
            Err(why) => {
                tracing::warn!(model = %path, "keeping the previous model: {why}");
            }
        }
        state
    }
}

impl Model for OnnxModel {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn fit(&self, history: &History, targets: &[Target]) -> Result<Box<dyn Fitted>, ModelError> {
        let state = self.shared.current();
        let contract = &state.loaded.contract;
        if history.step != contract.step_seconds {
            return Err(ModelError::StepMismatch {
                expected: contract.step_seconds,
                have: history.step,
            });
        }
        if let Some(missing) = targets.iter().find(|t| !contract.targets.contains(t)) {
            return Err(ModelError::UnsupportedTarget(*missing));
        }
        Ok(Box::new(FittedOnnx {
            shared: Arc::clone(&self.shared),
            targets: targets.to_vec(),
        }))
    }
}

/// An [`OnnxModel`] asked for some of its targets.
struct FittedOnnx {
    shared: Arc<Shared>,
    targets: Vec<Target>,
}

impl Fitted for FittedOnnx {
    fn predict(&self, history: &History) -> Result<Vec<f64>, ModelError> {
        self.predict_batch(&[history])
            .pop()
            .unwrap_or_else(|| Err(ModelError::Invalid("no forecast".to_owned())))
    }

    fn predict_batch(&self, histories: &[&History]) -> Vec<Result<Vec<f64>, ModelError>> {
        let mut state = self.shared.current();
        let loaded = &mut state.loaded;
        let contract = &loaded.contract;
        let columns: Result<Vec<usize>, ModelError> = self
            .targets
            .iter()
            .map(|t| {
                contract
                    .targets
                    .iter()
                    .position(|m| m == t)
                    .ok_or(ModelError::UnsupportedTarget(*t))
            })
            .collect();
        let columns = match columns {
            Ok(columns) => columns,
            Err(e) => return vec![Err(e); histories.len()],
        };
        let lookback = contract.lookback;
        let width = contract.targets.len();
        let mut results: Vec<Result<Vec<f64>, ModelError>> = Vec::with_capacity(histories.len());
        let mut rows = Vec::new();
        let mut values: Vec<f32> = Vec::with_capacity(histories.len() * lookback);
        let mut phases: Vec<f32> = Vec::with_capacity(histories.len() * 2);
        for (index, history) in histories.iter().enumerate() {
            let prepared = if history.step != contract.step_seconds {
                Err(ModelError::StepMismatch {
                    expected: contract.step_seconds,
                    have: history.step,
                })
            } else {
                window(history, lookback, &mut values)
            };
            match prepared {
                Ok(origin) => {
                    let phase = History::phase(origin);
                    phases.extend([phase.day as f32, phase.week as f32]);
                    rows.push(index);
                    results.push(Ok(Vec::new()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if rows.is_empty() {
            return results;
        }
        match run(loaded, rows.len(), values, phases) {
            Ok(forecast) => {
                for (row, &index) in rows.iter().enumerate() {
                    let out = &forecast[row * width..(row + 1) * width];
                    let picked: Vec<f64> = columns.iter().map(|&c| f64::from(out[c])).collect();
                    results[index] = if picked.iter().all(|v| v.is_finite()) {
                        Ok(picked.into_iter().map(|v| v.max(0.0)).collect())
                    } else {
                        Err(ModelError::Invalid(format!(
                            "{}: the model forecast a non-finite value",
                            self.shared.name
                        )))
                    };
                }
            }
            Err(why) => {
                let error = ModelError::Invalid(format!("{}: {why}", self.shared.name));
                for &index in &rows {
                    results[index] = Err(error.clone());
                }
            }
        }
        results
    }
}

/// Appends the last `lookback` values of `history`, forward-filled as
/// [`History::forward_filled`] fills them, to `out`; returns the origin's start.
fn window(history: &History, lookback: usize, out: &mut Vec<f32>) -> Result<i64, ModelError> {
    let len = history.len();
    if len < lookback {
        return Err(ModelError::TooShort {
            needed: lookback,
            have: len,
        });
    }
    let tail = &history.values[len - lookback..];
    let before = history.values[..len - lookback]
        .iter()
        .rev()
        .copied()
        .find(|v| !v.is_nan());
    let mut last = before
        .or_else(|| tail.iter().copied().find(|v| !v.is_nan()))
        .ok_or_else(|| ModelError::Invalid("every bucket of the history is missing".to_owned()))?;
    out.extend(tail.iter().map(|&v| {
        if !v.is_nan() {
            last = v;
        }
        last as f32
    }));
    history
        .origin()
        .ok_or(ModelError::TooShort { needed: 1, have: 0 })
}

/// Runs the session on `rows` prepared rows; returns `forecast` row-major `[rows, T]`.
fn run(
    loaded: &mut Loaded,
    rows: usize,
    values: Vec<f32>,
    phases: Vec<f32>,
) -> Result<Vec<f32>, String> {
    let lookback = loaded.contract.lookback;
    let width = loaded.contract.targets.len();
    let values = Tensor::from_array(([rows, lookback], values)).map_err(|e| e.to_string())?;
    let outputs = if loaded.has_phase {
        let phases = Tensor::from_array(([rows, 2], phases)).map_err(|e| e.to_string())?;
        loaded.session.run(ort::inputs![
            contract::VALUES => values,
            contract::PHASE => phases,
        ])
    } else {
        loaded.session.run(ort::inputs![contract::VALUES => values])
    }
    .map_err(|e| format!("inference failed: {e}"))?;
    let forecast = outputs
        .get(contract::FORECAST)
        .ok_or_else(|| format!("no output `{}`", contract::FORECAST))?;
    let (shape, data) = forecast
        .try_extract_tensor::<f32>()
        .map_err(|e| format!("output `{}`: {e}", contract::FORECAST))?;
    if shape.len() != 2 || shape[0] != rows as i64 || shape[1] != width as i64 {
        return Err(format!(
            "output `{}` has shape {shape}, expected [{rows}, {width}]",
            contract::FORECAST
        ));
    }
    Ok(data.to_vec())
}
