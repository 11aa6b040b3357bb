//! The augur ONNX forecast contract (`augur-forecast-v1`): metadata keys, tensor names and
//! shapes, and the check a model file must pass before augur serves it.

use std::fmt;

use crate::forecast::Target;

/// Value of `augur.contract` this version of augur reads and writes.
pub const CONTRACT: &str = "augur-forecast-v1";
/// Input: raw values, float32 `[N, lookback]`, oldest first, last = origin bucket.
pub const VALUES: &str = "values";
/// Input: phase of the origin bucket's start, float32 `[N, 2]` (day, week). Optional.
pub const PHASE: &str = "phase";
/// Output: one column per target, float32 `[N, T]`.
pub const FORECAST: &str = "forecast";

/// Metadata keys.
pub const KEY_CONTRACT: &str = "augur.contract";
pub const KEY_STEP: &str = "augur.step_seconds";
pub const KEY_LOOKBACK: &str = "augur.lookback";
pub const KEY_TARGETS: &str = "augur.targets";
pub const KEY_TRANSFORM: &str = "augur.transform";
pub const KEY_TRAINED_ON: &str = "augur.trained_on";
/// Optional: the lags (columns counted back from the origin) the model reads, e.g.
/// `0-239,1428-1440`; augur then fills only those columns of `values`.
pub const KEY_READS: &str = "augur.reads";
/// Every metadata key the contract reads.
pub const KEYS: [&str; 7] = [
    KEY_CONTRACT,
    KEY_STEP,
    KEY_LOOKBACK,
    KEY_TARGETS,
    KEY_TRANSFORM,
    KEY_TRAINED_ON,
    KEY_READS,
];

/// What a contract-following model declares about itself in `metadata_props`.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// Bucket length the model expects, in seconds.
    pub step_seconds: i64,
    /// Columns of the `values` input.
    pub lookback: usize,
    /// What each column of `forecast` predicts, in order.
    pub targets: Vec<Target>,
    /// How the model transforms values internally (`identity`, `log1p`, …); informational.
    pub transform: String,
    /// Free text: what data the model was trained on.
    pub trained_on: String,
    /// The lags the model reads, as inclusive ranges `(from, to)` sorted and disjoint (lag 0
    /// = the origin, the last column); `None`: all of them.
    pub reads: Option<Vec<(usize, usize)>>,
}

