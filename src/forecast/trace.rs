//! Reads a request-rate trace CSV (`timestamp,value`, bucket starts in Unix seconds) onto a
//! regular [`History`] grid, leaving missing buckets as `NaN`.

use std::collections::HashMap;
use std::path::Path;

use super::History;

/// Why a trace file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// A line is not `timestamp,value`, or breaks the order of the rows.
    #[error("{path}:{line}: {why}")]
    Parse {
        path: String,
        line: usize,
        why: String,
    },
    /// The file as a whole is not a usable trace (no rows, one row).
    #[error("{path}: {why}")]
    Invalid { path: String, why: String },
}

/// Why [`parse_csv`] refused a text: the 1-based line (0: the text as a whole) and why.
pub type ParseError = (usize, String);

/// Most buckets a trace may span (58 days at 1 s, 9.5 years at 60 s): a larger grid is
/// nearly always one wrong timestamp, and would take gigabytes.
pub const MAX_BUCKETS: usize = 5_000_000;

/// Timestamps from here on are taken for milliseconds (Unix seconds reach it in year 5138).
const MILLISECONDS: f64 = 1e11;

/// Loads a CSV trace. The step is the most common difference between timestamps; rows
/// must be sorted and unique. A timestamp off the step grid (exporter jitter) is snapped to
/// the nearest bucket start; two rows in one bucket are an error naming both lines.
pub fn load_csv(path: &Path) -> Result<History, TraceError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: shown.clone(),
        source,
    })?;
    parse_csv(&text).map_err(|(line, why)| match line {
        0 => TraceError::Invalid { path: shown, why },
        line => TraceError::Parse {
            path: shown,
            line,
            why,
        },
    })
}

/// A Unix-seconds timestamp: an integer, or a decimal rounded to the second.
fn parse_timestamp(text: &str) -> Result<i64, String> {
    let value = match text.parse::<i64>() {
        Ok(t) => t as f64,
        Err(_) => text
            .parse::<f64>()
            .map_err(|_| format!("timestamp {text:?} is not a number (expected Unix seconds)"))?,
    };
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "timestamp {text:?} is not a Unix time in seconds (≥ 0)"
        ));
    }
    if value >= MILLISECONDS {
        return Err(format!(
            "timestamp {text} is after the year 5000: milliseconds? timestamps must be Unix seconds"
        ));
    }
    Ok(value.round() as i64)
}

/// A bucket's mean request rate: a finite number ≥ 0.
fn parse_value(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Err("the value is empty; leave out the row of a missing bucket".to_owned());
    }
    let value: f64 = text
        .parse()
        .map_err(|_| format!("value {text:?} is not a number"))?;
    if value.is_nan() {
        return Err(format!(
            "value {text:?} is not a number; leave out the row of a missing bucket"
        ));
    }
    if value.is_infinite() {
        return Err(format!("value {text:?} is infinite"));
    }
    if value < 0.0 {
        return Err(format!("value {text} is negative; a request rate is ≥ 0"));
    }
    Ok(value)
}

