//! Runs the HPA simulator over a trace under one autoscaling policy (what metric value the
//! HPA is served at each sync) and accounts under-provisioning and cost per sync slice, as
//! the anchors' method does (benches/README.md, "Backtest").

use super::hpa::{Hpa, HpaSpec, SyncOutcome};
use crate::forecast::History;

/// Timing of the simulation, in seconds, and the pod capacity.
#[derive(Debug, Clone)]
pub struct Timing {
    /// HPA sync period (15).
    pub sync: i64,
    /// How late the metric is seen (30): the rate window ends this long before the sync.
    pub metric_delay: i64,
    /// The `rate()` window (120).
    pub rate_window: i64,
    /// Requests per second one ready pod serves.
    pub capacity: f64,
    /// Bucket index of the first evaluation origin.
    pub first_origin: usize,
    /// Forecast horizon of the predictive and oracle policies, in buckets.
    pub horizon: usize,
}

/// What the HPA is served at each sync.
#[derive(Debug, Clone, Copy)]
pub enum Served<'a> {
    /// The rate over the window ending `metric_delay` before the sync.
    Reactive,
    /// `max(reactive, forecast · (1 + headroom))`, as augur serves a forecast twin with
    /// `serve: max` ([`crate::twin::engine::served_value`]); `forecasts[i]` was made at
    /// origin `first_origin + i` (`NaN`: no forecast, the reactive value is served).
    Predictive {
        /// The model's max-over-horizon forecast per origin.
        forecasts: &'a [f64],
        /// The `headroom` fraction (≥ 0).
        headroom: f64,
    },
    /// `max(reactive, true max of the next horizon buckets)`.
    Oracle,
}

/// One policy's outcome over the evaluation window.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Minutes with load above ready capacity (gap time not counted).
    pub under_minutes: f64,
    /// ∫ max(0, load / capacity − ready) dt, in pod-minutes.
    pub under_pod_minutes: f64,
    /// ∫ replicas dt (ready or starting), in minutes.
    pub replica_minutes: f64,
    /// Syncs that raised the replica count.
    pub scale_ups: usize,
    /// Syncs that lowered it.
    pub scale_downs: usize,
    /// Replica count after each sync.
    pub replicas: Vec<i32>,
    /// Value served to the HPA at each sync (`NaN`: unavailable).
    pub served: Vec<f64>,
}

/// Unix second of the first sync that sees the first evaluation bucket complete.
pub fn first_sync(history: &History, timing: &Timing) -> i64 {
    let bucket_end = history.start + (timing.first_origin as i64 + 1) * history.step;
    let earliest = bucket_end + timing.metric_delay;
    // Syncs run on a grid of `sync` seconds.
    earliest.div_euclid(timing.sync) * timing.sync
        + if earliest.rem_euclid(timing.sync) == 0 {
            0
        } else {
            timing.sync
        }
}

/// End of the trace (end of its last bucket).
pub fn trace_end(history: &History) -> i64 {
    history.start + history.len() as i64 * history.step
}

/// Sync times from [`first_sync`] until the trace ends.
pub fn sync_times(history: &History, timing: &Timing) -> Vec<i64> {
    let end = trace_end(history);
    let first = first_sync(history, timing);
    let step = usize::try_from(timing.sync.max(1)).unwrap_or(1);
    (first..end).step_by(step).collect()
}

/// Time-average of the load over `[from, to)`, using only present buckets; `None` if no
/// part of the window has data.
///
/// When the window splits into whole `slice`-second pieces that never straddle a bucket
/// boundary (the usual case: 15 s syncs, 60 s or 300 s buckets), the average is the mean of
/// one load sample per piece, summed pairwise like numpy's `mean`: eight equal samples then
/// average to exactly their value, so a constant load reads as itself and is not truncated
/// one milli-unit low. Otherwise it is the overlap-weighted mean.
pub fn window_mean(history: &History, from: i64, to: i64, slice: i64) -> Option<f64> {
    let step = history.step;
    if slice > 0
        && step % slice == 0
        && (from - history.start).rem_euclid(slice) == 0
        && (to - from) % slice == 0
    {
        let samples: Vec<f64> = (0..(to - from) / slice)
            .map(|k| bucket_value(history, from + k * slice))
            .filter(|v| !v.is_nan())
            .collect();
        return (!samples.is_empty()).then(|| pairwise_sum(&samples) / samples.len() as f64);
    }
    let first = (from - history.start).div_euclid(step).max(0);
    let last = (to - 1 - history.start).div_euclid(step);
    let mut sum = 0.0;
    let mut covered = 0i64;
    for i in first..=last {
        let Some(&value) = usize::try_from(i).ok().and_then(|i| history.values.get(i)) else {
            continue;
        };
        if value.is_nan() {
            continue;
        }
        let start = history.start + i * step;
        let overlap = (to.min(start + step) - from.max(start)).max(0);
        sum += value * overlap as f64;
        covered += overlap;
    }
    (covered > 0).then(|| sum / covered as f64)
}

