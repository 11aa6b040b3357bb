//! ONNX inference benchmark: one `predict_batch` of 1,000 series through an exported linear
//! model on the real ONNX Runtime, including building the inputs from the histories
//! (forward-fill of the lags the model reads, origin phase). Three model sizes: lookback 64
//! (recent lags and windows), 1,441 (adds the same minute yesterday) and 10,081 (adds the
//! same minute a week ago, like the `linear` model's defaults at a 60 s step).
//!
//! Run: `cargo bench --bench onnx`. Under `cargo test` it runs a short smoke case. Needs the
//! library `.ci/onnxruntime` (run by `.ci/setup`) puts in .cache/onnxruntime/.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use augur::forecast::onnx::{OnnxModel, runtime, writer};
use augur::forecast::{Feature, History, LinearSpec, Model, Period, Target, Transform};
use augur::testing::percentile;

fn spec(lookback: usize) -> LinearSpec {
    let mut features: Vec<Feature> = (0..8).map(Feature::Lag).collect();
    features.extend([
        Feature::WindowMax { from: 0, to: 9 },
        Feature::WindowMean { from: 0, to: 9 },
        Feature::WindowMax { from: 0, to: 59 },
        Feature::WindowMean { from: 0, to: 59 },
    ]);
    for day_or_week in [1440, 10080] {
        if lookback > day_or_week {
            features.extend([
                Feature::Lag(day_or_week),
                Feature::WindowMax {
                    from: day_or_week - 10,
                    to: day_or_week,
                },
            ]);
        }
    }
    for period in [Period::Day, Period::Week] {
        for harmonic in 1..=3 {
            features.push(Feature::Sin { period, harmonic });
            features.push(Feature::Cos { period, harmonic });
        }
    }
    let targets = vec![Target::Max(10), Target::Point(10)];
    let n = features.len();
    LinearSpec {
        step_seconds: 60,
        lookback,
        transform: Transform::LOG1P,
        mean: vec![5.0; n],
        scale: vec![1.5; n],
        weights: targets
            .iter()
            .enumerate()
            .map(|(j, _)| (0..n).map(|i| ((i + j) % 7) as f64 * 0.01 - 0.03).collect())
            .collect(),
        bias: vec![0.05; targets.len()],
        floor: 0,
        features,
        targets,
    }
}

fn histories(count: usize, len: usize) -> Vec<History> {
    (0..count)
        .map(|s| {
            let values = (0..len)
                .map(|i| {
                    if (i * 7 + s) % 97 == 0 {
                        f64::NAN
                    } else {
                        100.0 + ((i + s) % 50) as f64
                    }
                })
                .collect();
            History::new(1_704_067_200 + s as i64 * 60, 60, values)
        })
        .collect()
}