/// Parses CSV text; errors carry the 1-based line number (0 for the text as a whole). The
/// first line is a header when its first field is not a number; a byte-order mark and
/// Windows line ends are accepted.
pub fn parse_csv(text: &str) -> Result<History, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows: Vec<(i64, f64, usize)> = Vec::new();
    let mut first_line = true;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let header = first_line && fields[0].parse::<f64>().is_err();
        first_line = false;
        if header {
            continue;
        }
        let [ts, value] = fields[..] else {
            return Err((
                line_no,
                format!(
                    "expected `timestamp,value`, got {} field{}: {line:?}",
                    fields.len(),
                    if fields.len() == 1 { "" } else { "s" }
                ),
            ));
        };
        let ts = parse_timestamp(ts).map_err(|why| (line_no, why))?;
        let value = parse_value(value).map_err(|why| (line_no, why))?;
        if let Some(&(prev, _, prev_line)) = rows.last() {
            if ts == prev {
                return Err((line_no, format!("timestamp {ts} repeats line {prev_line}")));
            }
            if ts < prev {
                return Err((
                    line_no,
                    format!(
                        "timestamp {ts} is before {prev} on line {prev_line}: rows must be sorted by time"
                    ),
                ));
            }
        }
        rows.push((ts, value, line_no));
    }
    let (Some(&(first, _, first_line)), Some(&(last, _, last_line))) = (rows.first(), rows.last())
    else {
        return Err((
            0,
            "no data rows; a trace is `timestamp,value` lines (Unix seconds, mean req/s)"
                .to_owned(),
        ));
    };
    if rows.len() < 2 {
        return Err((
            0,
            format!(
                "only one data row (line {first_line}): the bucket length cannot be inferred; a trace needs at least two rows"
            ),
        ));
    }
    let mut diffs: HashMap<i64, usize> = HashMap::new();
    for pair in rows.windows(2) {
        *diffs.entry(pair[1].0 - pair[0].0).or_default() += 1;
    }
    let step = diffs
        .into_iter()
        .max_by_key(|&(diff, count)| (count, std::cmp::Reverse(diff)))
        .map_or(60, |(diff, _)| diff);
    // The nearest bucket start (half a step rounds up).
    let bucket = |ts: i64| (ts - first + step / 2).div_euclid(step);
    let len = usize::try_from(bucket(last) + 1).map_err(|e| (0, e.to_string()))?;
    if len > MAX_BUCKETS {
        return Err((
            last_line,
            format!(
                "the rows from line {first_line} (timestamp {first}) to here (timestamp {last}) span {len} buckets of {step}s, more than {MAX_BUCKETS}; is this timestamp wrong?"
            ),
        ));
    }
    let mut values = vec![f64::NAN; len];
    let mut line_of = vec![0usize; len];
    for (ts, value, line) in rows {
        let Ok(i) = usize::try_from(bucket(ts)) else {
            continue;
        };
        if line_of[i] != 0 {
            return Err((
                line,
                format!(
                    "timestamp {ts} falls in the same {step}s bucket (starting {}) as line {}",
                    first + i as i64 * step,
                    line_of[i]
                ),
            ));
        }
        values[i] = value;
        line_of[i] = line;
    }
    Ok(History::new(first, step, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_become_nan_and_step_is_the_common_difference() {
        let history = parse_csv("timestamp,value\n0,1\n60,2\n180,4\n240,5\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(history.start, 0);
        assert_eq!(history.step, 60);
        assert_eq!(history.values.len(), 5);
        assert!(history.values[2].is_nan());
        assert_eq!(history.forward_filled(), vec![1.0, 2.0, 2.0, 4.0, 5.0]);
        assert_eq!(history.origin(), Some(240));
    }

    #[test]
    fn jittered_timestamps_snap_to_the_nearest_bucket() {
        // 243 and 297 are off the 60 s grid: they snap to buckets 4 and 5.
        let history = parse_csv("timestamp,value\n0,1\n60,2\n120,3\n180,4\n243,5\n297,6\n360,7\n")
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(history.step, 60);
        assert_eq!(history.start, 0);
        assert_eq!(history.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        // 269 rounds to bucket 4 (start 240), which line 6 already holds.
        let clash = parse_csv("timestamp,value\n0,1\n60,2\n120,3\n180,4\n240,5\n269,6\n300,7\n")
            .err()
            .unwrap_or_else(|| panic!("two rows in one bucket must fail"));
        assert_eq!(
            clash,
            (
                7,
                "timestamp 269 falls in the same 60s bucket (starting 240) as line 6".to_owned()
            )
        );
    }

    #[test]
    fn unsorted_rows_name_the_line() {
        assert_eq!(
            parse_csv("0,1\n60,2\n30,3\n").map(|_| ()),
            Err((
                3,
                "timestamp 30 is before 60 on line 2: rows must be sorted by time".to_string()
            ))
        );
        assert_eq!(
            parse_csv("timestamp,value\n0,1\n60,2\n60,3\n").map(|_| ()),
            Err((4, "timestamp 60 repeats line 3".to_string()))
        );
    }

    /// The error of a two-row trace whose second row is `row`.
    fn second_row(row: &str) -> Result<(), ParseError> {
        parse_csv(&format!("timestamp,value\n0,1\n{row}\n120,1\n")).map(|_| ())
    }

    #[test]
    fn bad_values_and_timestamps_say_line_and_why() {
        let at3 = |why: &str| Err((3, why.to_owned()));
        // "NaN", "inf" and "-3" parse as f64: before, they became a missing bucket, an
        // infinite rate and a negative one (which log1p turns into NaN).
        assert_eq!(
            second_row("60,NaN"),
            at3("value \"NaN\" is not a number; leave out the row of a missing bucket")
        );
        assert_eq!(second_row("60,inf"), at3("value \"inf\" is infinite"));
        assert_eq!(
            second_row("60,-3"),
            at3("value -3 is negative; a request rate is ≥ 0")
        );
        assert_eq!(
            second_row("60,"),
            at3("the value is empty; leave out the row of a missing bucket")
        );
        assert_eq!(second_row("60,n/a"), at3("value \"n/a\" is not a number"));
        assert_eq!(
            second_row("60,1,web-0"),
            at3("expected `timestamp,value`, got 3 fields: \"60,1,web-0\"")
        );
        assert_eq!(
            second_row("60"),
            at3("expected `timestamp,value`, got 1 field: \"60\"")
        );
        assert_eq!(
            second_row("yesterday,1"),
            at3("timestamp \"yesterday\" is not a number (expected Unix seconds)")
        );
        assert_eq!(
            second_row("-60,1"),
            at3("timestamp \"-60\" is not a Unix time in seconds (≥ 0)")
        );
        assert_eq!(
            parse_csv("1600000000000,1\n1600000060000,1\n").map(|_| ()),
            Err((
                1,
                "timestamp 1600000000000 is after the year 5000: milliseconds? timestamps must be Unix seconds"
                    .to_owned()
            ))
        );
    }

    #[test]
    fn empty_single_row_and_runaway_traces_are_refused() {
        let no_rows = Err((
            0,
            "no data rows; a trace is `timestamp,value` lines (Unix seconds, mean req/s)"
                .to_owned(),
        ));
        assert_eq!(parse_csv("").map(|_| ()), no_rows);
        assert_eq!(parse_csv("timestamp,value\n\n").map(|_| ()), no_rows);
        // One row used to give a one-bucket history with an invented 60 s step.
        assert_eq!(
            parse_csv("timestamp,value\n600,1\n").map(|_| ()),
            Err((
                0,
                "only one data row (line 2): the bucket length cannot be inferred; a trace needs at least two rows"
                    .to_owned()
            ))
        );
        // One timestamp 400 years late used to allocate a grid of 210 million buckets.
        let far: i64 = 400 * 365 * 86_400 + 120;
        assert_eq!(
            parse_csv(&format!("0,1\n60,1\n120,1\n{far},1\n")).map(|_| ()),
            Err((
                4,
                format!(
                    "the rows from line 1 (timestamp 0) to here (timestamp {far}) span {} buckets of 60s, more than {MAX_BUCKETS}; is this timestamp wrong?",
                    far / 60 + 1
                )
            ))
        );
    }

    #[test]
    fn headers_byte_order_marks_crlf_and_decimal_timestamps_are_read() {
        let expected = History::new(60, 60, vec![1.5, 2.0, 0.0]);
        for text in [
            "timestamp,value\n60,1.5\n120,2\n180,0\n",
            "60,1.5\n120,2\n180,0\n",
            "\u{feff}timestamp,value\r\n60,1.5\r\n120,2\r\n180,0\r\n",
            "time,requests_per_second\n60,1.5\n120,2\n180,0\n",
            "ts,rate\n60.0,1.5\n120.2,2\n180,0e0\n",
        ] {
            assert_eq!(parse_csv(text), Ok(expected.clone()), "{text:?}");
        }
    }

    #[test]
    fn phase_of_a_known_monday_noon() {
        // 2024-01-01 was a Monday.
        let phase = History::phase(1_704_110_400);
        assert!((phase.day - 0.5).abs() < 1e-12);
        assert!((phase.week - 0.5 / 7.0).abs() < 1e-12);
    }

    #[test]
    fn targets_read_from_a_path() {
        let path = [1.0, 5.0, 2.0];
        assert_eq!(
            crate::forecast::Target::Point(2).from_path(&path),
            Some(5.0)
        );
        assert_eq!(crate::forecast::Target::Max(3).from_path(&path), Some(5.0));
        assert_eq!(crate::forecast::Target::Max(4).from_path(&path), None);
    }
}
