//! Where a backtest's history comes from: a trace CSV, or one series of a Prometheus range
//! query fetched in chunks below the server's 11,000-points limit.

use std::time::{Duration, SystemTime};

use crate::forecast::History;
use crate::prometheus::{Backend, LabelSet, range_chunks};
use crate::units::{from_unix, unix};

/// Why a range query did not give one usable series.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The backend call failed.
    #[error("range query {query:?} from {from} to {to}: {source}")]
    Backend {
        /// The PromQL.
        query: String,
        /// Chunk start, Unix seconds.
        from: i64,
        /// Chunk end, Unix seconds.
        to: i64,
        /// The backend's error.
        source: crate::prometheus::Error,
    },
    /// More than one series came back.
    #[error(
        "range query {query:?} returned {count} series ({labels}); a backtest needs exactly one: aggregate it, e.g. sum(...)"
    )]
    ManySeries {
        /// The PromQL.
        query: String,
        /// How many series.
        count: usize,
        /// The label sets, shortened.
        labels: String,
    },
    /// Nothing came back.
    #[error("range query {query:?} returned no data between {from} and {to}")]
    Empty {
        /// The PromQL.
        query: String,
        /// Range start, Unix seconds.
        from: i64,
        /// Range end, Unix seconds.
        to: i64,
    },
    /// Bad range arguments.
    #[error("{0}")]
    Range(String),
}

fn show(labels: &LabelSet) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}

