//! Mutation tests of model files: truncated, bit-flipped, re-lengthened and re-structured
//! versions of a valid exported model must load or give an error naming the file, and a
//! mutant that loads must forecast (or refuse to) without panicking.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Instant;

use super::runtime::test_environment;
use super::tests::{load_no_panic, temp_dir, write};
use super::writer::linear_model;
use crate::forecast::{Feature, History, LinearSpec, Model, Period, Target, Transform};

/// A small exported model reading lags, windows and both phases (every part of the writer).
fn small_spec() -> LinearSpec {
    let features = vec![
        Feature::Lag(0),
        Feature::Lag(3),
        Feature::WindowMax { from: 0, to: 2 },
        Feature::WindowMean { from: 1, to: 4 },
        Feature::Sin {
            period: Period::Day,
            harmonic: 1,
        },
        Feature::Cos {
            period: Period::Week,
            harmonic: 2,
        },
    ];
    LinearSpec {
        step_seconds: 60,
        lookback: 6,
        transform: Transform::LOG1P,
        mean: vec![1.0; features.len()],
        scale: vec![2.0; features.len()],
        weights: vec![vec![0.1; features.len()], vec![-0.05; features.len()]],
        bias: vec![0.2, -0.1],
        floor: 0,
        features,
        targets: vec![Target::Max(3), Target::Point(2)],
    }
}

/// A protobuf field as read, keeping its raw bytes so that re-encoding an unchanged tree
/// gives back the input exactly (length-delimited bodies that parse as messages are trees).
#[derive(Clone)]
struct Field {
    key: Vec<u8>,
    body: Body,
}

#[derive(Clone)]
enum Body {
    Varint(Vec<u8>),
    Fixed(Vec<u8>),
    Bytes(Vec<u8>),
    Message(Vec<Field>),
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

fn parse(bytes: &[u8]) -> Option<Vec<Field>> {
    let mut fields = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let key = read_varint(bytes, &mut at)?;
        if key >> 3 == 0 {
            return None;
        }
        let key = bytes[start..at].to_vec();
        let wire = key[0] & 7;
        let body = match wire {
            0 => {
                let from = at;
                read_varint(bytes, &mut at)?;
                Body::Varint(bytes[from..at].to_vec())
            }
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                let body = bytes.get(at..at + n)?.to_vec();
                at += n;
                Body::Fixed(body)
            }
            2 => {
                let len = usize::try_from(read_varint(bytes, &mut at)?).ok()?;
                let body = bytes.get(at..at.checked_add(len)?)?;
                at += len;
                match parse(body) {
                    Some(inner) if !inner.is_empty() => Body::Message(inner),
                    _ => Body::Bytes(body.to_vec()),
                }
            }
            _ => return None,
        };
        fields.push(Field { key, body });
    }
    Some(fields)
}

fn encode(fields: &[Field]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&field.key);
        match &field.body {
            Body::Varint(raw) | Body::Fixed(raw) => out.extend_from_slice(raw),
            Body::Bytes(raw) => {
                out.extend(varint(raw.len() as u64));
                out.extend_from_slice(raw);
            }
            Body::Message(inner) => {
                let inner = encode(inner);
                out.extend(varint(inner.len() as u64));
                out.extend(inner);
            }
        }
    }
    out
}

/// Paths (indices from the top) of every field in the tree.
fn paths(fields: &[Field], prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    for (i, field) in fields.iter().enumerate() {
        prefix.push(i);
        out.push(prefix.clone());
        if let Body::Message(inner) = &field.body {
            paths(inner, prefix, out);
        }
        prefix.pop();
    }
}

/// Applies `change` to the list holding the field at `path` (with the field's index).
fn edit(fields: &mut Vec<Field>, path: &[usize], change: &dyn Fn(&mut Vec<Field>, usize)) {
    match path {
        [] => {}
        [last] => change(fields, *last),
        [first, rest @ ..] => {
            if let Some(Field {
                body: Body::Message(inner),
                ..
            }) = fields.get_mut(*first)
            {
                edit(inner, rest, change);
            }
        }
    }
}

/// Encoded bytes of every length prefix in `bytes` (top level and nested), as
/// (offset of the length varint, its byte count).
fn length_prefixes(bytes: &[u8], base: usize, out: &mut Vec<(usize, usize)>) {
    let mut at = 0;
    while at < bytes.len() {
        let Some(key) = read_varint(bytes, &mut at) else {
            return;
        };
        match key & 7 {
            0 => {
                if read_varint(bytes, &mut at).is_none() {
                    return;
                }
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let from = at;
                let Some(len) = read_varint(bytes, &mut at) else {
                    return;
                };
                out.push((base + from, at - from));
                let Some(body) = usize::try_from(len)
                    .ok()
                    .and_then(|len| bytes.get(at..at.checked_add(len)?))
                else {
                    return;
                };
                if parse(body).is_some_and(|f| !f.is_empty()) {
                    length_prefixes(body, base + at, out);
                }
                at += body.len();
            }
            _ => return,
        }
    }
}

