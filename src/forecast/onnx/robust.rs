//! Adversarial tests of reading model files: odd paths, lying metadata and odd signatures
//! must give an error naming the file (or a working model), never a panic or a hang.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::OnnxModel;
use super::contract::Contract;
use super::proto::{Attribute, Dim, FLOAT, Graph, ModelFile, Node, Tensor, TensorData, ValueInfo};
use super::runtime::test_environment;
use crate::forecast::{History, Model, Target};

/// Loads `path`; a panic fails the test with what was loaded.
fn load_no_panic(path: &Path, what: &str) -> Result<OnnxModel, String> {
    match catch_unwind(AssertUnwindSafe(|| OnnxModel::load(path))) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => panic!("loading {what} panicked"),
    }
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

fn io(name: &str, elem_type: i32, dims: Vec<Dim>) -> ValueInfo {
    ValueInfo {
        name: name.to_owned(),
        elem_type,
        dims,
    }
}

fn batch(width: i64) -> Vec<Dim> {
    vec![Dim::Symbol("N".to_owned()), Dim::Fixed(width)]
}

/// `forecast = values[:, -1:] * factor` repeated over `targets` columns, with the given
/// inputs and outputs declared and metadata from `contract`.
fn scaling_model(
    contract: &Contract,
    factor: f32,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
    extra_initializers: Vec<Tensor>,
) -> Vec<u8> {
    let lookback = contract.lookback as i64;
    let width = contract.targets.len();
    let mut initializers = vec![
        Tensor {
            name: "last".to_owned(),
            dims: vec![1],
            data: TensorData::Int64(vec![lookback - 1]),
        },
        Tensor {
            name: "factor".to_owned(),
            dims: vec![1],
            data: TensorData::Float(vec![factor]),
        },
    ];
    initializers.extend(extra_initializers);
    let node = |op: &str, inputs: &[&str], output: &str, attributes| Node {
        op_type: op.to_owned(),
        name: output.to_owned(),
        inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
        outputs: vec![output.to_owned()],
        attributes,
    };
    let copies: Vec<&str> = vec!["scaled"; width];
    ModelFile {
        ir_version: 8,
        opset: 17,
        producer: "test".to_owned(),
        graph: Graph {
            name: "scaling".to_owned(),
            nodes: vec![
                node(
                    "Gather",
                    &["values", "last"],
                    "origin",
                    vec![Attribute::Int("axis".to_owned(), 1)],
                ),
                node("Mul", &["origin", "factor"], "scaled", vec![]),
                node(
                    "Concat",
                    &copies,
                    "forecast",
                    vec![Attribute::Int("axis".to_owned(), 1)],
                ),
            ],
            initializers,
            inputs,
            outputs,
        },
        metadata: contract.to_metadata(),
    }
    .encode()
}

fn plain_contract(lookback: usize) -> Contract {
    Contract {
        step_seconds: 60,
        lookback,
        targets: vec![Target::Point(1), Target::Max(2)],
        transform: "identity".to_owned(),
        trained_on: "by hand".to_owned(),
        reads: None,
    }
}

/// Runs `f` on another thread; `None` if it has not finished after `seconds`.
fn within<T: Send + 'static>(seconds: u64, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(f());
    });
    receive.recv_timeout(Duration::from_secs(seconds)).ok()
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo").arg(path).status();
    assert!(
        matches!(made, Ok(status) if status.success()),
        "mkfifo {}: {made:?}",
        path.display()
    );
}

/// Opens `fifo` for writing and closes it, so that a reader blocked on it wakes up.
fn release(fifo: &Path) {
    let fifo = fifo.to_path_buf();
    std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(fifo)));
}

#[test]
fn a_named_pipe_is_refused_without_waiting_for_a_writer() {
    test_environment();
    let dir = temp_dir();
    let fifo = dir.path().join("pipe.onnx");
    mkfifo(&fifo);
    let path = fifo.clone();
    let outcome = within(5, move || {
        OnnxModel::load(&path).err().map(|e| e.to_string())
    });
    if outcome.is_none() {
        release(&fifo);
        panic!("loading a named pipe hangs");
    }
    assert_eq!(
        outcome.flatten(),
        Some(format!(
            "{}: not a regular file (a named pipe)",
            fifo.display()
        ))
    );

    // A served model whose file is replaced by a pipe keeps serving, without blocking.
    let live = dir.path().join("live.onnx");
    let c = plain_contract(4);
    let bytes = scaling_model(
        &c,
        2.0,
        vec![io("values", FLOAT, batch(4))],
        vec![io("forecast", FLOAT, batch(2))],
        vec![],
    );
    std::fs::write(&live, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let model = OnnxModel::load_with_check_interval(&live, Duration::ZERO)
        .unwrap_or_else(|e| panic!("{e}"));
    let history = History::new(0, 60, vec![1.0, 2.0, 3.0, 4.0]);
    let fitted = model
        .fit(&history, &[Target::Point(1)])
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(&live).unwrap_or_else(|e| panic!("{e}"));
    mkfifo(&live);
    let outcome = within(5, move || fitted.predict(&history));
    if outcome.is_none() {
        release(&live);
        panic!("a model whose file became a named pipe hangs");
    }
    assert_eq!(outcome, Some(Ok(vec![8.0])));
}

#[test]
fn a_file_too_large_for_onnx_is_refused_before_reading_it() {
    test_environment();
    let dir = temp_dir();
    let big = dir.path().join("big.onnx");
    let file = std::fs::File::create(&big).unwrap_or_else(|e| panic!("{e}"));
    // Sparse: no disk space, but reading it would take 2 GiB of memory.
    file.set_len(1 << 31).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        load_no_panic(&big, "a 2 GiB file").err(),
        Some(format!(
            "{}: 2147483648 bytes, more than an ONNX file can hold (2 GiB)",
            big.display()
        ))
    );
}

