//! ONNX tests against the real ONNX Runtime: exported linear models match a reference
//! evaluation of the documented formula, contract violations are rejected with the file
//! and the reason, and a changed file is reloaded (a broken one is not).

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::OnnxModel;
use super::contract::{self, Contract};
use super::proto::{Attribute, Dim, FLOAT, Graph, ModelFile, Node, Tensor, TensorData, ValueInfo};
use super::runtime::test_environment;
use super::writer::{linear_model, linear_model_file};
use crate::forecast::gaps::{check_recent_gap, check_seasonal_gap, seasonal_ranges};
use crate::forecast::{
    Feature, History, LinearSpec, Model, ModelError, Period, Phase, Target, Transform,
};

/// A number in [low, high) from a seeded (deterministic) generator.
fn between(rng: &mut fastrand::Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.f64()
}

/// The formula documented on [`LinearSpec`], in f64: `window` is forward-filled raw values,
/// oldest first, the last one the origin.
fn reference(spec: &LinearSpec, window: &[f64], phase: Phase) -> Vec<f64> {
    let x: Vec<f64> = window
        .iter()
        .map(|&v| match spec.transform {
            Transform::Identity => v,
            Transform::Log1p { scale } => (v / scale).ln_1p(),
        })
        .collect();
    let at = |lag: usize| x[x.len() - 1 - lag];
    let cycle = |period: Period| match period {
        Period::Day => phase.day,
        Period::Week => phase.week,
    };
    let features: Vec<f64> = spec
        .features
        .iter()
        .map(|f| match *f {
            Feature::Lag(lag) => at(lag),
            Feature::WindowMax { from, to } => (from..=to).map(at).fold(f64::MIN, f64::max),
            Feature::WindowMean { from, to } => {
                (from..=to).map(at).sum::<f64>() / (to - from + 1) as f64
            }
            Feature::Sin { period, harmonic } => (TAU * f64::from(harmonic) * cycle(period)).sin(),
            Feature::Cos { period, harmonic } => (TAU * f64::from(harmonic) * cycle(period)).cos(),
        })
        .collect();
    (0..spec.targets.len())
        .map(|j| {
            let z = at(0)
                + spec.bias[j]
                + (0..features.len())
                    .map(|i| spec.weights[j][i] * (features[i] - spec.mean[i]) / spec.scale[i])
                    .sum::<f64>();
            let y = match spec.transform {
                Transform::Identity => z,
                Transform::Log1p { scale } => scale * z.exp_m1(),
            };
            // The floor: the lowest of the last `floor` raw values, when higher.
            let lowest = window[window.len() - spec.floor..]
                .iter()
                .copied()
                .fold(f64::INFINITY, f64::min);
            y.max(0.0).max(if spec.floor == 0 { 0.0 } else { lowest })
        })
        .collect()
}

/// A spec using every kind of feature, with made-up coefficients.
fn rich_spec(transform: Transform, bias_shift: f64) -> LinearSpec {
    rich_spec_over(transform, bias_shift, 30)
}

/// [`rich_spec`] with another `lookback`; beyond 30 it also reads the oldest lag.
fn rich_spec_over(transform: Transform, bias_shift: f64, lookback: usize) -> LinearSpec {
    let mut features = vec![
        Feature::Lag(0),
        Feature::Lag(1),
        Feature::Lag(7),
        Feature::Lag(7),
        Feature::WindowMax { from: 0, to: 9 },
        Feature::Sin {
            period: Period::Day,
            harmonic: 1,
        },
        Feature::WindowMean { from: 0, to: 29 },
        Feature::Cos {
            period: Period::Day,
            harmonic: 1,
        },
        Feature::WindowMean { from: 10, to: 19 },
        Feature::Sin {
            period: Period::Week,
            harmonic: 2,
        },
        Feature::Cos {
            period: Period::Week,
            harmonic: 3,
        },
    ];
    if lookback > 30 {
        // A lag far from the others: the transformed columns come in two runs.
        features.push(Feature::Lag(lookback - 1));
    }
    let targets = vec![Target::Max(10), Target::Point(10), Target::Point(1)];
    let mut n = fastrand::Rng::with_seed(7);
    let (center, spread) = match transform {
        Transform::Identity => (50.0, 20.0),
        Transform::Log1p { .. } => (5.0, 1.0),
    };
    LinearSpec {
        step_seconds: 60,
        lookback,
        transform,
        mean: features
            .iter()
            .map(|_| between(&mut n, center - spread, center + spread))
            .collect(),
        scale: features
            .iter()
            .map(|_| between(&mut n, 0.5, 2.0) * spread)
            .collect(),
        weights: targets
            .iter()
            .map(|_| {
                features
                    .iter()
                    .map(|_| between(&mut n, -0.3, 0.3))
                    .collect()
            })
            .collect(),
        bias: targets
            .iter()
            .map(|_| between(&mut n, -0.1, 0.1) + bias_shift)
            .collect(),
        floor: 0,
        features,
        targets,
    }
}

