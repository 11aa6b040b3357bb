//! Exports a [`LinearSpec`] as an ONNX model following the augur contract: the graph
//! computes the spec's documented formula in float32 with standard operators (opset 13).

use std::f64::consts::TAU;

use super::contract::{self, Contract};
use super::proto::{Attribute, Dim, FLOAT, Graph, ModelFile, Node, Tensor, TensorData, ValueInfo};
use crate::forecast::{Feature, LinearSpec, ModelError, Period, Transform};

/// ONNX IR version written (the one opset 13 belongs to).
pub const IR_VERSION: i64 = 7;
/// Version of the default operator set the graph uses.
pub const OPSET: i64 = 13;

/// The `augur.transform` value of a transform.
pub fn transform_name(transform: Transform) -> String {
    match transform {
        Transform::Identity => "identity".to_owned(),
        Transform::Log1p { scale: 1.0 } => "log1p".to_owned(),
        Transform::Log1p { scale } => format!("log1p(x/{scale})"),
    }
}

/// The `.onnx` file bytes of `spec`, with `trained_on` recorded in the metadata.
pub fn linear_model(spec: &LinearSpec, trained_on: &str) -> Result<Vec<u8>, ModelError> {
    Ok(linear_model_file(spec, trained_on)?.encode())
}

/// The ONNX model of `spec` before encoding.
pub(crate) fn linear_model_file(
    spec: &LinearSpec,
    trained_on: &str,
) -> Result<ModelFile, ModelError> {
    check_spec(spec)?;
    let contract = Contract {
        step_seconds: spec.step_seconds,
        lookback: spec.window(),
        targets: spec.targets.clone(),
        transform: transform_name(spec.transform),
        trained_on: trained_on.to_owned(),
        reads: Some(spec.input_ranges()),
    };
    Ok(ModelFile {
        ir_version: IR_VERSION,
        opset: OPSET,
        producer: format!("augur {}", env!("CARGO_PKG_VERSION")),
        graph: linear_graph(spec),
        metadata: contract.to_metadata(),
    })
}

/// Rejects a spec whose parts disagree in length, whose lags fall outside the lookback or
/// whose numbers are not finite.
fn check_spec(spec: &LinearSpec) -> Result<(), ModelError> {
    let invalid = |why: String| Err(ModelError::Invalid(format!("linear spec: {why}")));
    let features = spec.features.len();
    if spec.step_seconds <= 0 {
        return invalid(format!("step {}s is not positive", spec.step_seconds));
    }
    if spec.lookback == 0 {
        return invalid("lookback is 0".to_owned());
    }
    if spec.targets.is_empty() {
        return invalid("no targets".to_owned());
    }
    if let Transform::Log1p { scale } = spec.transform {
        // The graph computes in f32: a scale that is 0, subnormal or infinite there would
        // turn every forecast into NaN or 0.
        if !(scale as f32).is_normal() || scale < 0.0 {
            return invalid(format!(
                "log transform scale {scale} is not a positive normal f32"
            ));
        }
    }
    if spec.mean.len() != features || spec.scale.len() != features {
        return invalid(format!(
            "{features} features but {} means and {} scales",
            spec.mean.len(),
            spec.scale.len()
        ));
    }
    if spec.weights.len() != spec.targets.len() || spec.bias.len() != spec.targets.len() {
        return invalid(format!(
            "{} targets but {} weight rows and {} biases",
            spec.targets.len(),
            spec.weights.len(),
            spec.bias.len()
        ));
    }
    if let Some(row) = spec.weights.iter().position(|w| w.len() != features) {
        return invalid(format!(
            "weight row {row} has {} entries for {features} features",
            spec.weights[row].len()
        ));
    }
    for (i, feature) in spec.features.iter().enumerate() {
        let deepest = match *feature {
            Feature::Lag(lag) => lag,
            Feature::WindowMax { from, to } | Feature::WindowMean { from, to } => {
                if from > to {
                    return invalid(format!("feature {i} ({feature:?}) has from > to"));
                }
                to
            }
            Feature::Sin { .. } | Feature::Cos { .. } => 0,
        };
        if deepest >= spec.lookback {
            return invalid(format!(
                "feature {i} ({feature:?}) reads lag {deepest}, beyond lookback {}",
                spec.lookback
            ));
        }
    }
    let numbers = spec
        .mean
        .iter()
        .chain(&spec.scale)
        .chain(spec.weights.iter().flatten())
        .chain(&spec.bias);
    if numbers.clone().any(|v| !v.is_finite()) {
        return invalid("a mean, scale, weight or bias is not finite".to_owned());
    }
    if spec.scale.contains(&0.0) {
        return invalid("a feature scale is 0".to_owned());
    }
    Ok(())
}