/// The load of the bucket holding `t` (`NaN` in a gap or outside the trace).
pub fn bucket_value(history: &History, t: i64) -> f64 {
    usize::try_from((t - history.start).div_euclid(history.step))
        .ok()
        .and_then(|i| history.values.get(i))
        .copied()
        .unwrap_or(f64::NAN)
}

/// numpy's pairwise summation (`pairwise_sum` in `loops_utils.h`): sequential below 8
/// values, eight partial sums up to 128, halves above.
pub fn pairwise_sum(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 8 {
        return values.iter().fold(0.0, |sum, v| sum + v);
    }
    if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&values[..8]);
        let whole = n - n % 8;
        let mut i = 8;
        while i < whole {
            for (j, partial) in r.iter_mut().enumerate() {
                *partial += values[i + j];
            }
            i += 8;
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for v in &values[whole..] {
            sum += v;
        }
        return sum;
    }
    let half = n / 2;
    let half = half - half % 8;
    pairwise_sum(&values[..half]) + pairwise_sum(&values[half..])
}

/// Index of the last bucket complete at time `t`, if any.
pub fn last_complete(history: &History, t: i64) -> Option<usize> {
    let complete = (t - history.start).div_euclid(history.step);
    usize::try_from(complete - 1)
        .ok()
        .map(|i| i.min(history.len().saturating_sub(1)))
}

/// The value served to the HPA at sync time `now`.
fn served_value(history: &History, timing: &Timing, served: Served<'_>, now: i64) -> Option<f64> {
    let seen = now - timing.metric_delay;
    let live = window_mean(history, seen - timing.rate_window, seen, timing.sync)?;
    let ahead = match served {
        Served::Reactive => return Some(live),
        Served::Predictive {
            forecasts,
            headroom,
        } => last_complete(history, seen)
            .and_then(|origin| origin.checked_sub(timing.first_origin))
            .and_then(|i| forecasts.get(i).copied())
            .map(|forecast| forecast * (1.0 + headroom)),
        Served::Oracle => last_complete(history, seen).and_then(|origin| {
            history
                .values
                .iter()
                .skip(origin + 1)
                .take(timing.horizon)
                .copied()
                .filter(|v| !v.is_nan())
                .reduce(f64::max)
        }),
    };
    Some(match ahead {
        Some(value) if value.is_finite() => live.max(value),
        _ => live,
    })
}

/// Simulates the HPA `spec` under a policy from [`first_sync`] to the trace end.
///
/// The Deployment starts with the replica count the first served value asks for, all ready
/// and with an empty controller history.
pub fn simulate(history: &History, timing: &Timing, spec: &HpaSpec, served: Served<'_>) -> Outcome {
    let syncs = sync_times(history, timing);
    let Some(&first) = syncs.first() else {
        return empty_outcome();
    };
    let initial = served_value(history, timing, served, first)
        .map(|v| {
            let milli = crate::quantity::to_milli(v) as f64;
            (milli / spec.target_milli.max(1) as f64).ceil() as i32
        })
        .unwrap_or(spec.min_replicas);
    let mut hpa = Hpa::new(spec.clone(), initial, first);
    let mut outcome = empty_outcome();
    let end = trace_end(history);
    for &now in &syncs {
        let value = served_value(history, timing, served, now);
        match hpa.sync(now, value) {
            SyncOutcome::Scaled { from, to } if to > from => outcome.scale_ups += 1,
            SyncOutcome::Scaled { .. } => outcome.scale_downs += 1,
            SyncOutcome::Skipped | SyncOutcome::Unchanged => {}
        }
        outcome.replicas.push(hpa.replicas());
        outcome.served.push(value.unwrap_or(f64::NAN));
        account(
            history,
            timing.capacity,
            &hpa,
            now,
            (now + timing.sync).min(end),
            &mut outcome,
        );
    }
    outcome
}