/// Histories of `len` buckets with values in [low, high) and some missing buckets.
fn histories(count: usize, len: usize, low: f64, high: f64, seed: u64) -> Vec<History> {
    let mut n = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|i| {
            let values = (0..len)
                .map(|_| {
                    if n.f64() < 0.1 {
                        f64::NAN
                    } else {
                        between(&mut n, low, high)
                    }
                })
                .collect();
            // Origins spread over a week so every phase feature varies.
            History::new(1_704_067_200 + i as i64 * 3_917 * 60, 60, values)
        })
        .collect()
}

/// The value of metadata `key` in `file`.
fn metadata<'a>(file: &'a ModelFile, key: &str) -> Option<&'a str> {
    file.metadata
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Writes `bytes` to `dir/name` (shared by the robustness and mutation tests).
pub(super) fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

pub(super) fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

/// Loads `path`; a panic fails the test with what was loaded.
pub(super) fn load_no_panic(path: &Path, what: &str) -> Result<OnnxModel, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| OnnxModel::load(path))) {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => panic!("loading {what} panicked"),
    }
}

fn load(path: &Path) -> Result<OnnxModel, String> {
    test_environment();
    OnnxModel::load(path).map_err(|e| e.to_string())
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "{what}: got {got:?}, want {want:?}"
        );
    }
}

/// Runs `spec` exported to ONNX over `series` and compares every forecast with the
/// reference evaluation.
fn check_against_reference(spec: &LinearSpec, series: &[History]) -> usize {
    let dir = temp_dir();
    let bytes = linear_model(spec, "test").unwrap_or_else(|e| panic!("{e}"));
    let model = load(&write(dir.path(), "linear.onnx", &bytes)).unwrap_or_else(|e| panic!("{e}"));
    let fitted = model
        .fit(&series[0], &spec.targets)
        .unwrap_or_else(|e| panic!("{e}"));
    // The engine copies only this tail of each history into the batch.
    let lookback = spec.window();
    assert_eq!(fitted.lookback(), Some(lookback));
    let refs: Vec<&History> = series.iter().collect();
    let batch = fitted.predict_batch(&refs);
    let mut zeros = 0;
    let mut compared = 0;
    for (history, got) in series.iter().zip(batch) {
        // The built-in model's outage rule, for a model reading at least 60 buckets: more
        // than a tenth of the last 60 missing is refused, and the live value served.
        let recent = if lookback >= 60 { 60 } else { 0 };
        let missing = history.values[history.len() - recent..]
            .iter()
            .filter(|v| v.is_nan())
            .count();
        if 10 * missing > recent {
            assert_eq!(
                got,
                Err(ModelError::Gap(format!(
                    "{missing} of the last {recent} buckets are missing; forecasting again once the recent data is back"
                )))
            );
            continue;
        }
        compared += 1;
        let filled = history.forward_filled();
        let window = &filled[filled.len() - lookback..];
        let phase = History::phase(history.origin().unwrap_or_default());
        let want = reference(spec, window, phase);
        let got = got.unwrap_or_else(|e| panic!("{e}"));
        assert_close(&got, &want, "batch forecast");
        let single = fitted.predict(history).unwrap_or_else(|e| panic!("{e}"));
        assert_close(&single, &want, "single forecast");
        // The lookback tail, extended back to a present bucket as the engine does.
        let mut from = history.len() - lookback;
        while from > 0 && history.values[from].is_nan() {
            from -= 1;
        }
        let tail = History::new(
            history.start + from as i64 * history.step,
            history.step,
            history.values[from..].to_vec(),
        );
        let from_tail = fitted.predict(&tail).unwrap_or_else(|e| panic!("{e}"));
        assert_close(&from_tail, &want, "forecast from the lookback tail");
        zeros += want.iter().filter(|v| **v == 0.0).count();
    }
    assert!(
        compared * 4 > series.len(),
        "only {compared} of {} histories were forecast; the test lost its point",
        series.len()
    );
    zeros
}

