//! The design: which features the model reads (recent lags and windows, one day and one
//! week before each target, calendar terms) and which of them each target uses.

use super::LinearOptions;
use crate::forecast::model::{DAY, buckets_in, max_steps};
use crate::forecast::{Feature, ModelError, Period, Target};

/// The features and, per target, which of them it uses.
pub(super) struct Design {
    pub(super) features: Vec<Feature>,
    /// Per target, indices into `features` (level features other than `Lag(0)` and
    /// calendar ones).
    pub(super) used: Vec<Vec<usize>>,
    pub(super) lookback: usize,
    /// Lags below this are the recent ones (rows touching a gap there are dropped).
    pub(super) recent: usize,
}

fn add_feature(features: &mut Vec<Feature>, feature: Feature) -> usize {
    if let Some(i) = features.iter().position(|&f| f == feature) {
        return i;
    }
    features.push(feature);
    features.len() - 1
}

/// The features for a history of `len` buckets of `step` seconds and `targets`.
pub(super) fn design(
    len: usize,
    step: i64,
    targets: &[Target],
    options: &LinearOptions,
) -> Result<Design, ModelError> {
    let horizon = max_steps(targets);
    if horizon == 0 {
        return Err(ModelError::Invalid("no target to fit".to_string()));
    }
    let lags = options.lags.max(1);
    let day = buckets_in(DAY, step).filter(|&d| d > horizon + 2);
    // Rows with a valid seasonal lag must cover at least the period again (plus the
    // validation day), as in the anchors' ridge (benches/README.md, "Backtest").
    let room = |period: usize| len >= 2 * period + horizon + 3 + day.unwrap_or(0);
    let day = day.filter(|&d| options.daily && room(d));
    let week = day
        .map(|d| 7 * d)
        .filter(|&w| options.weekly && len >= w * 2 + horizon + 3 + day.unwrap_or(0));
    // Lag(0) always comes first: it carries the origin value in the spec.
    let mut features = vec![Feature::Lag(0)];
    let mut used = Vec::with_capacity(targets.len());
    for target in targets {
        let h = target.steps();
        let mut mine = Vec::new();
        for l in 1..lags {
            mine.push(add_feature(&mut features, Feature::Lag(l)));
        }
        for &w in &options.recent_windows {
            if w > 1 && w <= len / 4 {
                mine.push(add_feature(
                    &mut features,
                    Feature::WindowMean { from: 0, to: w - 1 },
                ));
                mine.push(add_feature(
                    &mut features,
                    Feature::WindowMax { from: 0, to: w - 1 },
                ));
            }
        }
        for period in [day, week].into_iter().flatten() {
            // Target time one period earlier is lag period - h.
            let at = period - h;
            for l in at.saturating_sub(2)..=at + 2 {
                mine.push(add_feature(&mut features, Feature::Lag(l)));
            }
            mine.push(add_feature(&mut features, Feature::Lag(period)));
            mine.push(add_feature(
                &mut features,
                Feature::WindowMax {
                    from: at,
                    to: period - 1,
                },
            ));
            mine.push(add_feature(
                &mut features,
                Feature::WindowMean {
                    from: at,
                    to: period - 1,
                },
            ));
        }
        if let Some(d) = day.filter(|_| options.weekly || options.daily) {
            let w = options.seasonal_halfwidth;
            for k in 1..=options.seasonal_days {
                let centre = k * d - h;
                if centre < w || len < k * d + w + horizon + 3 + 3 * d {
                    break;
                }
                mine.push(add_feature(
                    &mut features,
                    Feature::WindowMean {
                        from: centre - w,
                        to: centre + w,
                    },
                ));
            }
        }
        if day.is_some() {
            for harmonic in [1, 2] {
                mine.push(add_feature(
                    &mut features,
                    Feature::Sin {
                        period: Period::Day,
                        harmonic,
                    },
                ));
                mine.push(add_feature(
                    &mut features,
                    Feature::Cos {
                        period: Period::Day,
                        harmonic,
                    },
                ));
            }
        }
        if week.is_some() {
            mine.push(add_feature(
                &mut features,
                Feature::Sin {
                    period: Period::Week,
                    harmonic: 1,
                },
            ));
            mine.push(add_feature(
                &mut features,
                Feature::Cos {
                    period: Period::Week,
                    harmonic: 1,
                },
            ));
        }
        mine.sort_unstable();
        mine.dedup();
        mine.retain(|&i| i != 0);
        used.push(mine);
    }
    let lookback = features
        .iter()
        .map(|&f| feature_reach(f))
        .max()
        .unwrap_or(0)
        + 1;
    Ok(Design {
        features,
        used,
        lookback,
        recent: lags,
    })
}

/// Largest lag a feature reads (0 for calendar features).
pub(super) fn feature_reach(feature: Feature) -> usize {
    match feature {
        Feature::Lag(l) => l,
        Feature::WindowMax { to, .. } | Feature::WindowMean { to, .. } => to,
        Feature::Sin { .. } | Feature::Cos { .. } => 0,
    }
}
