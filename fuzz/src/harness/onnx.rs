//! Target `onnx`: model files, as any bytes or as edits of the shipped `models/default.onnx`
//! (its contract metadata replaced by the fuzzer's, bytes overwritten, inserted, removed),
//! loaded through ONNX Runtime and checked against the contract; a file that loads must
//! forecast, or refuse to, within bounded memory.

use std::path::PathBuf;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use augur::forecast::onnx::OnnxModel;
use augur::forecast::onnx::contract::KEYS;
use augur::forecast::{History, Model as _};

/// The model augur ships: a valid file to start edits from.
const BASE: &[u8] = include_bytes!("../../../models/default.onnx");

/// `metadata_props` (field 14 of `ModelProto`).
const METADATA_FIELD: u64 = 14;

const VALUES: &[&str] = &[
    "augur-forecast-v1",
    "augur-forecast-v2",
    "60",
    "0",
    "-60",
    "1",
    "30",
    "9223372036854775807",
    "1e3",
    " 60 ",
    "10081",
    "10080",
    "240",
    "18446744073709551615",
    "4294967296",
    "1000000000",
    "max@10,point@10",
    "max@10",
    "point@10",
    "max@0",
    "max@18446744073709551615",
    "mean@3",
    "max@10,max@10",
    "0-265",
    "0-0,5-2",
    "0-18446744073709551615",
    "3-1",
    "identity",
    "log1p",
    "",
    "\u{ff}",
];

#[derive(Debug, Arbitrary)]
enum Input {
    Raw(Vec<u8>),
    Edited {
        metadata: Option<Vec<(u8, Piece)>>,
        edits: Vec<Edit>,
    },
}

#[derive(Debug, Arbitrary)]
enum Piece {
    Known(u8),
    Any(String),
}

#[derive(Debug, Arbitrary)]
enum Edit {
    Overwrite(u16, Vec<u8>),
    Insert(u16, Vec<u8>),
    Remove(u16, u8),
    Truncate(u16),
}

fn varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The top-level fields of `bytes` without the ones numbered `field` (None if not protobuf).
fn without_field(bytes: &[u8], field: u64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let key = read_varint(bytes, &mut at)?;
        match key & 7 {
            0 => {
                read_varint(bytes, &mut at)?;
            }
            1 => at += 8,
            2 => {
                let len = usize::try_from(read_varint(bytes, &mut at)?).ok()?;
                at = at.checked_add(len)?;
            }
            5 => at += 4,
            _ => return None,
        }
        let end = at.min(bytes.len());
        if key >> 3 != field {
            out.extend_from_slice(&bytes[start..end]);
        }
    }
    Some(out)
}

fn string_field(number: u64, text: &[u8], out: &mut Vec<u8>) {
    varint(number << 3 | 2, out);
    varint(text.len() as u64, out);
    out.extend_from_slice(text);
}

fn edit(mut bytes: Vec<u8>, metadata: Option<&[(u8, Piece)]>, edits: &[Edit]) -> Vec<u8> {
    if let Some(entries) = metadata {
        bytes = without_field(&bytes, METADATA_FIELD).unwrap_or(bytes);
        for (key, value) in entries {
            let key = KEYS[usize::from(*key) % KEYS.len()];
            let value = match value {
                Piece::Known(i) => VALUES[usize::from(*i) % VALUES.len()].to_owned(),
                Piece::Any(s) => s.clone(),
            };
            let mut entry = Vec::new();
            string_field(1, key.as_bytes(), &mut entry);
            string_field(2, value.as_bytes(), &mut entry);
            string_field(METADATA_FIELD, &entry, &mut bytes);
        }
    }
    for e in edits.iter().take(8) {
        let at = |i: u16| usize::from(i) % (bytes.len() + 1);
        match e {
            Edit::Overwrite(i, data) => {
                let at = at(*i);
                for (j, b) in data.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + j) {
                        *slot = *b;
                    }
                }
            }
            Edit::Insert(i, data) => {
                let at = at(*i);
                bytes.splice(at..at, data.iter().copied());
            }
            Edit::Remove(i, n) => {
                let at = at(*i);
                let end = (at + usize::from(*n)).min(bytes.len());
                bytes.drain(at..end);
            }
            Edit::Truncate(i) => bytes.truncate(at(*i)),
        }
    }
    bytes
}

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("augur-fuzz-{}.onnx", std::process::id()))
    })
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(input) = Input::arbitrary(&mut u) else {
        return;
    };
    let bytes = match input {
        Input::Raw(bytes) => bytes,
        Input::Edited { metadata, edits } => edit(BASE.to_vec(), metadata.as_deref(), &edits),
    };
    let path = scratch();
    if std::fs::write(path, &bytes).is_err() {
        return;
    }
    let loaded = OnnxModel::load(path);
    let _ = std::fs::remove_file(path);
    let model = match loaded {
        Ok(model) => model,
        Err(error) => {
            let shown = error.to_string();
            assert!(
                shown.contains(&path.display().to_string()),
                "error without the file: {shown}"
            );
            return;
        }
    };
    let contract = model.contract();
    let buckets = contract.lookback.min(20_000) + 1;
    let history = History::new(
        1_700_000_000,
        contract.step_seconds,
        (0..buckets).map(|i| (i % 17) as f64).collect(),
    );
    if let Ok(fitted) = model.fit(&history, &contract.targets) {
        let _ = fitted.predict(&history);
    }
}
