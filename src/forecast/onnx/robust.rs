//! Adversarial tests of reading model files: odd paths, lying metadata and odd signatures
//! must give an error naming the file (or a working model), never a panic or a hang.

use std::path::Path;
use std::time::Duration;

use super::OnnxModel;
use super::contract::{self, Contract};
use super::proto::{Attribute, Dim, FLOAT, Graph, ModelFile, Node, Tensor, TensorData, ValueInfo};
use super::runtime::test_environment;
use super::tests::{load_no_panic, temp_dir, write};
use crate::forecast::{History, Model, ModelError, Target};

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

/// `forecast = values[:, -1:] * factor` repeated over the contract's `targets` columns, with
/// the given inputs and outputs declared and metadata from `contract`. A `values` input or
/// `forecast` output declared with another element type is cast from or to float32.
fn scaling_file(
    contract: &Contract,
    factor: f32,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
) -> ModelFile {
    let lookback = contract.lookback as i64;
    let width = contract.targets.len();
    let elem = |list: &[ValueInfo], name: &str| {
        list.iter()
            .find(|v| v.name == name)
            .map_or(FLOAT, |v| v.elem_type)
    };
    let (values_type, forecast_type) = (elem(&inputs, "values"), elem(&outputs, "forecast"));
    let node = |op: &str, inputs: &[&str], output: &str, attributes| Node {
        op_type: op.to_owned(),
        name: output.to_owned(),
        inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
        outputs: vec![output.to_owned()],
        attributes,
    };
    let cast = |from: &str, to: &str, elem_type: i32| {
        node(
            "Cast",
            &[from],
            to,
            vec![Attribute::Int("to".to_owned(), i64::from(elem_type))],
        )
    };
    let mut nodes = Vec::new();
    let mut values = "values";
    if values_type != FLOAT {
        nodes.push(cast("values", "values_float", FLOAT));
        values = "values_float";
    }
    nodes.push(node(
        "Gather",
        &[values, "last"],
        "origin",
        vec![Attribute::Int("axis".to_owned(), 1)],
    ));
    nodes.push(node("Mul", &["origin", "factor"], "scaled", vec![]));
    let copies: Vec<&str> = vec!["scaled"; width];
    let concat = if forecast_type == FLOAT {
        "forecast"
    } else {
        "forecast_float"
    };
    nodes.push(node(
        "Concat",
        &copies,
        concat,
        vec![Attribute::Int("axis".to_owned(), 1)],
    ));
    if forecast_type != FLOAT {
        nodes.push(cast("forecast_float", "forecast", forecast_type));
    }
    ModelFile {
        ir_version: 8,
        opset: 17,
        producer: "test".to_owned(),
        graph: Graph {
            name: "scaling".to_owned(),
            nodes,
            initializers: vec![
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
            ],
            inputs,
            outputs,
        },
        metadata: contract.to_metadata(),
    }
}