#[test]
fn exported_log1p_model_matches_the_reference_formula() {
    let spec = rich_spec(Transform::LOG1P, 0.0);
    let series = histories(200, 40, 50.0, 900.0, 11);
    check_against_reference(&spec, &series);
    // Lookback 45 reading lags 0..=29 and 44: only the columns read are transformed.
    let spec = rich_spec_over(Transform::LOG1P, 0.0, 45);
    let series = histories(200, 60, 50.0, 900.0, 13);
    check_against_reference(&spec, &series);
    // A scaled log, ln(1 + x / 40), as the built-in model fits on a history of mean 800
    // (5 % of it), both ways and in the metadata.
    let spec = rich_spec_over(Transform::Log1p { scale: 40.0 }, 0.0, 45);
    let series = histories(200, 60, 50.0, 900.0, 16);
    check_against_reference(&spec, &series);
    let file = linear_model_file(&spec, "test").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(metadata(&file, "augur.transform"), Some("log1p(x/40)"));
}

#[test]
fn exported_identity_model_matches_the_reference_and_clips_at_zero() {
    // A negative bias pushes part of the forecasts below zero: those must come out as 0.
    let spec = rich_spec(Transform::Identity, -55.0);
    let series = histories(200, 30, 0.0, 100.0, 12);
    let zeros = check_against_reference(&spec, &series);
    assert!(
        zeros > 0,
        "no forecast was clipped; the test lost its point"
    );
}

#[test]
fn exported_model_refuses_outages_as_the_built_in_model_does() {
    // Recent lags and a seasonal run 100..=104 (a "period" of 100 buckets), as the
    // built-in model reads one day back.
    let spec = LinearSpec {
        step_seconds: 60,
        lookback: 105,
        transform: Transform::Identity,
        features: vec![
            Feature::Lag(1),
            Feature::Lag(4),
            Feature::WindowMean { from: 100, to: 104 },
        ],
        mean: vec![0.0; 3],
        scale: vec![1.0; 3],
        targets: vec![Target::Point(1)],
        weights: vec![vec![0.5, 0.25, 0.125]],
        bias: vec![1.0],
        floor: 0,
    };
    let dir = temp_dir();
    let bytes = linear_model(&spec, "test").unwrap_or_else(|e| panic!("{e}"));
    let model = load(&write(dir.path(), "gaps.onnx", &bytes)).unwrap_or_else(|e| panic!("{e}"));
    let fitted = model
        .fit(&History::new(0, 60, vec![1.0; 120]), &spec.targets)
        .unwrap_or_else(|e| panic!("{e}"));
    let with_missing = |missing: &[usize]| {
        let mut values: Vec<f64> = (0..120).map(|i| 10.0 + f64::from(i % 7)).collect();
        for &i in missing {
            values[i] = f64::NAN;
        }
        History::new(0, 60, values)
    };
    // 120 buckets: the origin is 119, the run 100..=104 is buckets 15..=19.
    let lost_scrapes = with_missing(&[70, 80, 90, 100, 110, 116]);
    let outage = with_missing(&[60, 70, 80, 90, 100, 110, 116]);
    let outage_a_period_ago = with_missing(&[15, 16, 17]);
    let one_seasonal_scrape = with_missing(&[17]);
    let got = fitted.predict_batch(&[
        &lost_scrapes,
        &outage,
        &outage_a_period_ago,
        &one_seasonal_scrape,
    ]);
    // 6 of the last 60 missing is forecast from the forward-filled values.
    // Origin 119: 10 + 0 = 10 (119 % 7 = 0); lag 1 is 118 → 16, lag 4 is 115 → 13 (116
    // missing does not matter: it is not read), the run's mean (11 + … + 15) / 5 = 13.
    assert_eq!(
        got[0],
        Ok(vec![10.0 + 1.0 + 0.5 * 16.0 + 0.25 * 13.0 + 0.125 * 13.0])
    );
    assert_eq!(
        got[1],
        Err(ModelError::Gap(
            "7 of the last 60 buckets are missing; forecasting again once the recent data is back"
                .to_owned()
        ))
    );
    assert_eq!(
        got[2],
        Err(ModelError::Gap(
            "3 of the 5 buckets 100–104 steps back that the model reads as seasonal lags are missing (a gap a period ago)"
                .to_owned()
        ))
    );
    // One missing seasonal bucket is forward-filled from bucket 16: (11 + 12 + 12 + 14 +
    // 15) / 5 = 12.8.
    assert_close(
        got[3].as_deref().unwrap_or_else(|e| panic!("{e}")),
        &[10.0 + 1.0 + 0.5 * 16.0 + 0.25 * 13.0 + 0.125 * 12.8],
        "one seasonal scrape lost",
    );
    // The built-in model refuses the same two with the same reasons (and bridges the
    // second with its variant without seasonal lags, which an export does not carry).
    assert_eq!(check_recent_gap(&outage, 60), got[1].clone().map(|_| ()));
    let seasonal = seasonal_ranges(&spec.read_ranges());
    assert_eq!(seasonal, vec![(100, 104)]);
    assert_eq!(
        check_seasonal_gap(&outage_a_period_ago, &seasonal),
        got[2].clone().map(|_| ())
    );
}