/// Collects nodes and constants while the graph is built.
#[derive(Default)]
struct Builder {
    graph: Graph,
}

impl Builder {
    fn node(&mut self, op: &str, inputs: &[&str], output: &str, attributes: Vec<Attribute>) {
        self.graph.nodes.push(Node {
            op_type: op.to_owned(),
            name: format!("{op}_{}", self.graph.nodes.len()),
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
            outputs: vec![output.to_owned()],
            attributes,
        });
    }

    fn floats(&mut self, name: &str, dims: &[i64], values: impl IntoIterator<Item = f64>) {
        self.graph.initializers.push(Tensor {
            name: name.to_owned(),
            dims: dims.to_vec(),
            data: TensorData::Float(values.into_iter().map(|v| v as f32).collect()),
        });
    }

    fn indices(&mut self, name: &str, values: Vec<i64>) {
        self.graph.initializers.push(Tensor {
            name: name.to_owned(),
            dims: vec![values.len() as i64],
            data: TensorData::Int64(values),
        });
    }

    /// `Slice(data, [start], [end], axes = [1])`: columns `start..end` of `data`.
    fn slice(&mut self, data: &str, start: i64, end: i64, output: &str) {
        let starts = format!("{output}_start");
        let ends = format!("{output}_end");
        let axes = format!("{output}_axes");
        self.indices(&starts, vec![start]);
        self.indices(&ends, vec![end]);
        self.indices(&axes, vec![1]);
        self.node("Slice", &[data, &starts, &ends, &axes], output, vec![]);
    }

    /// `Concat(parts, axis = 1)` named `output`, or the only part itself.
    fn concat(&mut self, parts: Vec<String>, output: &str) -> String {
        if let [only] = parts.as_slice() {
            return only.clone();
        }
        let names: Vec<&str> = parts.iter().map(String::as_str).collect();
        self.node(
            "Concat",
            &names,
            output,
            vec![Attribute::Int("axis".to_owned(), 1)],
        );
        output.to_owned()
    }
}

/// Splits lags sorted oldest first into runs of consecutive lags: (oldest, newest) each.
fn runs(oldest_first: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &lag in oldest_first {
        match out.last_mut() {
            Some((_, newest)) if *newest == lag + 1 => *newest = lag,
            _ => out.push((lag, lag)),
        }
    }
    out
}

fn tensor_info(name: &str, width: usize) -> ValueInfo {
    ValueInfo {
        name: name.to_owned(),
        elem_type: FLOAT,
        dims: vec![Dim::Symbol("N".to_owned()), Dim::Fixed(width as i64)],
    }
}