/// [`scaling_file`], encoded.
fn scaling_model(
    contract: &Contract,
    factor: f32,
    inputs: Vec<ValueInfo>,
    outputs: Vec<ValueInfo>,
) -> Vec<u8> {
    scaling_file(contract, factor, inputs, outputs).encode()
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

/// Loads `bytes` as `name` in `dir`; the error without the path prefix.
fn load_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Result<OnnxModel, String> {
    let path = write(dir, name, bytes);
    let prefix = format!("{}: ", path.display());
    load_no_panic(&path, name).map_err(|e| {
        assert!(
            e.starts_with(&prefix),
            "{name}: the error does not name the file: {e}"
        );
        e[prefix.len()..].to_owned()
    })
}

#[test]
fn non_finite_forecasts_are_errors_per_series() {
    test_environment();
    let dir = temp_dir();
    let c = plain_contract(4);
    let series = [
        History::new(0, 60, vec![1.0, 2.0, 3.0, 4.0]),
        History::new(0, 60, vec![1.0, 2.0, 3.0, 0.0]),
        History::new(0, 60, vec![1.0, 2.0]),
    ];
    let refs: Vec<&History> = series.iter().collect();
    for factor in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let name = format!("factor_{factor}.onnx");
        let bytes = scaling_model(
            &c,
            factor,
            vec![io("values", FLOAT, batch(4))],
            vec![io("forecast", FLOAT, batch(2))],
        );
        let model = load_bytes(dir.path(), &name, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let fitted = model
            .fit(&series[0], &c.targets)
            .unwrap_or_else(|e| panic!("{e}"));
        let non_finite = Err(ModelError::Invalid(format!(
            "{}: the model forecast a non-finite value",
            dir.path().join(&name).display()
        )));
        // 4 × ∞ and 4 × NaN are not finite, 0 × ±∞ is NaN: every row is refused, none is
        // clipped to 0 or passed on; the short history keeps its own reason.
        assert_eq!(
            fitted.predict_batch(&refs),
            vec![
                non_finite.clone(),
                non_finite.clone(),
                Err(ModelError::TooShort { needed: 4, have: 2 }),
            ],
            "factor {factor}"
        );
        assert_eq!(fitted.predict(&series[0]), non_finite, "factor {factor}");
    }
}

#[test]
fn an_output_wider_than_its_targets_at_inference_is_an_error() {
    test_environment();
    let dir = temp_dir();
    // forecast = values × factor: as wide as the input, which has a symbolic width, so the
    // declared [N, T] cannot be checked at load; the metadata lists 2 targets.
    let c = plain_contract(4);
    let mut file = scaling_file(
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
    );
    file.graph.nodes = vec![Node {
        op_type: "Mul".to_owned(),
        name: "forecast".to_owned(),
        inputs: vec!["values".to_owned(), "factor".to_owned()],
        outputs: vec!["forecast".to_owned()],
        attributes: vec![],
    }];
    let name = "wide.onnx";
    let model = load_bytes(dir.path(), name, &file.encode()).unwrap_or_else(|e| panic!("{e}"));
    let history = History::new(0, 60, vec![1.0, 2.0, 3.0, 4.0]);
    let fitted = model
        .fit(&history, &[Target::Max(2)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fitted.predict_batch(&[&history, &history]),
        vec![
            Err(ModelError::Invalid(format!(
                "{}: output `forecast` has shape [2, 4], expected [2, 2]",
                dir.path().join(name).display()
            )));
            2
        ]
    );
}

#[test]
fn signatures_of_the_wrong_type_rank_or_inputs_are_refused() {
    test_environment();
    let dir = temp_dir();
    let c = plain_contract(4);
    let load = |name: &str, inputs: Vec<ValueInfo>, outputs: Vec<ValueInfo>| {
        load_bytes(dir.path(), name, &scaling_model(&c, 2.0, inputs, outputs)).err()
    };
    const DOUBLE: i32 = 11;
    let values = || io("values", FLOAT, batch(4));
    let forecast = || io("forecast", FLOAT, batch(2));
    assert_eq!(
        load(
            "f64_in.onnx",
            vec![io("values", DOUBLE, batch(4))],
            vec![forecast()]
        ),
        Some("input `values` is float64, expected float32".to_owned())
    );
    assert_eq!(
        load(
            "f64_out.onnx",
            vec![values()],
            vec![io("forecast", DOUBLE, batch(2))]
        ),
        Some("output `forecast` is float64, expected float32".to_owned())
    );
    let rank3 = vec![Dim::Symbol("N".to_owned()), Dim::Fixed(4), Dim::Fixed(1)];
    assert_eq!(
        load(
            "rank3.onnx",
            vec![io("values", FLOAT, rank3)],
            vec![forecast()]
        ),
        Some("input `values` has shape [N, 4, 1], expected rank 2 [N, 4]".to_owned())
    );
    assert_eq!(
        load(
            "extra.onnx",
            vec![values(), io("holidays", FLOAT, batch(4))],
            vec![forecast()]
        ),
        Some("unexpected input `holidays`; the contract has only `values` and `phase`".to_owned())
    );
    // A constant also declared as an input (older exporters' keep_initializers_as_inputs) has
    // a default: ONNX Runtime does not list it as an input, and the model is served.
    assert_eq!(
        load(
            "overridable.onnx",
            vec![values(), io("factor", FLOAT, vec![Dim::Fixed(1)])],
            vec![forecast()]
        ),
        None
    );
    // An extra output is computed and ignored.
    assert_eq!(
        load(
            "extra_out.onnx",
            vec![values()],
            vec![forecast(), io("origin", FLOAT, batch(1))]
        ),
        None
    );
}

/// `contract` with one metadata entry replaced (or removed with `None`).
fn metadata_with(contract: &Contract, key: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut entries = contract.to_metadata();
    entries.retain(|(k, _)| k != key);
    if let Some(value) = value {
        entries.push((key.to_owned(), value.to_owned()));
    }
    entries
}

#[test]
fn lying_metadata_is_refused_or_harmless() {
    test_environment();
    let dir = temp_dir();
    let c = plain_contract(4);
    // Symbolic width: the metadata alone says what the lookback is.
    let any_width = || {
        scaling_file(
            &c,
            2.0,
            vec![io(
                "values",
                FLOAT,
                vec![Dim::Symbol("N".to_owned()), Dim::Symbol("L".to_owned())],
            )],
            vec![io("forecast", FLOAT, batch(2))],
        )
    };
    let with = |key: &str, value: Option<&str>| {
        let mut file = any_width();
        file.metadata = metadata_with(&c, key, value);
        let name = format!("{}_{}.onnx", key, value.unwrap_or("none").len());
        load_bytes(dir.path(), &name, &file.encode())
    };
    let refused = |key: &str, value: &str| with(key, Some(value)).err();
    use contract::{KEY_LOOKBACK, KEY_READS, KEY_STEP, KEY_TARGETS, KEY_TRANSFORM};
    assert_eq!(
        refused(KEY_LOOKBACK, "0"),
        Some("metadata `augur.lookback` is \"0\", expected a positive integer".to_owned())
    );
    assert_eq!(
        refused(KEY_LOOKBACK, "-4"),
        Some("metadata `augur.lookback` is \"-4\", expected a positive integer".to_owned())
    );
    assert_eq!(
        refused(KEY_LOOKBACK, "1e3"),
        Some("metadata `augur.lookback` is \"1e3\", expected a positive integer".to_owned())
    );
    assert_eq!(
        refused(KEY_STEP, "0"),
        Some(
            "metadata `augur.step_seconds` is \"0\", expected a positive number of seconds"
                .to_owned()
        )
    );
    assert_eq!(
        refused(KEY_STEP, "NaN"),
        Some(
            "metadata `augur.step_seconds` is \"NaN\", expected a positive number of seconds"
                .to_owned()
        )
    );
    assert_eq!(
        refused(KEY_TARGETS, ""),
        Some("metadata `augur.targets`: no targets (expected e.g. `max@10,point@10`)".to_owned())
    );
    assert_eq!(
        refused(KEY_TARGETS, "point@1,max@2,point@1"),
        Some("metadata `augur.targets`: target point@1 is listed twice".to_owned())
    );
    assert_eq!(
        refused(KEY_TARGETS, "point@1,max@18446744073709551616"),
        Some(
            "metadata `augur.targets`: target \"max@18446744073709551616\": steps must be a positive integer"
                .to_owned()
        )
    );
    assert_eq!(
        refused(KEY_READS, "0-4"),
        Some("metadata `augur.reads`: lag 4 is beyond lookback 4".to_owned())
    );
    assert_eq!(
        refused(KEY_READS, ","),
        Some("metadata `augur.reads`: no lags".to_owned())
    );
    assert_eq!(
        refused(KEY_READS, "0-18446744073709551616"),
        Some(
            "metadata `augur.reads`: \"0-18446744073709551616\" is not a lag or a range of lags like 0-59"
                .to_owned()
        )
    );
    // The transform is informational: an unknown name loads.
    assert!(with(KEY_TRANSFORM, Some("box-cox(0.3)")).is_ok());
    // A horizon beyond the lookback is the model's business.
    assert!(with(KEY_TARGETS, Some("point@1,max@1000")).is_ok());

    // A lookback of 10^12 (or usize::MAX) behind a symbolic width loads, allocates
    // nothing, and answers every history "too short" instead of copying it.
    let history = History::new(0, 60, vec![1.0; 16]);
    for huge in ["1000000000000", "18446744073709551615"] {
        let model = with(KEY_LOOKBACK, Some(huge)).unwrap_or_else(|e| panic!("{e}"));
        let needed: usize = huge.parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(model.contract().lookback, needed);
        let fitted = model
            .fit(&history, &c.targets)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fitted.lookback(), Some(needed));
        assert_eq!(
            fitted.predict_batch(&[&history, &history]),
            vec![Err(ModelError::TooShort { needed, have: 16 }); 2]
        );
    }
    // With the width fixed, the same lie is caught against the input's shape.
    let mut file = scaling_file(
        &c,
        2.0,
        vec![io("values", FLOAT, batch(4))],
        vec![io("forecast", FLOAT, batch(2))],
    );
    file.metadata = metadata_with(&c, KEY_LOOKBACK, Some("18446744073709551615"));
    assert_eq!(
        load_bytes(dir.path(), "max.onnx", &file.encode()).err(),
        Some(
            "input `values` has shape [N, 4], metadata says lookback 18446744073709551615"
                .to_owned()
        )
    );
}

#[test]
fn a_metadata_value_that_is_not_utf8_is_not_called_missing() {
    test_environment();
    let dir = temp_dir();
    let bytes = scaling_model(
        &plain_contract(4),
        2.0,
        vec![io("values", FLOAT, batch(4))],
        vec![io("forecast", FLOAT, batch(2))],
    );
    // StringStringEntryProto { key: "augur.lookback", value: "4" }: the value becomes 0xff.
    let entry = b"augur.lookback\x12\x014";
    let at = bytes
        .windows(entry.len())
        .position(|w| w == entry)
        .unwrap_or_else(|| panic!("no lookback entry"));
    let mut broken = bytes.clone();
    broken[at + entry.len() - 1] = 0xff;
    assert_eq!(
        load_bytes(dir.path(), "latin1.onnx", &broken).err(),
        Some("metadata `augur.lookback` is not valid UTF-8".to_owned())
    );
    // A key that is not UTF-8 is not the key augur reads: that one is missing.
    let mut broken = bytes;
    broken[at] = 0xe1;
    assert_eq!(
        load_bytes(dir.path(), "key.onnx", &broken).err(),
        Some("metadata `augur.lookback` is missing (see docs/onnx.md)".to_owned())
    );
}

#[test]
fn an_unreadable_file_or_one_replaced_by_a_directory() {
    use std::os::unix::fs::PermissionsExt as _;
    test_environment();
    let dir = temp_dir();
    let c = plain_contract(4);
    let bytes = scaling_model(
        &c,
        2.0,
        vec![io("values", FLOAT, batch(4))],
        vec![io("forecast", FLOAT, batch(2))],
    );
    let locked = write(dir.path(), "locked.onnx", &bytes);
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000))
        .unwrap_or_else(|e| panic!("{e}"));
    // Root reads it anyway: then there is nothing to check.
    if std::fs::read(&locked).is_err() {
        let err = load_no_panic(&locked, "an unreadable file")
            .err()
            .unwrap_or_default();
        assert!(
            err.starts_with(&format!("{}: Permission denied", locked.display())),
            "{err}"
        );
    }
    // A served model whose file becomes a directory keeps serving.
    let live = write(dir.path(), "live.onnx", &bytes);
    let model = OnnxModel::load_with_check_interval(&live, Duration::ZERO)
        .unwrap_or_else(|e| panic!("{e}"));
    let history = History::new(0, 60, vec![1.0, 2.0, 3.0, 4.0]);
    let fitted = model
        .fit(&history, &[Target::Max(2)])
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(&live).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(&live).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fitted.predict(&history), Ok(vec![8.0]));
    assert_eq!(model.contract(), c);
}