/// A fixed number of ready pods all the time (`static_peak`).
pub fn static_replicas(history: &History, timing: &Timing, replicas: i32) -> Outcome {
    let syncs = sync_times(history, timing);
    let mut outcome = empty_outcome();
    let Some(&first) = syncs.first() else {
        return outcome;
    };
    let spec = HpaSpec::new(1, replicas, replicas, 0);
    let hpa = Hpa::new(spec, replicas, first);
    let end = trace_end(history);
    for &now in &syncs {
        outcome.replicas.push(replicas);
        outcome.served.push(f64::NAN);
        account(
            history,
            timing.capacity,
            &hpa,
            now,
            (now + timing.sync).min(end),
            &mut outcome,
        );
    }
    outcome
}

fn empty_outcome() -> Outcome {
    Outcome {
        under_minutes: 0.0,
        under_pod_minutes: 0.0,
        replica_minutes: 0.0,
        scale_ups: 0,
        scale_downs: 0,
        replicas: Vec::new(),
        served: Vec::new(),
    }
}

/// Adds the slice `[from, to)` to the totals, split where a bucket ends or a pod gets ready.
fn account(history: &History, capacity: f64, hpa: &Hpa, from: i64, to: i64, outcome: &mut Outcome) {
    if to <= from {
        return;
    }
    outcome.replica_minutes += f64::from(hpa.replicas()) * (to - from) as f64 / 60.0;
    let mut cuts: Vec<i64> = hpa
        .pod_ready_times()
        .iter()
        .copied()
        .filter(|&t| t > from && t < to)
        .collect();
    let step = history.step;
    let mut boundary = history.start + ((from - history.start).div_euclid(step) + 1) * step;
    while boundary < to {
        cuts.push(boundary);
        boundary += step;
    }
    cuts.push(to);
    cuts.sort_unstable();
    cuts.dedup();
    let mut start = from;
    for cut in cuts {
        let index = (start - history.start).div_euclid(step);
        let load = usize::try_from(index)
            .ok()
            .and_then(|i| history.values.get(i))
            .copied()
            .unwrap_or(f64::NAN);
        if !load.is_nan() {
            let ready = f64::from(hpa.ready_at(start));
            let minutes = (cut - start) as f64 / 60.0;
            if load > ready * capacity {
                outcome.under_minutes += minutes;
                outcome.under_pod_minutes += (load / capacity - ready) * minutes;
            }
        }
        start = cut;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(first_origin: usize) -> Timing {
        Timing {
            sync: 15,
            metric_delay: 30,
            rate_window: 120,
            capacity: 1.0,
            first_origin,
            horizon: 2,
        }
    }

    #[test]
    fn window_mean_weights_partial_buckets_and_skips_gaps() {
        let history = History::new(0, 60, vec![1.0, 3.0, f64::NAN, 5.0]);
        for slice in [15, 7] {
            assert_eq!(window_mean(&history, 30, 90, slice), Some(2.0));
            assert_eq!(window_mean(&history, 0, 120, slice), Some(2.0));
            // [90, 210): 30 s of 3, 60 s gap, 30 s of 5 → (90 + 150) / 60 = 4.
            assert_eq!(window_mean(&history, 90, 210, slice), Some(4.0));
            assert_eq!(window_mean(&history, 120, 180, slice), None);
            assert_eq!(window_mean(&history, 240, 300, slice), None);
        }
    }

    #[test]
    fn a_constant_window_averages_to_its_exact_value() {
        // 0.03 · 120 / 120 is 0.029999999999999995 in f64, which truncates to 29 milli;
        // eight 15 s samples summed pairwise give 0.03 exactly (30 milli).
        let history = History::new(0, 300, vec![0.03]);
        assert_ne!((0.03f64 * 120.0) / 120.0, 0.03);
        assert_eq!(window_mean(&history, 30, 150, 15), Some(0.03));
        // Eight partial sums (the tree gives 0.8), then the rest one by one.
        assert_eq!(pairwise_sum(&[0.1; 10]), (0.8 + 0.1) + 0.1);
    }

    #[test]
    fn first_sync_sees_the_first_evaluation_bucket() {
        let history = History::new(0, 60, vec![1.0; 10]);
        // Bucket 4 = [240, 300) is complete at 300 and seen 30 s later.
        assert_eq!(first_sync(&history, &timing(4)), 330);
        let times = sync_times(&history, &timing(4));
        assert_eq!(times.first(), Some(&330));
        assert_eq!(times.last(), Some(&585));
        assert_eq!(times.len(), 18);
        assert_eq!(last_complete(&history, 300), Some(4));
    }

    /// Load 1 req/s for 10 minutes, then 4 req/s; capacity 1 req/s per pod, target 1 (no
    /// headroom), pods ready after 60 s.
    #[test]
    fn reactive_under_provisioning_follows_delay_window_and_start_up() {
        let mut values = vec![1.0; 10];
        values.extend([4.0; 10]);
        let history = History::new(0, 60, values);
        let spec = HpaSpec::new(1000, 1, 200, 60);
        let outcome = simulate(&history, &timing(5), &spec, Served::Reactive);
        // Syncs from 390 to 1185 (54). The sync at s reads the mean over [s − 150, s − 30):
        // 645: 1.375 → 2 pods; 660: 1.75 → ceil 2, unchanged; 675: 2.125 is within 10 % of
        // 2; 690: 2.5 → 3; 705: 2.875 and 720: 3.25 are within 10 % of 3; 735: 3.625 → 4.
        let up_at = |count: i32| {
            let i = outcome
                .replicas
                .iter()
                .position(|&r| r >= count)
                .unwrap_or_else(|| panic!("never {count}"));
            390 + 15 * i as i64
        };
        assert_eq!(outcome.replicas.len(), 54);
        assert_eq!(up_at(2), 645);
        assert_eq!(up_at(3), 690);
        assert_eq!(up_at(4), 735);
        assert_eq!(outcome.scale_ups, 3);
        assert_eq!(outcome.scale_downs, 0);
        // Ready pods: 1 until 705, 2 until 750, 3 until 795, 4 after; load 4 from 600.
        // Under: [600, 705) deficit 3, [705, 750) deficit 2, [750, 795) deficit 1.
        assert!((outcome.under_minutes - 195.0 / 60.0).abs() < 1e-9);
        assert!(
            (outcome.under_pod_minutes - (105.0 * 3.0 + 45.0 * 2.0 + 45.0) / 60.0).abs() < 1e-9
        );
        // Replica-minutes: 1 pod [390, 645), 2 [645, 690), 3 [690, 735), 4 [735, 1200).
        let expected_cost = (255.0 + 2.0 * 45.0 + 3.0 * 45.0 + 4.0 * 465.0) / 60.0;
        assert!(
            (outcome.replica_minutes - expected_cost).abs() < 1e-9,
            "{}",
            outcome.replica_minutes
        );
    }

    #[test]
    fn oracle_scales_before_the_step() {
        let mut values = vec![1.0; 10];
        values.extend([4.0; 10]);
        let history = History::new(0, 60, values);
        let spec = HpaSpec::new(1000, 1, 200, 60);
        let mut timing = timing(5);
        timing.horizon = 3;
        let outcome = simulate(&history, &timing, &spec, Served::Oracle);
        // Bucket 10 (load 4) is within 3 buckets of origin 7, the last bucket complete at
        // 480 − … : origin 7 is complete at 480, seen by the sync at 510 → 4 pods, ready at
        // 570 < 600.
        assert_eq!(outcome.under_minutes, 0.0);
        assert_eq!(outcome.replicas[(510 - 390) / 15], 4);
        assert_eq!(outcome.replicas[(495 - 390) / 15], 1);
    }

    #[test]
    fn predictive_serves_max_of_live_and_forecast_with_headroom() {
        let history = History::new(0, 60, vec![1.0; 20]);
        let spec = HpaSpec::new(1000, 1, 200, 60);
        // Forecasts per origin from bucket 5: 2 req/s, except 0.5 (below live) from origin 10.
        let forecasts: Vec<f64> = (5..20).map(|o| if o < 10 { 2.0 } else { 0.5 }).collect();
        let outcome = simulate(
            &history,
            &timing(5),
            &spec,
            Served::Predictive {
                forecasts: &forecasts,
                headroom: 0.5,
            },
        );
        // The sync at 390 reads origin 5 (complete at 360, seen at 390 − 30): 2 · 1.5 = 3.
        assert_eq!(outcome.served[0], 3.0);
        // Origin 10 is complete at 660, first read by the sync at 690: 0.5 · 1.5 < live 1.
        assert_eq!(outcome.served[(675 - 390) / 15], 3.0);
        assert_eq!(outcome.served[(690 - 390) / 15], 1.0);
    }

    #[test]
    fn gap_slices_cost_but_are_not_under_provisioned() {
        let history = History::new(0, 60, vec![1.0, 1.0, 1.0, 1.0, 1.0, 9.0, f64::NAN, 1.0]);
        let outcome = static_replicas(&history, &timing(1), 2);
        // Syncs from 150 to 465; bucket 5 = [300, 360) has load 9 > 2: 1 minute, 7 pod-min.
        assert_eq!(outcome.under_minutes, 1.0);
        assert_eq!(outcome.under_pod_minutes, 7.0);
        assert_eq!(outcome.replica_minutes, 2.0 * (480.0 - 150.0) / 60.0);
    }
}
