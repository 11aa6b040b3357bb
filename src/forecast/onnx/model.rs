//! [`OnnxModel`]: a forecaster read from an `.onnx` file that follows the augur contract,
//! run through ONNX Runtime in batches and reloaded when the file changes.

use std::io::Read as _;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ort::session::Session;
use ort::value::{Tensor, TensorRef};

use super::contract::{self, Contract};
use super::runtime;
use crate::forecast::gaps::{
    RECENT_BUCKETS, check_recent_gap, check_seasonal_gap, seasonal_ranges,
};
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

/// A loaded file: its session, what its metadata declares, and the `values` buffer reused
/// from batch to batch (`rows × lookback` float32; with `augur.reads` only the columns
/// read are rewritten, so a week-long lookback does not cost a week of copying).
struct Loaded {
    session: Session,
    contract: Contract,
    has_phase: bool,
    buffer: Vec<f32>,
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
    let bytes = read_file(path).map_err(|why| format!("{shown}: {why}"))?;
    let env = runtime::environment().map_err(|e| format!("{shown}: {e}"))?;
    let session = runtime::open_session(env, &bytes)
        .map_err(|why| format!("{shown}: ONNX Runtime cannot load it: {why}"))?;
    let metadata = session
        .metadata()
        .map_err(|e| format!("{shown}: cannot read its metadata: {e}"))?;
    // ONNX Runtime answers "no such key" for a value that is not UTF-8 too: tell them apart
    // so that such a file is not said to lack the key.
    let keys = metadata.custom_keys().unwrap_or_default();
    if let Some(key) = contract::KEYS
        .iter()
        .find(|&&key| metadata.custom(key).is_none() && keys.iter().any(|k| k == key))
    {
        return Err(format!("{shown}: metadata `{key}` is not valid UTF-8"));
    }
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
        buffer: Vec::new(),
    })
}

/// The largest file that can be an ONNX model: protobuf messages (and ONNX Runtime's
/// reader) stop at 2 GiB; bigger models keep their weights in external data files.
const MAX_FILE_BYTES: u64 = i32::MAX as u64 + 1;

/// Reads a model file, refusing without reading anything that is not a regular file (a
/// named pipe would block until a writer appears, `/dev/zero` would never end) or is too
/// large to be a model (reading it would only take memory).
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let regular = |meta: &std::fs::Metadata| {
        let kind = meta.file_type();
        if kind.is_file() {
            return Ok(());
        }
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a named pipe"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a file"
        };
        Err(format!("not a regular file ({what})"))
    };
    let too_large = |len: u64| format!("{len} bytes, more than an ONNX file can hold (2 GiB)");
    // Checked before opening: opening a named pipe blocks.
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    regular(&meta)?;
    if meta.len() >= MAX_FILE_BYTES {
        return Err(too_large(meta.len()));
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // Again on what was opened, in case the path was replaced in between.
    let meta = file.metadata().map_err(|e| e.to_string())?;
    regular(&meta)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_FILE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 >= MAX_FILE_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
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

    /// The contract's lookback: the engine then copies only that tail of each history into
    /// the batch instead of the whole history. It checks the file for a change first, so the
    /// [`Fitted::predict_batch`] that follows uses the same version; only a change landing
    /// between the two calls (with the check interval elapsed) answers that batch `TooShort`
    /// (served live for one step), never a wrong forecast.
    fn lookback(&self) -> Option<usize> {
        Some(self.shared.current().loaded.contract.lookback)
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
        let all = [(0, lookback - 1)];
        let ranges: &[(usize, usize)] = contract.reads.as_deref().unwrap_or(&all);
        // The built-in `linear` model's outage rules, on the lags this model reads: no
        // forecast while more than a tenth of the last 60 buckets are missing (for a model
        // reading at least that many; a shorter one forward-fills what it reads, and the
        // twin serves live on a gap at the origin or within the horizon), nor while a run
        // of seasonal lags falls in a gap (the built-in model bridges that with a variant
        // without them; an export has none, so the live value is served).
        let recent = if lookback >= RECENT_BUCKETS {
            RECENT_BUCKETS
        } else {
            0
        };
        let seasonal = seasonal_ranges(ranges);
        let mut results: Vec<Result<Vec<f64>, ModelError>> = Vec::with_capacity(histories.len());
        // Histories that can be forecast, in batch-row order.
        let mut rows: Vec<usize> = Vec::with_capacity(histories.len());
        for (index, history) in histories.iter().enumerate() {
            if history.step != contract.step_seconds {
                results.push(Err(ModelError::StepMismatch {
                    expected: contract.step_seconds,
                    have: history.step,
                }));
            } else if history.len() < lookback {
                results.push(Err(ModelError::TooShort {
                    needed: lookback,
                    have: history.len(),
                }));
            } else if let Err(gap) = check_recent_gap(history, recent)
                .and_then(|()| check_seasonal_gap(history, &seasonal))
            {
                results.push(Err(gap));
            } else {
                rows.push(index);
                results.push(Ok(Vec::new()));
            }
        }
        let ranges = ranges.to_vec();
        let buffer = &mut loaded.buffer;
        if buffer.len() < rows.len() * lookback {
            buffer.resize(rows.len() * lookback, 0.0);
        }
        let mut phases: Vec<f32> = Vec::with_capacity(rows.len() * 2);
        for (row, &index) in rows.iter().enumerate() {
            let history = histories[index];
            let cells = &mut buffer[row * lookback..(row + 1) * lookback];
            if let Err(e) = fill_row(history, &ranges, cells) {
                // The row still runs (its cells hold old values); its forecast is dropped.
                results[index] = Err(e);
            }
            let phase = History::phase(history.start + (history.len() as i64 - 1) * history.step);
            phases.extend([phase.day as f32, phase.week as f32]);
        }
        if rows.is_empty() {
            return results;
        }
        match run(loaded, rows.len(), phases) {
            Ok(forecast) => {
                for (row, &index) in rows.iter().enumerate() {
                    if results[index].is_err() {
                        continue;
                    }
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
                    if results[index].is_ok() {
                        results[index] = Err(error.clone());
                    }
                }
            }
        }
        results
    }
}

