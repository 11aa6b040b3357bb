//! The fair comparison of `augur backtest`: what plain headroom (the same reactive HPA with a
//! lower target) leaves under-provisioned at a policy's own cost, and how many minutes ahead
//! of the reactive HPA a policy reaches the replicas the steepest rises of the trace need.

use super::PolicyRow;
use super::hpa::HpaSpec;
use super::simulate::{self, Outcome, Served, Timing};
use crate::forecast::History;

/// Targets (fractions of pod capacity) of the plain-headroom grid: 0.20, 0.21, …, 1.00.
pub fn headroom_grid() -> Vec<f64> {
    (20..=100).map(|k| f64::from(k) / 100.0).collect()
}

/// Plain headroom's cost/shortfall curve: the reactive HPA simulated at each target of a
/// grid, as `(target fraction, replica-minutes, under-provisioned pod-minutes)`, highest
/// target (cheapest) first.
#[derive(Debug, Clone, PartialEq)]
pub struct Frontier {
    /// The simulated points, targets descending.
    pub points: Vec<(f64, f64, f64)>,
}

impl Frontier {
    /// Simulates the reactive HPA at every target of `fractions` (`spec_at(fraction)`).
    pub fn simulate(
        history: &History,
        timing: &Timing,
        fractions: &[f64],
        spec_at: impl Fn(f64) -> HpaSpec,
    ) -> Self {
        let mut fractions = fractions.to_vec();
        fractions.sort_by(|a, b| b.total_cmp(a));
        fractions.dedup();
        let points = fractions
            .into_iter()
            .map(|f| {
                let o = simulate::simulate(history, timing, &spec_at(f), Served::Reactive);
                (f, o.replica_minutes, o.under_pod_minutes)
            })
            .collect();
        Self { points }
    }

    /// Plain headroom's under-provisioned pod-minutes at `replica_minutes`, interpolated
    /// linearly between the first two neighbouring targets whose costs bracket it, with the
    /// target fraction there; `None` when no pair brackets it (cheaper than the highest
    /// target or dearer than the lowest).
    pub fn at(&self, replica_minutes: f64) -> Option<(f64, f64)> {
        self.points.windows(2).find_map(|pair| {
            let (f0, r0, u0) = pair[0];
            let (f1, r1, u1) = pair[1];
            let (lo, hi) = (r0.min(r1), r0.max(r1));
            if !(lo <= replica_minutes && replica_minutes <= hi) {
                return None;
            }
            let t = if hi > lo {
                (replica_minutes - r0) / (r1 - r0)
            } else {
                0.0
            };
            Some((u0 + t * (u1 - u0), f0 + t * (f1 - f0)))
        })
    }
}

/// One of the steepest rises of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rise {
    /// The last bucket before the rise (its origin).
    pub bucket: usize,
    /// Unix second the rise starts (the end of that bucket).
    pub start: i64,
    /// The highest load within the horizon after it, req/s.
    pub peak: f64,
    /// Ready replicas that peak needs: `ceil(peak / capacity)`.
    pub need: i32,
}

/// Rises ranked at most this many.
pub const RISES: usize = 20;

/// The `count` steepest rises from `first_origin` on: for each origin bucket `t`, the
/// increase from its load to the highest load of the next `horizon` buckets; taken greedily
/// from the largest, each at least an hour (and a horizon) away from those taken before.
pub fn steepest_rises(
    history: &History,
    first_origin: usize,
    horizon: usize,
    capacity: f64,
    count: usize,
) -> Vec<Rise> {
    let values = &history.values;
    let horizon = horizon.max(1);
    let mut candidates: Vec<(f64, usize, f64)> = (first_origin..values.len())
        .filter_map(|t| {
            let now = values[t];
            let ahead = values.get(t + 1..=t + horizon)?;
            let peak = ahead
                .iter()
                .copied()
                .filter(|v| !v.is_nan())
                .reduce(f64::max)?;
            (!now.is_nan() && peak > now).then_some((peak - now, t, peak))
        })
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let apart = usize::try_from(3600 / history.step.max(1))
        .unwrap_or(1)
        .max(horizon);
    let mut taken: Vec<Rise> = Vec::new();
    for (_, t, peak) in candidates {
        if taken.len() == count {
            break;
        }
        if taken.iter().any(|r| r.bucket.abs_diff(t) < apart) {
            continue;
        }
        taken.push(Rise {
            bucket: t,
            start: history.start + (t as i64 + 1) * history.step,
            peak,
            need: (peak / capacity - 1e-9).ceil().max(1.0) as i32,
        });
    }
    taken
}

/// The first sync from `from` to `until` at which `outcome` holds at least `need` replicas
/// (`until` when none does).
fn reach(outcome: &Outcome, syncs: &[i64], need: i32, from: i64, until: i64) -> i64 {
    syncs
        .iter()
        .zip(&outcome.replicas)
        .skip_while(|(t, _)| **t < from)
        .take_while(|(t, _)| **t <= until)
        .find(|(_, r)| **r >= need)
        .map_or(until, |(t, _)| *t)
}

/// Over `rises`, the median minutes by which `policy` reaches the replicas each rise needs
/// before `reactive` does (negative: after). Each is looked for from a horizon before the
/// rise until two horizons after it (a policy that does not get there by then counts as
/// reaching it then). `None` without rises.
pub fn lead_on_rises(
    rises: &[Rise],
    syncs: &[i64],
    reactive: &Outcome,
    policy: &Outcome,
    horizon_seconds: i64,
) -> Option<f64> {
    let mut leads: Vec<f64> = rises
        .iter()
        .map(|r| {
            let from = r.start - horizon_seconds;
            let until = r.start + 2 * horizon_seconds;
            (reach(reactive, syncs, r.need, from, until) - reach(policy, syncs, r.need, from, until))
                as f64
                / 60.0
        })
        .collect();
    if leads.is_empty() {
        return None;
    }
    leads.sort_by(f64::total_cmp);
    let n = leads.len();
    Some(if n % 2 == 1 {
        leads[n / 2]
    } else {
        (leads[n / 2 - 1] + leads[n / 2]) / 2.0
    })
}