/// Fetches `query` from `start` to `end` every `step` and puts the one series on a grid.
///
/// A point at time `t` is the rate over the step before `t`, so it becomes the bucket that
/// starts at `t − step`. Missing points are missing buckets (`NaN`).
pub async fn range_history(
    backend: &dyn Backend,
    query: &str,
    start: SystemTime,
    end: SystemTime,
    step: Duration,
) -> Result<History, SourceError> {
    let step_s = i64::try_from(step.as_secs()).unwrap_or(0);
    if step_s <= 0 || step.subsec_nanos() != 0 {
        return Err(SourceError::Range(format!(
            "--step must be a whole number of seconds ≥ 1s, got {step:?}"
        )));
    }
    let (from, to) = (unix(start), unix(end));
    if to <= from {
        return Err(SourceError::Range(format!(
            "--end ({to}) must be after --start ({from})"
        )));
    }
    if let Some(why) = crate::forecast::range_too_long((to - from) / step_s + 1, step_s) {
        return Err(SourceError::Range(why));
    }
    let mut labels: Option<LabelSet> = None;
    let mut points: Vec<(i64, f64)> = Vec::new();
    for (chunk_start, chunk_end) in range_chunks(from, to, step_s) {
        let series = backend
            .query_range(query, from_unix(chunk_start), from_unix(chunk_end), step)
            .await
            .map_err(|source| SourceError::Backend {
                query: query.to_owned(),
                from: chunk_start,
                to: chunk_end,
                source,
            })?;
        let mut all: Vec<&LabelSet> = labels.iter().collect();
        all.extend(series.iter().map(|s| &s.labels));
        all.dedup();
        if all.len() > 1 {
            return Err(SourceError::ManySeries {
                query: query.to_owned(),
                count: all.len(),
                labels: all
                    .iter()
                    .take(3)
                    .map(|l| show(l))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        if let Some(one) = series.into_iter().next() {
            labels.get_or_insert(one.labels);
            // Only points inside the asked range: one stray timestamp from a misbehaving
            // backend would otherwise stretch the grid to its time (or overflow).
            let (lo, hi) = (chunk_start as f64 - 0.5, chunk_end as f64 + 0.5);
            points.extend(
                one.points
                    .into_iter()
                    .filter(|&(t, _)| t >= lo && t <= hi)
                    .map(|(t, v)| (t.round() as i64, v)),
            );
        }
    }
    points.sort_by_key(|&(t, _)| t);
    points.dedup_by_key(|p| p.0);
    let (Some(&(first, _)), Some(&(last, _))) = (points.first(), points.last()) else {
        return Err(SourceError::Empty {
            query: query.to_owned(),
            from,
            to,
        });
    };
    let len = usize::try_from((last - first) / step_s + 1).unwrap_or(0);
    let mut values = vec![f64::NAN; len];
    for (t, v) in points {
        if (t - first) % step_s == 0
            && let Some(slot) = usize::try_from((t - first) / step_s)
                .ok()
                .and_then(|i| values.get_mut(i))
        {
            *slot = crate::forecast::bucket_value(v);
        }
    }
    Ok(History::new(first - step_s, step_s, values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::RangeSeries;
    use crate::prometheus::fake::{FakeBackend, labels};
    use std::time::UNIX_EPOCH;

    fn at(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn one_series_becomes_a_grid_with_gaps() {
        let fake = FakeBackend::new().with_range(
            "sum(rate(x[2m]))",
            vec![RangeSeries {
                labels: LabelSet::new(),
                points: vec![
                    (-1e300, 7.0),
                    (120.0, 1.0),
                    (180.0, 2.0),
                    (300.0, 4.0),
                    (360.0, f64::INFINITY),
                    (1e18, 7.0),
                    (f64::NAN, 7.0),
                ],
            }],
        );
        let history = futures::executor::block_on(range_history(
            &fake,
            "sum(rate(x[2m]))",
            at(120),
            at(360),
            Duration::from_secs(60),
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(history.start, 60);
        assert_eq!(history.step, 60);
        assert_eq!(history.values.len(), 5);
        assert_eq!(&history.values[..2], &[1.0, 2.0]);
        assert!(history.values[2].is_nan());
        assert_eq!(history.values[3], 4.0);
        // +Inf (a ratio over zero) is a missing bucket; points outside the asked range (a
        // misbehaving backend) are not read.
        assert!(history.values[4].is_nan());
    }

    #[test]
    fn long_ranges_are_split_below_the_points_limit() {
        let fake = FakeBackend::new();
        let step = Duration::from_secs(60);
        let end = 60 * 25_000;
        let result = futures::executor::block_on(range_history(&fake, "q", at(0), at(end), step));
        assert!(
            matches!(result, Err(SourceError::Empty { .. })),
            "{result:?}"
        );
        let calls: Vec<(SystemTime, SystemTime)> = fake
            .calls()
            .into_iter()
            .filter_map(|c| match c {
                crate::prometheus::fake::Call::QueryRange { start, end, .. } => Some((start, end)),
                _ => None,
            })
            .collect();
        assert_eq!(
            calls,
            vec![
                (at(0), at(599_940)),
                (at(600_000), at(1_199_940)),
                (at(1_200_000), at(end)),
            ]
        );
        // A range of more than 5,000,000 steps is refused before any query: 1970 to 2026
        // at 1 s would be 1.8 billion buckets (14 GB) and 180,000 queries.
        let fake = FakeBackend::new();
        let step = Duration::from_secs(1);
        let result =
            futures::executor::block_on(range_history(&fake, "q", at(0), at(1_796_000_000), step));
        assert_eq!(
            result.map(|_| ()).map_err(|e| e.to_string()),
            Err("--start..--end at --step 1s is 1796000001 buckets, more than 5000000 (a year at 1m is 525600): shorten the range or use a longer step".to_owned())
        );
        assert!(fake.calls().is_empty());
    }

    #[test]
    fn several_series_are_refused_with_their_labels() {
        let series = |pod: &str| RangeSeries {
            labels: labels(&[("pod", pod)]),
            points: vec![(60.0, 1.0)],
        };
        let fake = FakeBackend::new().with_range("q", vec![series("a"), series("b")]);
        let result = futures::executor::block_on(range_history(
            &fake,
            "q",
            at(60),
            at(120),
            Duration::from_secs(60),
        ));
        let Err(error) = result else {
            panic!("two series were accepted")
        };
        assert_eq!(
            error.to_string(),
            "range query \"q\" returned 2 series ({pod=\"a\"}, {pod=\"b\"}); a backtest needs exactly one: aggregate it, e.g. sum(...)"
        );
    }
}
