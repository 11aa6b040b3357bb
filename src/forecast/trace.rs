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
    /// A line is not `timestamp,value`.
    #[error("{path}:{line}: {why}")]
    Parse {
        path: String,
        line: usize,
        why: String,
    },
}

/// Loads a CSV trace. The step is the most common difference between timestamps; rows
/// must be sorted and unique. A timestamp off the step grid (exporter jitter) is snapped to
/// the nearest bucket start; two rows in one bucket are an error naming both lines.
pub fn load_csv(path: &Path) -> Result<History, TraceError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: shown.clone(),
        source,
    })?;
    parse_csv(&text).map_err(|(line, why)| TraceError::Parse {
        path: shown,
        line,
        why,
    })
}

/// Parses CSV text; errors carry the 1-based line number.
pub fn parse_csv(text: &str) -> Result<History, (usize, String)> {
    let mut rows: Vec<(i64, f64, usize)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = line.trim();
        if line.is_empty() || (index == 0 && line.starts_with("timestamp")) {
            continue;
        }
        let (ts, value) = line
            .split_once(',')
            .ok_or((line_no, "expected `timestamp,value`".to_string()))?;
        let ts: i64 = ts
            .trim()
            .parse()
            .map_err(|e| (line_no, format!("timestamp {ts:?}: {e}")))?;
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|e| (line_no, format!("value {value:?}: {e}")))?;
        if let Some(&(prev, _, _)) = rows.last()
            && ts <= prev
        {
            return Err((line_no, format!("timestamp {ts} is not after {prev}")));
        }
        rows.push((ts, value, line_no));
    }
    let (Some(&(first, _, _)), Some(&(last, _, _))) = (rows.first(), rows.last()) else {
        return Err((0, "no rows".to_string()));
    };
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
            Err((3, "timestamp 30 is not after 60".to_string()))
        );
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