impl Contract {
    /// The `metadata_props` entries describing this contract.
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let mut entries = vec![
            (KEY_CONTRACT.to_owned(), CONTRACT.to_owned()),
            (KEY_STEP.to_owned(), self.step_seconds.to_string()),
            (KEY_LOOKBACK.to_owned(), self.lookback.to_string()),
            (KEY_TARGETS.to_owned(), format_targets(&self.targets)),
            (KEY_TRANSFORM.to_owned(), self.transform.clone()),
            (KEY_TRAINED_ON.to_owned(), self.trained_on.clone()),
        ];
        if let Some(reads) = &self.reads {
            entries.push((KEY_READS.to_owned(), format_reads(reads)));
        }
        entries
    }

    /// Reads the contract from metadata (`get(key)` returns a `metadata_props` value).
    /// The error says which key is missing or invalid.
    pub fn from_metadata(get: impl Fn(&str) -> Option<String>) -> Result<Contract, String> {
        let required = |key: &str| {
            get(key).ok_or_else(|| format!("metadata `{key}` is missing (see docs/onnx.md)"))
        };
        let contract = required(KEY_CONTRACT)?;
        if contract != CONTRACT {
            return Err(format!(
                "metadata `{KEY_CONTRACT}` is {contract:?}; this augur reads {CONTRACT:?}"
            ));
        }
        let step = required(KEY_STEP)?;
        let step_seconds = step
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                format!("metadata `{KEY_STEP}` is {step:?}, expected a positive number of seconds")
            })?;
        let lookback_text = required(KEY_LOOKBACK)?;
        let lookback = lookback_text
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| {
                format!(
                    "metadata `{KEY_LOOKBACK}` is {lookback_text:?}, expected a positive integer"
                )
            })?;
        let targets = parse_targets(&required(KEY_TARGETS)?)
            .map_err(|why| format!("metadata `{KEY_TARGETS}`: {why}"))?;
        let transform = required(KEY_TRANSFORM)?;
        let trained_on = get(KEY_TRAINED_ON).unwrap_or_default();
        let reads = match get(KEY_READS) {
            None => None,
            Some(text) => Some(
                parse_reads(&text, lookback)
                    .map_err(|why| format!("metadata `{KEY_READS}`: {why}"))?,
            ),
        };
        Ok(Contract {
            step_seconds,
            lookback,
            targets,
            transform,
            trained_on,
            reads,
        })
    }

    /// Checks the model's declared inputs and outputs against the contract. `-1` in a shape
    /// is a symbolic (any-size) dimension.
    pub fn check_signature(
        &self,
        inputs: &[Signature],
        outputs: &[Signature],
    ) -> Result<(), String> {
        let values = inputs
            .iter()
            .find(|i| i.name == VALUES)
            .ok_or_else(|| format!("no input `{VALUES}` (inputs: {})", names(inputs)))?;
        let says = format!("metadata says lookback {}", self.lookback);
        check_tensor("input", values, self.lookback as i64, &says)?;
        if let Some(phase) = inputs.iter().find(|i| i.name == PHASE) {
            check_tensor("input", phase, 2, "the contract says 2 (day, week)")?;
        }
        if let Some(other) = inputs.iter().find(|i| i.name != VALUES && i.name != PHASE) {
            return Err(format!(
                "unexpected input `{}`; the contract has only `{VALUES}` and `{PHASE}`",
                other.name
            ));
        }
        let forecast = outputs
            .iter()
            .find(|o| o.name == FORECAST)
            .ok_or_else(|| format!("no output `{FORECAST}` (outputs: {})", names(outputs)))?;
        let says = format!(
            "metadata lists {} targets ({})",
            self.targets.len(),
            format_targets(&self.targets)
        );
        check_tensor("output", forecast, self.targets.len() as i64, &says)
    }
}

/// An input or output as the runtime reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// Tensor name.
    pub name: String,
    /// Element type as ONNX names it (`float32`, `float64`, …); `None` for a non-tensor.
    pub elem: Option<String>,
    /// Shape; `-1` for a symbolic dimension.
    pub dims: Vec<i64>,
}

fn check_tensor(kind: &str, tensor: &Signature, width: i64, says: &str) -> Result<(), String> {
    let name = &tensor.name;
    match tensor.elem.as_deref() {
        Some("float32") => {}
        Some(other) => return Err(format!("{kind} `{name}` is {other}, expected float32")),
        None => return Err(format!("{kind} `{name}` is not a tensor")),
    }
    let shown = ShowShape(&tensor.dims);
    if tensor.dims.len() != 2 {
        return Err(format!(
            "{kind} `{name}` has shape {shown}, expected rank 2 [N, {width}]"
        ));
    }
    let columns = tensor.dims[1];
    if columns != -1 && columns != width {
        return Err(format!("{kind} `{name}` has shape {shown}, {says}"));
    }
    // augur runs one row per series in a batch of any size: a fixed first dimension (a
    // model exported without a dynamic batch axis) would fail every other batch size.
    if tensor.dims[0] != -1 {
        return Err(format!(
            "{kind} `{name}` has shape {shown}: the first dimension must be symbolic (the batch N), export the model with a dynamic batch axis"
        ));
    }
    Ok(())
}

fn names(list: &[Signature]) -> String {
    let names: Vec<String> = list.iter().map(|s| format!("`{}`", s.name)).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Shows a shape as `[N, 12]` (symbolic dimensions as `N`).
struct ShowShape<'a>(&'a [i64]);

impl fmt::Display for ShowShape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            if *d < 0 {
                f.write_str("N")?;
            } else {
                write!(f, "{d}")?;
            }
        }
        f.write_str("]")
    }
}