/// Writes the lags `ranges` of `history` into `cells` (one row of `values`: oldest first,
/// the last cell the origin), forward-filled exactly as [`History::forward_filled`] fills
/// them, reading only the buckets needed. `history` holds at least `cells.len()` buckets.
fn fill_row(
    history: &History,
    ranges: &[(usize, usize)],
    cells: &mut [f32],
) -> Result<(), ModelError> {
    let values = &history.values;
    let len = values.len();
    let skipped = len - cells.len();
    for &(from, to) in ranges {
        let (oldest, newest) = (len - 1 - to, len - 1 - from);
        // The last present value before the range, else (everything before is missing)
        // the first present value at all, as forward_filled seeds leading gaps.
        let seed = values[..oldest]
            .iter()
            .rev()
            .chain(values[oldest..].iter())
            .copied()
            .find(|v| !v.is_nan())
            .ok_or_else(|| {
                ModelError::Invalid("every bucket of the history is missing".to_owned())
            })?;
        let mut last = seed;
        for (cell, &v) in cells[oldest - skipped..=newest - skipped]
            .iter_mut()
            .zip(&values[oldest..=newest])
        {
            if !v.is_nan() {
                last = v;
            }
            *cell = last as f32;
        }
    }
    Ok(())
}

/// Runs the session on the first `rows` rows of the buffer; returns `forecast` row-major
/// `[rows, T]`.
fn run(loaded: &mut Loaded, rows: usize, phases: Vec<f32>) -> Result<Vec<f32>, String> {
    let Loaded {
        session,
        contract,
        has_phase,
        buffer,
    } = loaded;
    let lookback = contract.lookback;
    let width = contract.targets.len();
    let values = TensorRef::from_array_view(([rows, lookback], &buffer[..rows * lookback]))
        .map_err(|e| e.to_string())?;
    let outputs = if *has_phase {
        let phases = Tensor::from_array(([rows, 2], phases)).map_err(|e| e.to_string())?;
        session.run(ort::inputs![
            contract::VALUES => values,
            contract::PHASE => phases,
        ])
    } else {
        session.run(ort::inputs![contract::VALUES => values])
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