/// The graph of a checked spec. Features are computed in groups (all lags, each window,
/// all sines, all cosines), so the columns are a permutation of the spec's feature order;
/// means, scales and weights are permuted the same way.
fn linear_graph(spec: &LinearSpec) -> Graph {
    // The width of `values`: the features' lookback, or the floor's span when longer.
    let lookback = spec.window();
    let mut b = Builder::default();
    b.graph.name = "augur_linear".to_owned();
    b.graph.inputs = vec![
        tensor_info(contract::VALUES, lookback),
        tensor_info(contract::PHASE, 2),
    ];
    b.graph.outputs = vec![tensor_info(contract::FORECAST, spec.targets.len())];

    // The lags any feature reads (lag 0 = the origin, always). When they are fewer than the
    // lookback, only those columns are transformed (a day-long lookback may read 80 of 1441).
    let used = spec.lags_read();
    // Column of each lag in x (oldest first; lags outside `used` are never asked for).
    // Columns are cut with Slice (a copy of row segments): ONNX Runtime's Gather along
    // axis 1 costs several times more per element.
    let mut columns: Vec<i64> = (0..lookback)
        .map(|lag| (lookback - 1 - lag) as i64)
        .collect();
    let x = match spec.transform {
        Transform::Identity => contract::VALUES,
        Transform::Log1p { scale } => {
            let source = if used.len() < lookback {
                let oldest_first: Vec<usize> = used.iter().rev().copied().collect();
                let pieces: Vec<String> = runs(&oldest_first)
                    .into_iter()
                    .enumerate()
                    .map(|(k, (oldest, newest))| {
                        let name = format!("used_{k}");
                        let start = (lookback - 1 - oldest) as i64;
                        b.slice(contract::VALUES, start, (lookback - newest) as i64, &name);
                        name
                    })
                    .collect();
                for (position, &lag) in oldest_first.iter().enumerate() {
                    columns[lag] = position as i64;
                }
                b.concat(pieces, "used_values")
            } else {
                contract::VALUES.to_owned()
            };
            // ln(1 + x / s) = ln(s + x) − ln(s). The graph takes ln(s + x); the − ln(s)
            // is folded into the level features' means and the inverse below
            // (exp(z + ln s) − s = s · (exp(z) − 1)), so a scale costs no pass of its own.
            b.floats("log_offset", &[1], [scale]);
            b.node(
                "Add",
                &[&source, "log_offset"],
                "values_plus_offset",
                vec![],
            );
            b.node("Log", &["values_plus_offset"], "x", vec![]);
            "x"
        }
    };
    // What the graph's transformed values exceed the spec's by: ln(s), every level feature
    // (lags, windows) and u0 alike.
    let shift = match spec.transform {
        Transform::Identity => 0.0,
        Transform::Log1p { scale } => scale.ln(),
    };
    let level_shift = |i: usize| {
        if spec.features[i].is_level() {
            shift
        } else {
            0.0
        }
    };
    let column = |lag: usize| columns[lag];
    b.slice(x, column(0), column(0) + 1, "u0");

    // Feature groups: (tensor name, spec feature indices of its columns).
    let mut parts: Vec<(String, Vec<usize>)> = Vec::new();
    let mut lags: Vec<(usize, usize)> = spec
        .features
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match *f {
            Feature::Lag(lag) => Some((lag, i)),
            _ => None,
        })
        .collect();
    lags.sort_by(|a, b| b.cmp(a));
    let mut rest = lags.as_slice();
    while let Some(&(oldest, _)) = rest.first() {
        // The longest run of consecutive lags oldest, oldest - 1, … .
        let len = rest
            .iter()
            .enumerate()
            .take_while(|&(k, &(lag, _))| lag + k == oldest)
            .count();
        let (run, tail) = rest.split_at(len);
        let newest = run[len - 1].0;
        let name = format!("lags_{}", parts.len());
        b.slice(x, column(oldest), column(newest) + 1, &name);
        parts.push((name, run.iter().map(|&(_, i)| i).collect()));
        rest = tail;
    }
    for (i, feature) in spec.features.iter().enumerate() {
        let (from, to, op) = match *feature {
            Feature::WindowMax { from, to } => (from, to, "ReduceMax"),
            Feature::WindowMean { from, to } => (from, to, "ReduceMean"),
            _ => continue,
        };
        let name = format!("window_{i}");
        let cells = format!("{name}_cells");
        // Lags from..=to sit in adjacent columns of x (oldest first): a Slice, which
        // copies row segments, is several times cheaper than a Gather of the columns.
        b.slice(x, column(to), column(from) + 1, &cells);
        b.node(
            op,
            &[&cells],
            &name,
            vec![
                Attribute::Ints("axes".to_owned(), vec![1]),
                Attribute::Int("keepdims".to_owned(), 1),
            ],
        );
        parts.push((name, vec![i]));
    }
    for (op, want_sin) in [("Sin", true), ("Cos", false)] {
        let group: Vec<(usize, Period, u32)> = spec
            .features
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match *f {
                Feature::Sin { period, harmonic } if want_sin => Some((i, period, harmonic)),
                Feature::Cos { period, harmonic } if !want_sin => Some((i, period, harmonic)),
                _ => None,
            })
            .collect();
        if group.is_empty() {
            continue;
        }
        let name = op.to_lowercase();
        let angles = format!("{name}_angle");
        let turns = format!("{name}_turns");
        // angles = phase · turns, turns[p][c] = 2π·harmonic when feature c follows period
        // p, else 0: exactly phase·2π·harmonic, for all features in one MatMul.
        let width = group.len();
        let mut matrix = vec![0.0; 2 * width];
        for (c, &(_, period, harmonic)) in group.iter().enumerate() {
            let row = match period {
                Period::Day => 0,
                Period::Week => 1,
            };
            matrix[row * width + c] = TAU * f64::from(harmonic);
        }
        b.floats(&turns, &[2, width as i64], matrix);
        b.node("MatMul", &[contract::PHASE, &turns], &angles, vec![]);
        b.node(op, &[&angles], &name, vec![]);
        parts.push((name, group.iter().map(|&(i, _, _)| i).collect()));
    }

    let order: Vec<usize> = parts
        .iter()
        .flat_map(|(_, idx)| idx.iter().copied())
        .collect();
    let targets = spec.targets.len() as i64;
    b.floats("bias", &[targets], spec.bias.iter().copied());
    if order.is_empty() {
        b.node("Add", &["u0", "bias"], "z", vec![]);
    } else {
        let features = b.concat(parts.iter().map(|(n, _)| n.clone()).collect(), "features");
        let width = order.len() as i64;
        b.floats(
            "mean",
            &[width],
            order.iter().map(|&i| spec.mean[i] + level_shift(i)),
        );
        b.floats("scale", &[width], order.iter().map(|&i| spec.scale[i]));
        // weights as [features, targets] so that standard [N, F] · weights = [N, T].
        b.floats(
            "weights",
            &[width, targets],
            order
                .iter()
                .flat_map(|&i| spec.weights.iter().map(move |row| row[i])),
        );
        b.node("Sub", &[&features, "mean"], "centred", vec![]);
        b.node("Div", &["centred", "scale"], "standard", vec![]);
        b.node("MatMul", &["standard", "weights"], "mixed", vec![]);
        b.node("Add", &["mixed", "bias"], "biased", vec![]);
        b.node("Add", &["biased", "u0"], "z", vec![]);
    }
    let y = match spec.transform {
        Transform::Identity => "z",
        Transform::Log1p { .. } => {
            // z here is the spec's z + ln(s): exp of it less s is s · (exp(z) − 1).
            b.node("Exp", &["z"], "exp_z", vec![]);
            b.node("Sub", &["exp_z", "log_offset"], "y", vec![]);
            "y"
        }
    };
    if spec.floor == 0 {
        b.node("Relu", &[y], contract::FORECAST, vec![]);
    } else {
        // max(0, y, lowest of the last `floor` raw values), as `evaluate_spec`.
        b.node("Relu", &[y], "clipped", vec![]);
        b.slice(
            contract::VALUES,
            (lookback - spec.floor) as i64,
            lookback as i64,
            "floor_cells",
        );
        b.node(
            "ReduceMin",
            &["floor_cells"],
            "lowest",
            vec![
                Attribute::Ints("axes".to_owned(), vec![1]),
                Attribute::Int("keepdims".to_owned(), 1),
            ],
        );
        b.node("Max", &["clipped", "lowest"], contract::FORECAST, vec![]);
    }
    b.graph
}