/// Fills every policy's [`PolicyRow::plain_headroom`] and [`PolicyRow::lead_on_rises`]
/// (the first policy is the reactive one); `spec_at(fraction)` is the HPA at a target of
/// that fraction of capacity.
pub fn compare(
    history: &History,
    timing: &Timing,
    syncs: &[i64],
    policies: &mut [PolicyRow],
    spec_at: impl Fn(f64) -> HpaSpec,
) {
    let Some(reactive) = policies.first().map(|p| p.outcome.clone()) else {
        return;
    };
    let frontier = Frontier::simulate(history, timing, &headroom_grid(), spec_at);
    let rises = steepest_rises(
        history,
        timing.first_origin,
        timing.horizon,
        timing.capacity,
        RISES,
    );
    let horizon_seconds = timing.horizon as i64 * history.step;
    for row in policies.iter_mut() {
        row.plain_headroom = frontier.at(row.outcome.replica_minutes);
        if !row.outcome.served.iter().all(|v| v.is_nan()) {
            row.lead_on_rises =
                lead_on_rises(&rises, syncs, &reactive, &row.outcome, horizon_seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(replicas: Vec<i32>) -> Outcome {
        Outcome {
            under_minutes: 0.0,
            under_pod_minutes: 0.0,
            replica_minutes: 0.0,
            scale_ups: 0,
            scale_downs: 0,
            served: vec![f64::NAN; replicas.len()],
            replicas,
        }
    }

    #[test]
    fn frontier_interpolates_between_the_bracketing_targets() {
        let frontier = Frontier {
            points: vec![(0.7, 100.0, 50.0), (0.6, 120.0, 30.0), (0.5, 150.0, 12.0)],
        };
        // 110 is halfway from 100 to 120: 40 pod-min at target 0.65.
        let (under, fraction) = frontier.at(110.0).unwrap_or_default();
        assert!((under - 40.0).abs() < 1e-12 && (fraction - 0.65).abs() < 1e-12);
        // 140 is two thirds from 120 to 150: 30 − 2/3 · 18 = 18.
        let (under, _) = frontier.at(140.0).unwrap_or_default();
        assert!((under - 18.0).abs() < 1e-12);
        assert_eq!(frontier.at(100.0), Some((50.0, 0.7)));
        assert_eq!(frontier.at(99.0), None);
        assert_eq!(frontier.at(151.0), None);
    }

    #[test]
    fn rises_are_the_largest_increases_an_hour_apart() {
        // 60 s buckets: a rise of 4 at bucket 10 (load 1 → 5 within 3 buckets), one of 2 at
        // bucket 40 (too close to the first: 30 buckets), one of 3 at bucket 100.
        let mut values = vec![1.0; 200];
        values[12] = 5.0;
        values[42] = 3.0;
        values[102] = 4.0;
        let history = History::new(0, 60, values);
        let rises = steepest_rises(&history, 0, 3, 1.0, 5);
        // Bucket 9 → its next three hold 5; so do 10 and 11, later and no larger: bucket 9.
        assert_eq!(
            rises,
            vec![
                Rise {
                    bucket: 9,
                    start: 600,
                    peak: 5.0,
                    need: 5
                },
                Rise {
                    bucket: 99,
                    start: 6000,
                    peak: 4.0,
                    need: 4
                },
            ]
        );
        // From bucket 100 on, only the third is left.
        assert_eq!(steepest_rises(&history, 100, 3, 1.0, 5).len(), 1);
    }

    #[test]
    fn lead_is_the_median_of_the_reach_time_differences() {
        // Syncs every 15 s from 0; rises start at 300 (need 3) and 1200 (need 2); horizon
        // 120 s, so each is looked for from 180 (1080) to 540 (1440).
        let syncs: Vec<i64> = (0..120).map(|i| i * 15).collect();
        let at = |pairs: &[(i64, i32)]| {
            outcome(
                syncs
                    .iter()
                    .map(|&t| {
                        pairs
                            .iter()
                            .rev()
                            .find(|(from, _)| t >= *from)
                            .map_or(1, |p| p.1)
                    })
                    .collect(),
            )
        };
        let rises = [
            Rise {
                bucket: 4,
                start: 300,
                peak: 3.0,
                need: 3,
            },
            Rise {
                bucket: 19,
                start: 1200,
                peak: 2.0,
                need: 2,
            },
        ];
        // Reactive gets 3 at 360 and 2 at 1260; the twin 3 at 240 and 2 already at 1050.
        let reactive = at(&[(360, 3), (600, 1), (1260, 2)]);
        let twin = at(&[(240, 3), (600, 1), (1050, 2)]);
        // Leads: 2 minutes and (1260 − 1080) / 60 = 3 minutes: median 2.5.
        assert_eq!(
            lead_on_rises(&rises, &syncs, &reactive, &twin, 120),
            Some(2.5)
        );
        // A policy that never gets there counts as reaching at the end (540, 1440).
        let never = at(&[]);
        assert_eq!(
            lead_on_rises(&rises, &syncs, &reactive, &never, 120),
            Some((-3.0 + -3.0) / 2.0)
        );
        assert_eq!(lead_on_rises(&[], &syncs, &reactive, &twin, 120), None);
    }
}
