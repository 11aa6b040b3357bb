//! When a forecast is refused for missing data: too many of the recent buckets, or most of a
//! run of seasonal lags (a gap a period ago). The built-in `linear` model and ONNX models
//! apply the same two checks to the lags they read.

use crate::forecast::{History, ModelError};

/// The runs of ≥ 3 consecutive lags beyond [`RECENT_BUCKETS`] among the lags a model reads
/// (inclusive ranges `(from, to)`, counted back from the origin): its one-day and one-week
/// seasonal lags.
pub fn seasonal_ranges(reads: &[(usize, usize)]) -> Vec<(usize, usize)> {
    reads
        .iter()
        .copied()
        .filter(|&(from, to)| from >= RECENT_BUCKETS && to - from >= 2)
        .collect()
}

/// Refuses a forecast when a run of seasonal lags the model reads (a day or a week before
/// the target) is mostly missing: forward-filled, it would be a copy of the value before an
/// outage a day ago, not yesterday's traffic.
pub fn check_seasonal_gap(
    history: &History,
    seasonal: &[(usize, usize)],
) -> Result<(), ModelError> {
    let values = &history.values;
    for &(from, to) in seasonal {
        let Some(oldest) = values.len().checked_sub(to + 1) else {
            continue;
        };
        let newest = values.len() - 1 - from;
        let missing = values[oldest..=newest]
            .iter()
            .filter(|v| v.is_nan())
            .count();
        let read = to - from + 1;
        if 2 * missing > read {
            return Err(ModelError::Gap(format!(
                "{missing} of the {read} buckets {from}–{to} steps back that the model reads as seasonal lags are missing (a gap a period ago)"
            )));
        }
    }
    Ok(())
}

/// Recent buckets checked for missing data before a forecast.
pub const RECENT_BUCKETS: usize = 60;

/// Most missing buckets (as a fraction of [`RECENT_BUCKETS`]) a forecast is made with.
pub const RECENT_MISSING_FRACTION: f64 = 0.1;

/// Refuses a forecast when more than [`RECENT_MISSING_FRACTION`] of the last `within`
/// buckets ([`RECENT_BUCKETS`] for the built-in model) are missing: the lags and windows
/// would be forward-filled from before the gap (after an outage, from hours or days ago),
/// while a few missing buckets (a lost scrape) are harmless.
pub fn check_recent_gap(history: &History, within: usize) -> Result<(), ModelError> {
    let window = within.min(history.len());
    let missing = history.values[history.len() - window..]
        .iter()
        .filter(|v| v.is_nan())
        .count();
    if window > 0 && missing as f64 > RECENT_MISSING_FRACTION * window as f64 {
        return Err(ModelError::Gap(format!(
            "{missing} of the last {window} buckets are missing; forecasting again once the recent data is back"
        )));
    }
    Ok(())
}