/// Parses `0-239,1428-1440,7` into sorted, merged inclusive lag ranges below `lookback`.
pub fn parse_reads(text: &str, lookback: usize) -> Result<Vec<(usize, usize)>, String> {
    let mut ranges = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (from, to) = part.split_once('-').unwrap_or((part, part));
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{part:?} is not a lag or a range of lags like 0-59"))
        };
        let (from, to) = (number(from)?, number(to)?);
        if from > to {
            return Err(format!("{part:?} runs backwards"));
        }
        if to >= lookback {
            return Err(format!("lag {to} is beyond lookback {lookback}"));
        }
        ranges.push((from, to));
    }
    if ranges.is_empty() {
        return Err("no lags".to_owned());
    }
    ranges.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(ranges.len());
    for (from, to) in ranges {
        match merged.last_mut() {
            Some((_, end)) if from <= *end + 1 => *end = (*end).max(to),
            _ => merged.push((from, to)),
        }
    }
    Ok(merged)
}

/// Formats lag ranges as `0-239,1440` (see [`parse_reads`]).
pub fn format_reads(ranges: &[(usize, usize)]) -> String {
    ranges
        .iter()
        .map(|&(from, to)| {
            if from == to {
                from.to_string()
            } else {
                format!("{from}-{to}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses one target: `max@10` or `point@10` (steps after the origin, at least 1).
pub fn parse_target(text: &str) -> Result<Target, String> {
    let text = text.trim();
    let (kind, steps) = text
        .split_once('@')
        .ok_or_else(|| format!("target {text:?} is not `max@STEPS` or `point@STEPS`"))?;
    let steps: usize = steps
        .trim()
        .parse()
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("target {text:?}: steps must be a positive integer"))?;
    match kind.trim() {
        "max" => Ok(Target::Max(steps)),
        "point" => Ok(Target::Point(steps)),
        other => Err(format!(
            "target {text:?}: unknown kind {other:?}, expected `max` or `point`"
        )),
    }
}

/// Parses a comma-separated list of targets (at least one, no duplicates).
pub fn parse_targets(text: &str) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    for part in text.split(',').filter(|p| !p.trim().is_empty()) {
        let target = parse_target(part)?;
        if targets.contains(&target) {
            return Err(format!("target {target} is listed twice"));
        }
        targets.push(target);
    }
    if targets.is_empty() {
        return Err("no targets (expected e.g. `max@10,point@10`)".to_owned());
    }
    Ok(targets)
}

/// Formats targets as `max@10,point@10`.
pub fn format_targets(targets: &[Target]) -> String {
    targets
        .iter()
        .map(Target::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn contract() -> Contract {
        Contract {
            step_seconds: 60,
            lookback: 64,
            targets: vec![Target::Max(10), Target::Point(10)],
            transform: "log1p".to_owned(),
            trained_on: "trace x.csv".to_owned(),
            reads: Some(vec![(0, 29), (60, 63)]),
        }
    }

    fn tensor(name: &str, elem: &str, dims: &[i64]) -> Signature {
        Signature {
            name: name.to_owned(),
            elem: Some(elem.to_owned()),
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn metadata_round_trips() {
        let meta: HashMap<String, String> = contract().to_metadata().into_iter().collect();
        assert_eq!(meta["augur.targets"], "max@10,point@10");
        assert_eq!(meta["augur.reads"], "0-29,60-63");
        assert_eq!(meta["augur.contract"], "augur-forecast-v1");
        assert_eq!(
            Contract::from_metadata(|k| meta.get(k).cloned()),
            Ok(contract())
        );
    }

    #[test]
    fn bad_metadata_names_the_key() {
        let mut meta: HashMap<String, String> = contract().to_metadata().into_iter().collect();
        meta.insert(KEY_LOOKBACK.to_owned(), "0".to_owned());
        assert_eq!(
            Contract::from_metadata(|k| meta.get(k).cloned()),
            Err("metadata `augur.lookback` is \"0\", expected a positive integer".to_owned())
        );
        meta.remove(KEY_STEP);
        assert_eq!(
            Contract::from_metadata(|k| meta.get(k).cloned()),
            Err("metadata `augur.step_seconds` is missing (see docs/onnx.md)".to_owned())
        );
        meta.insert(KEY_CONTRACT.to_owned(), "v0".to_owned());
        assert_eq!(
            Contract::from_metadata(|k| meta.get(k).cloned()),
            Err(
                "metadata `augur.contract` is \"v0\"; this augur reads \"augur-forecast-v1\""
                    .to_owned()
            )
        );
    }

    #[test]
    fn reads_parse_merge_and_reject() {
        assert_eq!(
            parse_reads("60-63, 7, 0-6,8-9", 64),
            Ok(vec![(0, 9), (60, 63)])
        );
        assert_eq!(
            parse_reads("0-64", 64),
            Err("lag 64 is beyond lookback 64".to_owned())
        );
        assert_eq!(
            parse_reads("5-2", 64),
            Err("\"5-2\" runs backwards".to_owned())
        );
        assert_eq!(
            parse_reads("x", 64),
            Err("\"x\" is not a lag or a range of lags like 0-59".to_owned())
        );
        assert_eq!(format_reads(&[(0, 9), (12, 12)]), "0-9,12");
    }

    #[test]
    fn targets_parse_and_reject() {
        assert_eq!(
            parse_targets("max@10, point@3"),
            Ok(vec![Target::Max(10), Target::Point(3)])
        );
        assert_eq!(
            parse_targets("max@0"),
            Err("target \"max@0\": steps must be a positive integer".to_owned())
        );
        assert_eq!(
            parse_targets("mean@4"),
            Err("target \"mean@4\": unknown kind \"mean\", expected `max` or `point`".to_owned())
        );
        assert_eq!(
            parse_targets("max@2,max@2"),
            Err("target max@2 is listed twice".to_owned())
        );
    }

    #[test]
    fn signature_mismatches_are_explained() {
        let c = contract();
        let outputs = [tensor("forecast", "float32", &[-1, 2])];
        assert_eq!(
            c.check_signature(
                &[
                    tensor("values", "float32", &[-1, 64]),
                    tensor("phase", "float32", &[-1, 2])
                ],
                &outputs
            ),
            Ok(())
        );
        assert_eq!(
            c.check_signature(&[tensor("values", "float32", &[-1, 12])], &outputs),
            Err("input `values` has shape [N, 12], metadata says lookback 64".to_owned())
        );
        assert_eq!(
            c.check_signature(&[tensor("values", "float64", &[-1, 64])], &outputs),
            Err("input `values` is float64, expected float32".to_owned())
        );
        assert_eq!(
            c.check_signature(&[tensor("x", "float32", &[-1, 64])], &outputs),
            Err("no input `values` (inputs: `x`)".to_owned())
        );
        assert_eq!(
            c.check_signature(
                &[
                    tensor("values", "float32", &[-1, 64]),
                    tensor("phase", "float32", &[-1, 3])
                ],
                &outputs
            ),
            Err("input `phase` has shape [N, 3], the contract says 2 (day, week)".to_owned())
        );
        assert_eq!(
            c.check_signature(
                &[tensor("values", "float32", &[-1, 64])],
                &[tensor("forecast", "float32", &[-1, 3])]
            ),
            Err(
                "output `forecast` has shape [N, 3], metadata lists 2 targets (max@10,point@10)"
                    .to_owned()
            )
        );
        assert_eq!(
            c.check_signature(&[tensor("values", "float32", &[1, 64])], &outputs),
            Err("input `values` has shape [1, 64]: the first dimension must be symbolic (the batch N), export the model with a dynamic batch axis".to_owned())
        );
        assert_eq!(
            c.check_signature(
                &[tensor("values", "float32", &[-1, 64])],
                &[tensor("forecast", "float32", &[8, 2])]
            ),
            Err("output `forecast` has shape [8, 2]: the first dimension must be symbolic (the batch N), export the model with a dynamic batch axis".to_owned())
        );
        assert_eq!(
            c.check_signature(&[tensor("values", "float32", &[64])], &outputs),
            Err("input `values` has shape [64], expected rank 2 [N, 64]".to_owned())
        );
    }
}