#[test]
fn odd_paths_are_errors_naming_the_file() {
    test_environment();
    let dir = temp_dir();
    let empty = write(dir.path(), "empty.onnx", b"");
    let err = load_no_panic(&empty, "an empty file")
        .err()
        .unwrap_or_default();
    assert!(
        err.starts_with(&format!(
            "{}: ONNX Runtime cannot load it: ",
            empty.display()
        )),
        "{err}"
    );
    let folder = dir.path().join("folder.onnx");
    std::fs::create_dir(&folder).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        load_no_panic(&folder, "a directory").err(),
        Some(format!(
            "{}: not a regular file (a directory)",
            folder.display()
        ))
    );
    let (a, b) = (dir.path().join("a.onnx"), dir.path().join("b.onnx"));
    std::os::unix::fs::symlink(&b, &a).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(&a, &b).unwrap_or_else(|e| panic!("{e}"));
    let err = load_no_panic(&a, "a symlink loop")
        .err()
        .unwrap_or_default();
    assert!(
        err.starts_with(&format!(
            "{}: Too many levels of symbolic links",
            a.display()
        )),
        "{err}"
    );
    let device = dir.path().join("zero.onnx");
    std::os::unix::fs::symlink("/dev/zero", &device).unwrap_or_else(|e| panic!("{e}"));
    let path = device.clone();
    let outcome = within(5, move || {
        OnnxModel::load(&path).err().map(|e| e.to_string())
    });
    assert_eq!(
        outcome,
        Some(Some(format!(
            "{}: not a regular file (a character device)",
            device.display()
        ))),
        "a link to /dev/zero"
    );
}

#[test]
fn a_model_with_a_fixed_batch_size_is_refused_at_load() {
    test_environment();
    let dir = temp_dir();
    let c = plain_contract(4);
    // As torch.onnx.export writes a model without `dynamic_axes`: batch size 1. It used to
    // load, forecast one series, and fail every batch of more than one at inference.
    let path = write(
        dir.path(),
        "batch1.onnx",
        &scaling_model(
            &c,
            2.0,
            vec![io("values", FLOAT, vec![Dim::Fixed(1), Dim::Fixed(4)])],
            vec![io("forecast", FLOAT, vec![Dim::Fixed(1), Dim::Fixed(2)])],
            vec![],
        ),
    );
    assert_eq!(
        load_no_panic(&path, "a batch-1 model").err(),
        Some(format!(
            "{}: input `values` has shape [1, 4]: the first dimension must be symbolic (the batch N), export the model with a dynamic batch axis",
            path.display()
        ))
    );
    // Symbolic batch and width: served, whatever the batch size.
    let path = write(
        dir.path(),
        "dynamic.onnx",
        &scaling_model(
            &c,
            2.0,
            vec![io(
                "values",
                FLOAT,
                vec![Dim::Symbol("N".to_owned()), Dim::Symbol("L".to_owned())],
            )],
            vec![io(
                "forecast",
                FLOAT,
                vec![Dim::Symbol("N".to_owned()), Dim::Symbol("T".to_owned())],
            )],
            vec![],
        ),
    );
    let model = load_no_panic(&path, "a dynamic model").unwrap_or_else(|e| panic!("{e}"));
    let series: Vec<History> = (0..3)
        .map(|i| History::new(0, 60, vec![1.0, 2.0, 3.0, f64::from(i)]))
        .collect();
    let refs: Vec<&History> = series.iter().collect();
    let fitted = model
        .fit(&series[0], &c.targets)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fitted.predict_batch(&refs),
        vec![Ok(vec![0.0, 0.0]), Ok(vec![2.0, 2.0]), Ok(vec![4.0, 4.0])]
    );
    assert_eq!(fitted.predict(&series[2]), Ok(vec![4.0, 4.0]));
}