/// Every mutant of `original`, deterministic: truncations, byte flips, absurd and off-by-one
/// length prefixes, duplicated and dropped fields, extreme varints.
fn mutants(original: &[u8], seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for len in 0..original.len() {
        out.push((format!("truncated to {len}"), original[..len].to_vec()));
    }
    for _ in 0..600 {
        let at = rng.usize(..original.len().max(1));
        let mask = rng.u8(1..=255);
        let mut bytes = original.to_vec();
        bytes[at] ^= mask;
        out.push((format!("byte {at} ^= {mask:#04x}"), bytes));
    }
    let mut prefixes = Vec::new();
    length_prefixes(original, 0, &mut prefixes);
    for &(at, width) in &prefixes {
        let mut cursor = at;
        let Some(len) = read_varint(original, &mut cursor) else {
            continue;
        };
        let mut lengths = vec![
            len + 1,
            len + 1000,
            0x7fff_ffff,
            0xffff_ffff,
            1 << 32 | len,
            u64::MAX,
        ];
        if len > 0 {
            lengths.push(len - 1);
        }
        for new in lengths {
            let mut bytes = original[..at].to_vec();
            bytes.extend(varint(new));
            bytes.extend_from_slice(&original[at + width..]);
            out.push((format!("length at {at}: {len} -> {new}"), bytes));
        }
    }
    let Some(tree) = parse(original) else {
        panic!("the original model does not parse");
    };
    let mut all = Vec::new();
    paths(&tree, &mut Vec::new(), &mut all);
    for path in &all {
        let mut twice = tree.clone();
        edit(&mut twice, path, &|list, i| {
            let copy = list[i].clone();
            list.insert(i + 1, copy);
        });
        out.push((format!("field {path:?} repeated"), encode(&twice)));
        let mut dropped = tree.clone();
        edit(&mut dropped, path, &|list, i| {
            list.remove(i);
        });
        out.push((format!("field {path:?} dropped"), encode(&dropped)));
        let is_varint = {
            let mut probe = false;
            let mut walk: &[Field] = &tree;
            for (depth, &i) in path.iter().enumerate() {
                match walk.get(i).map(|f| &f.body) {
                    Some(Body::Message(inner)) => walk = inner,
                    Some(Body::Varint(_)) if depth + 1 == path.len() => probe = true,
                    _ => break,
                }
            }
            probe
        };
        if is_varint {
            for value in [0, 1, 11, u64::MAX, i64::MAX as u64, 1 << 31, 1 << 40] {
                let mut changed = tree.clone();
                edit(&mut changed, path, &|list, i| {
                    list[i].body = Body::Varint(varint(value));
                });
                out.push((format!("varint {path:?} = {value}"), encode(&changed)));
            }
        }
    }
    out
}

#[test]
fn the_tree_walker_reencodes_exactly() {
    let bytes = linear_model(&small_spec(), "test").unwrap_or_else(|e| panic!("{e}"));
    let tree = parse(&bytes).unwrap_or_else(|| panic!("does not parse"));
    assert!(encode(&tree) == bytes);
}

/// Loads every `stride`th mutant of `original`; returns (mutants loaded, of them those
/// that loaded).
fn load_mutants(original: &[u8], seed: u64, stride: usize) -> (usize, usize) {
    let dir = temp_dir();
    let series: Vec<History> = (0..3)
        .map(|i| History::new(i * 7_919, 60, (0..8).map(|v| f64::from(v) + 1.0).collect()))
        .collect();
    let refs: Vec<&History> = series.iter().collect();
    let mut loaded = 0;
    let cases: Vec<(String, Vec<u8>)> = mutants(original, seed)
        .into_iter()
        .step_by(stride)
        .collect();
    for (i, (what, bytes)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("m{i}.onnx"), bytes);
        match load_no_panic(&path, what) {
            Ok(model) => {
                loaded += 1;
                let contract = model.contract();
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    model
                        .fit(&series[0], &contract.targets)
                        .map(|fitted| (fitted.lookback(), fitted.predict_batch(&refs)))
                }));
                assert!(outcome.is_ok(), "forecasting with {what} panicked");
            }
            Err(why) => assert!(
                why.starts_with(&format!("{}: ", path.display())),
                "{what}: the error does not name the file: {why}"
            ),
        }
        let _ = std::fs::remove_file(&path);
    }
    (cases.len(), loaded)
}

#[test]
fn mutated_model_files_never_panic() {
    test_environment();
    let started = Instant::now();
    let original = linear_model(&small_spec(), "test").unwrap_or_else(|e| panic!("{e}"));
    let (small, small_loaded) = load_mutants(&original, 42, 1);
    let shipped = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.onnx"))
        .unwrap_or_else(|e| panic!("models/default.onnx: {e}"));
    let (default, default_loaded) = load_mutants(&shipped, 7, 6);
    eprintln!(
        "{small} mutants of a small model ({small_loaded} loaded), {default} of models/default.onnx ({default_loaded} loaded), in {:?}",
        started.elapsed()
    );
    // Some mutants (a changed weight, a dropped name) still load: the test reaches predict.
    assert!(small_loaded > 0 && default_loaded > 0);
}
