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

    /// Plain headroom's under-provisioned pod-minutes at `replica_minutes`, with the target
    /// fraction there: interpolated linearly between each pair of neighbouring targets whose
    /// costs bracket it, the lowest of those (costs need not fall monotonically with the
    /// target, so several pairs may bracket it; the best target at that cost is the fair
    /// rival); `None` when no pair brackets it (cheaper than every target or dearer).
    pub fn at(&self, replica_minutes: f64) -> Option<(f64, f64)> {
        self.points
            .windows(2)
            .filter_map(|pair| {
                let (f0, r0, u0) = pair[0];
                let (f1, r1, u1) = pair[1];
                let (lo, hi) = (r0.min(r1), r0.max(r1));
                if !(lo <= replica_minutes && replica_minutes <= hi) {
                    return None;
                }
                // Exactly at a simulated target: its own figures (no rounding of a blend).
                if replica_minutes == r0 {
                    return Some((u0, f0));
                }
                if replica_minutes == r1 {
                    return Some((u1, f1));
                }
                let t = (replica_minutes - r0) / (r1 - r0);
                Some((u0 + t * (u1 - u0), f0 + t * (f1 - f0)))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }
}

/// One of the steepest rises of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rise {
    /// The last bucket before the rise (its origin).
    pub bucket: usize,
    /// Unix second the rise starts (the end of that bucket).
    pub start: i64,
    /// The mean load over the horizon after it, req/s.
    pub level: f64,
    /// Ready replicas that level needs: `ceil(level / capacity)`.
    pub need: i32,
}

/// Rises ranked at most this many.
pub const RISES: usize = 20;

/// Ready replicas a load needs: `ceil(load / capacity)`, at least 1.
fn need(load: f64, capacity: f64) -> i32 {
    (load / capacity - 1e-9).ceil().max(1.0) as i32
}