#[test]
fn exported_model_keeps_the_floor_of_the_built_in_model() {
    // Forecasts pushed below 0 by a negative bias are raised to the lowest of the last
    // `floor` values, over more buckets than the features read (40 > 30) and over fewer.
    for (floor, len, seed) in [(40, 50, 14), (12, 40, 15)] {
        let mut spec = rich_spec(Transform::Identity, -55.0);
        spec.floor = floor;
        assert_eq!(spec.window(), floor.max(30));
        let series = histories(200, len, 5.0, 100.0, seed);
        let zeros = check_against_reference(&spec, &series);
        assert_eq!(
            zeros, 0,
            "floor {floor}: a forecast below every recent value"
        );
        // The same forecasts as the built-in formula's, floor and all.
        let raised = series
            .iter()
            .filter(|h| {
                let filled = h.forward_filled();
                let window = &filled[filled.len() - spec.window()..];
                let phase = History::phase(h.origin().unwrap_or_default());
                let built_in = crate::forecast::model::evaluate_spec(&spec, window, phase);
                assert_close(
                    &built_in,
                    &reference(&spec, window, phase),
                    "built-in formula",
                );
                let mut unfloored = spec.clone();
                unfloored.floor = 0;
                built_in != crate::forecast::model::evaluate_spec(&unfloored, window, phase)
            })
            .count();
        assert!(raised > 0, "floor {floor}: no forecast was raised");
    }
    // The contract reads the floor's lags too.
    let mut spec = rich_spec_over(Transform::LOG1P, 0.0, 45);
    spec.floor = 35;
    let file = linear_model_file(&spec, "test").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(metadata(&file, "augur.reads"), Some("0-34,44"));
}

#[test]
fn a_spec_without_features_is_origin_plus_bias() {
    let spec = LinearSpec {
        step_seconds: 300,
        lookback: 1,
        transform: Transform::Identity,
        features: vec![],
        mean: vec![],
        scale: vec![],
        targets: vec![Target::Point(1), Target::Max(2)],
        weights: vec![vec![], vec![]],
        bias: vec![2.5, -1.0],
        floor: 0,
    };
    let dir = temp_dir();
    let bytes = linear_model(&spec, "test").unwrap_or_else(|e| panic!("{e}"));
    let model = load(&write(dir.path(), "m.onnx", &bytes)).unwrap_or_else(|e| panic!("{e}"));
    let history = History::new(0, 300, vec![7.0, f64::NAN]);
    let fitted = model
        .fit(&history, &[Target::Max(2), Target::Point(1)])
        .unwrap_or_else(|e| panic!("{e}"));
    // Requested in another order than the model's columns; the NaN origin is forward-filled.
    assert_eq!(fitted.predict(&history), Ok(vec![6.0, 9.5]));
}