/// CPU time this process has used (user + system), from /proc/self/stat (clock ticks of
/// 10 ms); `None` where /proc is not available.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// What `predict_batch` does before calling ONNX Runtime: write the forward-filled lags
/// the model reads (`augur.reads`) of each history into the reused float32 buffer (a copy
/// of augur's code, for timing).
fn prepare_only(
    histories: &[&History],
    lookback: usize,
    ranges: &[(usize, usize)],
    buffer: &mut Vec<f32>,
) -> f32 {
    buffer.resize(histories.len() * lookback, 0.0);
    for (row, history) in histories.iter().enumerate() {
        let values = &history.values;
        let len = values.len();
        let cells = &mut buffer[row * lookback..(row + 1) * lookback];
        let skipped = len - lookback;
        for &(from, to) in ranges {
            let (oldest, newest) = (len - 1 - to, len - 1 - from);
            let mut last = values[..oldest]
                .iter()
                .rev()
                .chain(values[oldest..].iter())
                .copied()
                .find(|v| !v.is_nan())
                .unwrap();
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
    }
    buffer[buffer.len() - 1]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    runtime::load(None).unwrap_or_else(|e| panic!("{e}; run `bash .ci/setup`"));
    let (batch, rounds) = if full { (1_000, 500) } else { (10, 3) };
    let dir = tempfile::tempdir().unwrap();
    for lookback in [64, 1441, 10081] {
        let spec = spec(lookback);
        let path = dir.path().join(format!("linear-{lookback}.onnx"));
        std::fs::write(&path, writer::linear_model(&spec, "bench").unwrap()).unwrap();
        let model = OnnxModel::load(&path).unwrap();
        let series = histories(batch, lookback + 120);
        let refs: Vec<&History> = series.iter().collect();
        let fitted = model.fit(&series[0], &spec.targets).unwrap();
        for _ in 0..rounds.min(20) {
            let out = fitted.predict_batch(&refs);
            assert_eq!(out.len(), batch);
            for forecast in out {
                let forecast = forecast.unwrap();
                assert_eq!(forecast.len(), 2);
                assert!(
                    forecast.iter().all(|v| v.is_finite() && *v > 0.0),
                    "{forecast:?}"
                );
            }
        }
        let mut times = Vec::with_capacity(rounds);
        let cpu_before = cpu_time();
        for _ in 0..rounds {
            let started = Instant::now();
            let out = fitted.predict_batch(&refs);
            times.push(started.elapsed());
            assert_eq!(out.len(), batch);
        }
        let cpu = cpu_before
            .zip(cpu_time())
            .map(|(before, after)| (after - before) / rounds as u32);
        times.sort();
        println!(
            "onnx lookback {lookback} ({} features, {} targets), batch {batch}, {rounds} rounds: median {:?} p90 {:?} min {:?} max {:?}, CPU per batch {cpu:?}",
            spec.features.len(),
            spec.targets.len(),
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            times[0],
            times[times.len() - 1],
        );
        let mut loop_cpu = None;
        if full {
            // The same rounds with the histories prepared but ONNX Runtime not called.
            let ranges = model.contract().reads.unwrap_or(vec![(0, lookback - 1)]);
            let mut buffer = Vec::new();
            let before = cpu_time();
            let mut sink = 0.0f32;
            for _ in 0..rounds {
                sink += prepare_only(&refs, lookback, &ranges, &mut buffer);
            }
            loop_cpu = before.zip(cpu_time()).map(|(b, a)| (a - b) / rounds as u32);
            assert!(sink.is_finite());
        }
        if let Some(prep) = loop_cpu {
            println!(
                "  of which building the inputs (forward-fill of the lags read): CPU per batch {prep:?}"
            );
        }
    }
    // The shipped model on 1,000 origins of the nasa trace (when the shared traces are there).
    let trace = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/nasa_ksc_http_1995_07_60s.csv");
    if let Ok(history) = augur::forecast::trace::load_csv(&trace) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.onnx");
        let model = OnnxModel::load(&path).unwrap();
        let contract = model.contract();
        let keep = contract.lookback + 10;
        let series: Vec<History> = (0..batch)
            .map(|k| {
                let end = history.len() - k;
                let start = end - keep;
                History::new(
                    history.start + start as i64 * history.step,
                    history.step,
                    history.values[start..end].to_vec(),
                )
            })
            .collect();
        let refs: Vec<&History> = series.iter().collect();
        let fitted = model.fit(&series[0], &contract.targets).unwrap();
        for _ in 0..rounds.min(20) {
            for forecast in fitted.predict_batch(&refs) {
                assert!(forecast.unwrap().iter().all(|v| v.is_finite() && *v >= 0.0));
            }
        }
        let mut times = Vec::with_capacity(rounds);
        let cpu_before = cpu_time();
        for _ in 0..rounds {
            let started = Instant::now();
            fitted.predict_batch(&refs);
            times.push(started.elapsed());
        }
        let cpu = cpu_before
            .zip(cpu_time())
            .map(|(before, after)| (after - before) / rounds as u32);
        times.sort();
        println!(
            "models/default.onnx (lookback {}, reads {}), batch {batch} of nasa origins, {rounds} rounds: median {:?} p90 {:?} min {:?} max {:?}, CPU per batch {cpu:?}",
            contract.lookback,
            contract
                .reads
                .map(|r| augur::forecast::onnx::contract::format_reads(&r))
                .unwrap_or_default(),
            percentile(&times, 0.5),
            percentile(&times, 0.9),
            times[0],
            times[times.len() - 1],
        );
    }
    if let Some(library) = runtime::loaded_library() {
        println!("ONNX Runtime: {}", library.display());
    }
}