/// The mean of the present values of `values[from..to]` (`None`: none present or out of
/// range).
fn mean_present(values: &[f64], from: usize, to: usize) -> Option<f64> {
    let (sum, n) = values
        .get(from..to)?
        .iter()
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The `count` steepest sustained rises from `first_origin` on: for each origin bucket `t`,
/// the increase from the mean load of the `horizon` buckets up to it to the mean of the
/// `horizon` buckets after it (a one-bucket burst moves a mean little; a new level moves it
/// fully); taken greedily from the largest, each at least an hour (and a horizon) away from
/// those taken before. Only rises that need more ready replicas than the level before
/// them count (noise within one replica's capacity is no rise), and of those only the ones
/// `covered` does not call covered already.
pub fn steepest_rises(
    history: &History,
    first_origin: usize,
    horizon: usize,
    capacity: f64,
    count: usize,
    covered: impl Fn(&Rise) -> bool,
) -> Vec<Rise> {
    let values = &history.values;
    let horizon = horizon.max(1);
    let mut candidates: Vec<(f64, usize, f64)> = (first_origin.max(horizon - 1)..values.len())
        .filter_map(|t| {
            let before = mean_present(values, t + 1 - horizon, t + 1)?;
            let after = mean_present(values, t + 1, t + 1 + horizon)?;
            (need(after, capacity) > need(before, capacity)).then_some((after - before, t, after))
        })
        .collect();
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let apart = usize::try_from(3600 / history.step.max(1))
        .unwrap_or(1)
        .max(horizon);
    let mut taken: Vec<Rise> = Vec::new();
    for (_, t, level) in candidates {
        if taken.len() == count {
            break;
        }
        if taken.iter().any(|r| r.bucket.abs_diff(t) < apart) {
            continue;
        }
        let rise = Rise {
            bucket: t,
            start: history.start + (t as i64 + 1) * history.step,
            level,
            need: need(level, capacity),
        };
        if !covered(&rise) {
            taken.push(rise);
        }
    }
    taken
}

/// The replicas `outcome` holds at `t` (at the last sync at or before it; 0 before the
/// first).
fn held(outcome: &Outcome, syncs: &[i64], t: i64) -> i32 {
    let i = syncs.partition_point(|&s| s <= t);
    i.checked_sub(1)
        .and_then(|i| outcome.replicas.get(i).copied())
        .unwrap_or(0)
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
/// rise until three horizons after it (a policy that does not get there by then counts as
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
            let until = r.start + 3 * horizon_seconds;
            (reach(reactive, syncs, r.need, from, until)
                - reach(policy, syncs, r.need, from, until)) as f64
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
/// (the first policy is the reactive one), and adds before `oracle` the plain-headroom
/// policy at the cost of the default forecast policy ([`plain_headroom_policy`]), simulated at
/// the grid target nearest its equal-cost target, so that tables and plots show it;
/// `spec_at(fraction)` is the HPA at a target of that fraction of capacity.
pub fn compare(
    history: &History,
    timing: &Timing,
    syncs: &[i64],
    policies: &mut Vec<PolicyRow>,
    spec_at: impl Fn(f64) -> HpaSpec,
) {
    let Some(reactive) = policies.first().map(|p| p.outcome.clone()) else {
        return;
    };
    let frontier = Frontier::simulate(history, timing, &headroom_grid(), &spec_at);
    if let Some(fraction) = plain_headroom_policy(policies)
        .and_then(|p| frontier.at(p.outcome.replica_minutes))
        .map(|(_, f)| (f * 100.0).round() / 100.0)
    {
        let row = PolicyRow::new(
            format!("{PLAIN_HEADROOM}@{fraction}"),
            simulate::simulate(history, timing, &spec_at(fraction), Served::Reactive),
        );
        let at = policies
            .iter()
            .position(|p| p.policy == "oracle")
            .unwrap_or(policies.len());
        policies.insert(at, row);
    }
    let horizon_seconds = timing.horizon as i64 * history.step;
    // A rise the reactive HPA already holds the replicas for a horizon before it (its
    // target leaves headroom) is no test of a lead.
    let rises = steepest_rises(
        history,
        timing.first_origin,
        timing.horizon,
        timing.capacity,
        RISES,
        |rise| held(&reactive, syncs, rise.start - horizon_seconds) >= rise.need,
    );
    for row in policies.iter_mut() {
        row.plain_headroom = frontier.at(row.outcome.replica_minutes);
        if !row.outcome.served.iter().all(|v| v.is_nan()) {
            row.lead_on_rises =
                lead_on_rises(&rises, syncs, &reactive, &row.outcome, horizon_seconds);
        }
    }
}

/// The policy name prefix of the reactive HPA at the target whose cost matches the default
/// forecast policy's ([`plain_headroom_policy`]; `plain-headroom@0.58`).
pub const PLAIN_HEADROOM: &str = "plain-headroom";

/// The policy the plain-headroom row is matched to: the default model's without headroom
/// if simulated, else the first `predictive:` policy without headroom of a model other than
/// persistence, else persistence's.
pub fn plain_headroom_policy(policies: &[PolicyRow]) -> Option<&PolicyRow> {
    let forecast = |p: &&PolicyRow| p.policy.starts_with("predictive:") && !p.policy.contains('@');
    let default = format!("predictive:{}", crate::forecast::model::DEFAULT);
    policies
        .iter()
        .find(|p| p.policy == default)
        .or_else(|| {
            policies
                .iter()
                .filter(forecast)
                .find(|p| p.policy != format!("predictive:{}", super::BASELINE))
        })
        .or_else(|| policies.iter().find(forecast))
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
        // A cheaper target that costs more (rounding of the target and of pod counts):
        // 125 is bracketed by 0.6–0.55 (30 → 40: 35) and by 0.55–0.5 (40 → 12: 26);
        // the better one is the rival.
        let frontier = Frontier {
            points: vec![(0.6, 120.0, 30.0), (0.55, 130.0, 40.0), (0.5, 120.0, 12.0)],
        };
        let (under, fraction) = frontier.at(125.0).unwrap_or_default();
        assert!((under - 26.0).abs() < 1e-12 && (fraction - 0.525).abs() < 1e-12);
        assert_eq!(frontier.at(120.0), Some((12.0, 0.5)));
    }

    #[test]
    fn frontier_of_a_constant_load_costs_its_replica_counts() {
        // 1 req/s for 20 minutes, 1 req/s per pod, origins from bucket 5: syncs from 390 s
        // (bucket 5 complete at 360, seen 30 s later) to the end at 1200 s, 13.5 minutes.
        // At a target of f req/s per pod the reactive HPA holds ceil(1 / f) pods: 1 at 1.0,
        // 2 at 0.6 and 0.5, 4 at 0.3; none is ever short of capacity.
        let history = History::new(0, 60, vec![1.0; 20]);
        let timing = Timing {
            sync: 15,
            metric_delay: 30,
            rate_window: 120,
            capacity: 1.0,
            first_origin: 5,
            horizon: 2,
        };
        let frontier = Frontier::simulate(&history, &timing, &[0.5, 1.0, 0.3, 0.6], |f| {
            HpaSpec::new(super::super::target_milli(f), 1, 200, 60)
        });
        assert_eq!(
            frontier.points,
            vec![
                (1.0, 13.5, 0.0),
                (0.6, 27.0, 0.0),
                (0.5, 27.0, 0.0),
                (0.3, 54.0, 0.0)
            ]
        );
        // Halfway between one and two pods' cost: halfway between targets 1.0 and 0.6.
        assert_eq!(frontier.at(20.25), Some((0.0, 0.8)));
    }

    #[test]
    fn rises_are_the_largest_level_increases_an_hour_apart() {
        // 60 s buckets, horizon 3: the load steps from 1 to 7 at bucket 10 and back at 40,
        // a one-bucket burst to 10 at bucket 50 (its mean over three buckets rises by 3
        // only), and a step from 1 to 4 at bucket 150.
        let mut values = vec![1.0; 200];
        values[10..40].iter_mut().for_each(|v| *v = 7.0);
        values[50] = 10.0;
        values[150..].iter_mut().for_each(|v| *v = 4.0);
        let history = History::new(0, 60, values);
        let rises = steepest_rises(&history, 0, 3, 1.0, 5, |_| false);
        // Bucket 9: mean 1 up to it, 7 after it (+6). Buckets 8 and 10 rise by 4 and are
        // too close. Buckets 47–49: 1 → (10 + 1 + 1) / 3 = 4 (+3) are within an hour of 9;
        // bucket 149: 1 → 4 (+3) is not.
        assert_eq!(
            rises,
            vec![
                Rise {
                    bucket: 9,
                    start: 600,
                    level: 7.0,
                    need: 7
                },
                Rise {
                    bucket: 149,
                    start: 9000,
                    level: 4.0,
                    need: 4
                },
            ]
        );
        // From bucket 100 on, only the last is left.
        assert_eq!(steepest_rises(&history, 100, 3, 1.0, 5, |_| false).len(), 1);
        // At 10 req/s per pod one pod serves all of it: no rise needs more.
        assert_eq!(
            steepest_rises(&history, 0, 3, 10.0, 5, |_| false),
            Vec::new()
        );
        // Rises an HPA covers already are left out; the next-largest fills in: bucket 8
        // (1 → (1 + 7 + 7) / 3 = 5, need 5).
        let rises = steepest_rises(&history, 0, 3, 1.0, 5, |r| r.need == 7);
        assert_eq!(rises.iter().map(|r| r.bucket).collect::<Vec<_>>(), [8, 149]);
    }

    #[test]
    fn lead_is_the_median_of_the_reach_time_differences() {
        // Syncs every 15 s from 0; rises start at 300 (need 3) and 1200 (need 2); horizon
        // 120 s, so each is looked for from 180 (1080) to 660 (1560).
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
                level: 3.0,
                need: 3,
            },
            Rise {
                bucket: 19,
                start: 1200,
                level: 2.0,
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
        // A policy that never gets there counts as reaching at the end (660, 1560).
        let never = at(&[]);
        assert_eq!(
            lead_on_rises(&rises, &syncs, &reactive, &never, 120),
            Some((-5.0 + -5.0) / 2.0)
        );
        assert_eq!(lead_on_rises(&[], &syncs, &reactive, &twin, 120), None);
    }
}