#[test]
fn the_metadata_describes_the_contract() {
    let spec = rich_spec(Transform::LOG1P, 0.0);
    let dir = temp_dir();
    let bytes = linear_model(&spec, "trace nasa.csv").unwrap_or_else(|e| panic!("{e}"));
    let model = load(&write(dir.path(), "m.onnx", &bytes)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        model.contract(),
        Contract {
            step_seconds: 60,
            lookback: 30,
            targets: vec![Target::Max(10), Target::Point(10), Target::Point(1)],
            transform: "log1p".to_owned(),
            trained_on: "trace nasa.csv".to_owned(),
            reads: Some(vec![(0, 29)]),
        }
    );
}

fn io(name: &str, width: i64) -> ValueInfo {
    ValueInfo {
        name: name.to_owned(),
        elem_type: FLOAT,
        dims: vec![Dim::Symbol("N".to_owned()), Dim::Fixed(width)],
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attributes: Vec<Attribute>) -> Node {
    Node {
        op_type: op.to_owned(),
        name: output.to_owned(),
        inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
        outputs: vec![output.to_owned()],
        attributes,
    }
}

/// A model not made by augur's exporter: `forecast = [max(window), last value]` from an
/// input called `input_name`, with no `phase` input.
fn foreign_model(input_name: &str, lookback: i64, metadata: Vec<(String, String)>) -> Vec<u8> {
    ModelFile {
        ir_version: 8,
        opset: 17,
        producer: "elsewhere".to_owned(),
        graph: Graph {
            name: "foreign".to_owned(),
            nodes: vec![
                node(
                    "ReduceMax",
                    &[input_name],
                    "peak",
                    vec![
                        Attribute::Ints("axes".to_owned(), vec![1]),
                        Attribute::Int("keepdims".to_owned(), 1),
                    ],
                ),
                node(
                    "Gather",
                    &[input_name, "last_index"],
                    "last",
                    vec![Attribute::Int("axis".to_owned(), 1)],
                ),
                node(
                    "Concat",
                    &["peak", "last"],
                    "forecast",
                    vec![Attribute::Int("axis".to_owned(), 1)],
                ),
            ],
            initializers: vec![Tensor {
                name: "last_index".to_owned(),
                dims: vec![1],
                data: TensorData::Int64(vec![lookback - 1]),
            }],
            inputs: vec![io(input_name, lookback)],
            outputs: vec![io("forecast", 2)],
        },
        metadata,
    }
    .encode()
}

fn foreign_contract(lookback: usize) -> Contract {
    Contract {
        step_seconds: 60,
        lookback,
        targets: vec![Target::Max(5), Target::Point(1)],
        transform: "identity".to_owned(),
        trained_on: "by hand".to_owned(),
        reads: None,
    }
}

#[test]
fn any_model_following_the_contract_is_served() {
    let dir = temp_dir();
    let bytes = foreign_model("values", 4, foreign_contract(4).to_metadata());
    let model = load(&write(dir.path(), "foreign.onnx", &bytes)).unwrap_or_else(|e| panic!("{e}"));
    let a = History::new(0, 60, vec![9.0, 1.0, 5.0, f64::NAN, 2.0]);
    let b = History::new(0, 60, vec![3.0, 4.0, f64::NAN, f64::NAN]);
    let short = History::new(0, 60, vec![1.0, 2.0]);
    let wrong_step = History::new(0, 30, vec![1.0; 8]);
    let empty = History::new(0, 60, vec![f64::NAN; 6]);
    let fitted = model
        .fit(&a, &[Target::Point(1), Target::Max(5)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        fitted.predict_batch(&[&a, &short, &empty, &b, &wrong_step]),
        vec![
            Ok(vec![2.0, 5.0]),
            Err(ModelError::TooShort { needed: 4, have: 2 }),
            Err(ModelError::Invalid(
                "every bucket of the history is missing".to_owned()
            )),
            Ok(vec![4.0, 4.0]),
            Err(ModelError::StepMismatch {
                expected: 60,
                have: 30
            }),
        ]
    );
    assert_eq!(
        model.fit(&a, &[Target::Max(6)]).err(),
        Some(ModelError::UnsupportedTarget(Target::Max(6)))
    );
    assert_eq!(
        model.fit(&wrong_step, &[Target::Max(5)]).err(),
        Some(ModelError::StepMismatch {
            expected: 60,
            have: 30
        })
    );
}

#[test]
fn lookback_metadata_that_disagrees_with_the_input_shape_is_rejected() {
    let dir = temp_dir();
    let mut spec = rich_spec(Transform::LOG1P, 0.0);
    spec.lookback = 12;
    spec.features
        .retain(|f| !matches!(f, Feature::WindowMean { to, .. } if *to > 11));
    let keep = spec.features.len();
    spec.mean.truncate(keep);
    spec.scale.truncate(keep);
    spec.weights.iter_mut().for_each(|w| w.truncate(keep));
    let mut file = linear_model_file(&spec, "test").unwrap_or_else(|e| panic!("{e}"));
    for (key, value) in &mut file.metadata {
        if key == contract::KEY_LOOKBACK {
            *value = "64".to_owned();
        }
    }
    let path = write(dir.path(), "x.onnx", &file.encode());
    assert_eq!(
        load(&path).err(),
        Some(format!(
            "{}: input `values` has shape [N, 12], metadata says lookback 64",
            path.display()
        ))
    );
}

#[test]
fn a_model_without_the_values_input_is_rejected() {
    let dir = temp_dir();
    let path = write(
        dir.path(),
        "series.onnx",
        &foreign_model("series", 4, foreign_contract(4).to_metadata()),
    );
    assert_eq!(
        load(&path).err(),
        Some(format!(
            "{}: no input `values` (inputs: `series`)",
            path.display()
        ))
    );
}

#[test]
fn missing_metadata_and_broken_files_are_rejected() {
    let dir = temp_dir();
    let mut metadata = foreign_contract(4).to_metadata();
    metadata.retain(|(k, _)| k != contract::KEY_TARGETS);
    let path = write(dir.path(), "m.onnx", &foreign_model("values", 4, metadata));
    assert_eq!(
        load(&path).err(),
        Some(format!(
            "{}: metadata `augur.targets` is missing (see docs/onnx.md)",
            path.display()
        ))
    );
    let garbage = write(dir.path(), "garbage.onnx", b"not a model");
    let err = load(&garbage).err().unwrap_or_default();
    assert!(
        err.starts_with(&format!(
            "{}: ONNX Runtime cannot load it: ",
            garbage.display()
        )),
        "{err}"
    );
    let absent = dir.path().join("absent.onnx");
    let err = load(&absent).err().unwrap_or_default();
    assert!(
        err.starts_with(&format!("{}: No such file", absent.display())),
        "{err}"
    );
}

/// Rewrites `path` with a modification time `seconds` after the epoch (so the change is
/// seen whatever the file system's timestamp granularity).
fn rewrite(path: &Path, bytes: &[u8], seconds: u64) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{e}"));
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{e}"));
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_changed_file_is_reloaded_and_a_broken_one_is_not() {
    test_environment();
    let dir = temp_dir();
    let path = dir.path().join("live.onnx");
    let model_with_bias = |bias: f64| {
        let spec = LinearSpec {
            step_seconds: 60,
            lookback: 2,
            transform: Transform::Identity,
            features: vec![Feature::Lag(1)],
            mean: vec![0.0],
            scale: vec![1.0],
            targets: vec![Target::Point(1)],
            weights: vec![vec![0.5]],
            bias: vec![bias],
            floor: 0,
        };
        linear_model(&spec, "test").unwrap_or_else(|e| panic!("{e}"))
    };
    rewrite(&path, &model_with_bias(1.0), 1_000);
    let model = OnnxModel::load_with_check_interval(&path, Duration::ZERO)
        .unwrap_or_else(|e| panic!("{e}"));
    let history = History::new(0, 60, vec![4.0, 10.0]);
    let fitted = model
        .fit(&history, &[Target::Point(1)])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fitted.predict(&history), Ok(vec![13.0]));
    rewrite(&path, &model_with_bias(3.0), 2_000);
    assert_eq!(fitted.predict(&history), Ok(vec![15.0]));
    // A new version with a longer lookback: the engine asks for the lookback first and
    // materialises that many buckets, so the answer must already be the new version's.
    let longer = LinearSpec {
        step_seconds: 60,
        lookback: 3,
        transform: Transform::Identity,
        features: vec![Feature::Lag(2)],
        mean: vec![0.0],
        scale: vec![1.0],
        targets: vec![Target::Point(1)],
        weights: vec![vec![0.5]],
        bias: vec![1.0],
        floor: 0,
    };
    rewrite(
        &path,
        &linear_model(&longer, "test").unwrap_or_else(|e| panic!("{e}")),
        2_500,
    );
    assert_eq!(fitted.lookback(), Some(3));
    // 10 + 1 + 0.5 × 1.
    let three = History::new(0, 60, vec![1.0, 4.0, 10.0]);
    assert_eq!(fitted.predict(&three), Ok(vec![11.5]));
    rewrite(&path, &model_with_bias(3.0), 2_700);
    assert_eq!(fitted.predict(&history), Ok(vec![15.0]));
    // A broken file (here: lookback 5 in the metadata of a 2-column model) keeps the
    // previous session.
    let mut broken = linear_model_file(
        &LinearSpec {
            step_seconds: 60,
            lookback: 2,
            transform: Transform::Identity,
            features: vec![],
            mean: vec![],
            scale: vec![],
            targets: vec![Target::Point(1)],
            weights: vec![vec![]],
            bias: vec![100.0],
            floor: 0,
        },
        "test",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    broken
        .metadata
        .iter_mut()
        .filter(|(k, _)| k == contract::KEY_LOOKBACK)
        .for_each(|(_, v)| *v = "5".to_owned());
    rewrite(&path, &broken.encode(), 3_000);
    assert_eq!(fitted.predict(&history), Ok(vec![15.0]));
    rewrite(&path, b"garbage", 4_000);
    assert_eq!(fitted.predict(&history), Ok(vec![15.0]));
    assert_eq!(model.contract().lookback, 2);
}

#[test]
fn inconsistent_specs_are_not_exported() {
    let mut spec = rich_spec(Transform::Identity, 0.0);
    spec.lookback = 20;
    assert_eq!(
        linear_model(&spec, "test").err(),
        Some(ModelError::Invalid(
            "linear spec: feature 6 (WindowMean { from: 0, to: 29 }) reads lag 29, beyond lookback 20"
                .to_owned()
        ))
    );
    let mut spec = rich_spec(Transform::Identity, 0.0);
    spec.scale[2] = 0.0;
    assert_eq!(
        linear_model(&spec, "test").err(),
        Some(ModelError::Invalid(
            "linear spec: a feature scale is 0".to_owned()
        ))
    );
    for scale in [0.0, -1.0, 1e-40, 1e39, f64::NAN] {
        let spec = rich_spec(Transform::Log1p { scale }, 0.0);
        assert_eq!(
            linear_model(&spec, "test").err(),
            Some(ModelError::Invalid(format!(
                "linear spec: log transform scale {scale} is not a positive normal f32"
            )))
        );
    }
}

#[test]
fn the_shipped_default_model_follows_the_contract() {
    test_environment();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.onnx");
    let model = OnnxModel::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let contract = model.contract();
    assert_eq!(contract.step_seconds, 60);
    assert_eq!(contract.targets, vec![Target::Max(10), Target::Point(10)]);
    // The repository's three days of the NASA trace (whole days, so the daily cycle stays
    // in phase), repeated to the model's lookback and a day more.
    let trace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/traces/nasa_ksc_1995_07_10-13_60s.csv");
    let days = crate::forecast::trace::load_csv(&trace).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(days.values.len() % 1440, 0, "whole days");
    let history = History::new(
        days.start,
        60,
        days.values
            .iter()
            .copied()
            .cycle()
            .take(contract.lookback + 1440)
            .collect(),
    );
    let fitted = model
        .fit(&history, &contract.targets)
        .unwrap_or_else(|e| panic!("{e}"));
    let forecast = fitted.predict(&history).unwrap_or_else(|e| panic!("{e}"));
    let peak = history.values.iter().copied().fold(0.0, f64::max);
    assert!(
        forecast
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0 && *v <= 2.0 * peak),
        "{forecast:?} (history peak {peak})"
    );
}
