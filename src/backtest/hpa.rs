//! The stock Kubernetes HPA controller's decision for one External metric with an
//! AverageValue target, ported from `pkg/controller/podautoscaler` (replica calculator,
//! behaviour stabilisation and rate limits), driving a simulated Deployment whose new pods
//! become ready after a start-up delay.
//!
//! Time is in whole seconds. What is ported, function by function:
//! - `GetExternalPerPodMetricReplicas`: usage and target are milli-quantities; the proposal is
//!   `ceil(usage / target)` unless `|usage / (target · replicas) − 1| ≤ tolerance`, in which
//!   case it is the current count;
//! - `reconcileAutoscaler`: a count above max (below min) goes straight to max (min) without
//!   reading the metric; a metric that cannot be read skips the sync (nothing recorded);
//! - `stabilizeRecommendationWithBehaviors`: the recommendation is clamped between the
//!   minimum of the recommendations recorded strictly after `now − scaleUp window` and the
//!   maximum of those strictly after `now − scaleDown window` (the new one included), and the
//!   unstabilised recommendation is recorded;
//! - `convertDesiredReplicasWithBehaviorRate` with `calculateScaleUpLimitWithScalingRules` /
//!   `calculateScaleDownLimitWithBehaviors`: the replicas at the start of each policy period
//!   are the current count minus the changes of scale events strictly after `now − period`;
//! - default behaviour (`GenerateHPAScaleUpRules` / `GenerateHPAScaleDownRules`): up 0 s
//!   window, max(100 %, 4 pods) per 15 s; down 300 s window, 100 % per 15 s.

use crate::quantity::to_milli;

/// `autoscaling/v2` HPAScalingPolicyType.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A number of pods per period.
    Pods,
    /// A percentage of the replicas at the start of the period.
    Percent,
}

/// One `HPAScalingPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScalingPolicy {
    /// Pods or Percent.
    pub kind: PolicyKind,
    /// How many pods, or what percentage.
    pub value: i32,
    /// Period in seconds.
    pub period: i64,
}

/// `selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectPolicy {
    /// The policy allowing the biggest change (default).
    Max,
    /// The policy allowing the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `HPAScalingRules` for one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    pub stabilization: i64,
    /// `selectPolicy`.
    pub select: SelectPolicy,
    /// `policies`.
    pub policies: Vec<ScalingPolicy>,
}

impl ScalingRules {
    /// The default scale-up rules: no stabilisation, max(4 pods, 100 %) per 15 s.
    pub fn default_scale_up() -> Self {
        Self {
            stabilization: 0,
            select: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: 15,
                },
                ScalingPolicy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period: 15,
                },
            ],
        }
    }

    /// The default scale-down rules: 300 s stabilisation, 100 % per 15 s.
    pub fn default_scale_down() -> Self {
        Self {
            stabilization: 300,
            select: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period: 15,
            }],
        }
    }

    fn longest_period(&self) -> i64 {
        self.policies.iter().map(|p| p.period).max().unwrap_or(0)
    }
}

/// The HPA object and the Deployment's pod start-up time.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaSpec {
    /// Target AverageValue in milli-units (`Quantity.MilliValue()`, > 0).
    pub target_milli: i64,
    /// `minReplicas` (≥ 1).
    pub min_replicas: i32,
    /// `maxReplicas`.
    pub max_replicas: i32,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1).
    pub tolerance: f64,
    /// `behavior.scaleUp`.
    pub scale_up: ScalingRules,
    /// `behavior.scaleDown`.
    pub scale_down: ScalingRules,
    /// Seconds from a pod's creation until it is ready.
    pub pod_startup: i64,
}

impl HpaSpec {
    /// Default behaviour, tolerance 0.1, the given target and replica bounds.
    pub fn new(target_milli: i64, min_replicas: i32, max_replicas: i32, pod_startup: i64) -> Self {
        Self {
            target_milli,
            min_replicas,
            max_replicas,
            tolerance: 0.1,
            scale_up: ScalingRules::default_scale_up(),
            scale_down: ScalingRules::default_scale_down(),
            pod_startup,
        }
    }
}

/// What one sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncOutcome {
    /// The metric could not be read; nothing changed or was recorded.
    Skipped,
    /// The replica count stayed.
    Unchanged,
    /// The replica count changed.
    Scaled {
        /// Count before.
        from: i32,
        /// Count after.
        to: i32,
    },
}

#[derive(Debug, Clone, Copy)]
struct Timestamped {
    at: i64,
    value: i32,
}

/// The controller's memory for one HPA and the Deployment's pods.
#[derive(Debug, Clone)]
pub struct Hpa {
    spec: HpaSpec,
    recommendations: Vec<Timestamped>,
    scale_up_events: Vec<Timestamped>,
    scale_down_events: Vec<Timestamped>,
    /// Ready time of each pod, oldest pod first (non-decreasing).
    pods: Vec<i64>,
}

impl Hpa {
    /// An HPA whose Deployment has `replicas` pods, all ready at `now`, and no history.
    pub fn new(spec: HpaSpec, replicas: i32, now: i64) -> Self {
        let replicas = replicas
            .max(spec.min_replicas)
            .min(spec.max_replicas)
            .max(0);
        Self {
            pods: vec![now; usize::try_from(replicas).unwrap_or(0)],
            spec,
            recommendations: Vec::new(),
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }

    /// The spec this HPA runs.
    pub fn spec(&self) -> &HpaSpec {
        &self.spec
    }

    /// Pods that exist (ready or starting): the Deployment's `spec.replicas`.
    pub fn replicas(&self) -> i32 {
        i32::try_from(self.pods.len()).unwrap_or(i32::MAX)
    }

    /// Pods ready at time `t` (those that exist now and became ready at or before `t`).
    pub fn ready_at(&self, t: i64) -> i32 {
        i32::try_from(self.pods.partition_point(|&ready| ready <= t)).unwrap_or(i32::MAX)
    }

    /// Ready times of the pods, oldest pod first.
    pub fn pod_ready_times(&self) -> &[i64] {
        &self.pods
    }

    /// One controller sync at `now` with the metric's value (`None`: unavailable).
    pub fn sync(&mut self, now: i64, usage: Option<f64>) -> SyncOutcome {
        let current = self.replicas();
        let desired = if current > self.spec.max_replicas {
            self.spec.max_replicas
        } else if current < self.spec.min_replicas {
            self.spec.min_replicas
        } else {
            let Some(usage) = usage.filter(|u| u.is_finite()) else {
                return SyncOutcome::Skipped;
            };
            // `desiredReplicas` starts at 0 and takes the metric's proposal when larger.
            let proposal = self.proposal(current, to_milli(usage)).max(0);
            self.normalize(now, current, proposal)
        };
        if desired == current {
            return SyncOutcome::Unchanged;
        }
        self.scale(now, current, desired);
        SyncOutcome::Scaled {
            from: current,
            to: desired,
        }
    }

    /// `GetExternalPerPodMetricReplicas`: the replica count the metric asks for.
    fn proposal(&self, current: i32, usage_milli: i64) -> i32 {
        let target = self.spec.target_milli as f64;
        let usage = usage_milli as f64;
        let ratio = usage / (target * f64::from(current));
        if (1.0 - ratio).abs() > self.spec.tolerance {
            saturating_i32((usage / target).ceil())
        } else {
            current
        }
    }

    /// `normalizeDesiredReplicasWithBehaviors`: stabilisation, then rate limits.
    fn normalize(&mut self, now: i64, current: i32, desired: i32) -> i32 {
        let stabilized = self.stabilize(now, current, desired);
        self.rate_limit(now, current, stabilized)
    }

    /// `stabilizeRecommendationWithBehaviors`.
    fn stabilize(&mut self, now: i64, current: i32, desired: i32) -> i32 {
        let up_cutoff = now - self.spec.scale_up.stabilization;
        let down_cutoff = now - self.spec.scale_down.stabilization;
        // Entries at or before both cutoffs can never count again (time only moves on).
        let oldest = up_cutoff.min(down_cutoff);
        self.recommendations.retain(|r| r.at > oldest);
        let mut up = desired;
        let mut down = desired;
        for r in &self.recommendations {
            if r.at > up_cutoff {
                up = up.min(r.value);
            }
            if r.at > down_cutoff {
                down = down.max(r.value);
            }
        }
        let mut recommendation = current;
        if recommendation < up {
            recommendation = up;
        }
        if recommendation > down {
            recommendation = down;
        }
        self.recommendations.push(Timestamped {
            at: now,
            value: desired,
        });
        recommendation
    }

    /// `convertDesiredReplicasWithBehaviorRate`.
    fn rate_limit(&self, now: i64, current: i32, desired: i32) -> i32 {
        if desired > current {
            let limit = self.scale_up_limit(now, current).max(current);
            let allowed = self.spec.max_replicas.min(limit);
            desired.min(allowed)
        } else if desired < current {
            let limit = self.scale_down_limit(now, current).min(current);
            let allowed = self.spec.min_replicas.max(limit);
            desired.max(allowed)
        } else {
            desired
        }
    }

    /// Replicas at the start of a policy period: `current − added + deleted`.
    fn period_start(&self, now: i64, period: i64, current: i32) -> i32 {
        let cutoff = now - period;
        let within = |events: &[Timestamped]| -> i32 {
            events
                .iter()
                .filter(|e| e.at > cutoff)
                .map(|e| e.value)
                .sum()
        };
        current - within(&self.scale_up_events) + within(&self.scale_down_events)
    }

    /// `calculateScaleUpLimitWithScalingRules`.
    fn scale_up_limit(&self, now: i64, current: i32) -> i32 {
        let rules = &self.spec.scale_up;
        let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Min => (i32::MAX, i32::min),
            SelectPolicy::Max => (i32::MIN, i32::max),
        };
        for policy in &rules.policies {
            let start = self.period_start(now, policy.period, current);
            let proposed = match policy.kind {
                PolicyKind::Pods => start.saturating_add(policy.value),
                PolicyKind::Percent => saturating_i32(
                    (f64::from(start) * (1.0 + f64::from(policy.value) / 100.0)).ceil(),
                ),
            };
            result = pick(result, proposed);
        }
        result
    }

    /// `calculateScaleDownLimitWithBehaviors`.
    fn scale_down_limit(&self, now: i64, current: i32) -> i32 {
        let rules = &self.spec.scale_down;
        let (mut result, pick): (i32, fn(i32, i32) -> i32) = match rules.select {
            SelectPolicy::Disabled => return current,
            SelectPolicy::Min => (i32::MIN, i32::max),
            SelectPolicy::Max => (i32::MAX, i32::min),
        };
        for policy in &rules.policies {
            let start = self.period_start(now, policy.period, current);
            let proposed = match policy.kind {
                PolicyKind::Pods => start.saturating_sub(policy.value),
                // Go converts with int32(), which truncates toward zero.
                PolicyKind::Percent => {
                    saturating_i32(f64::from(start) * (1.0 - f64::from(policy.value) / 100.0))
                }
            };
            result = pick(result, proposed);
        }
        result
    }

    /// Changes the Deployment and records the scale event (`storeScaleEvent`).
    fn scale(&mut self, now: i64, from: i32, to: i32) {
        let change = (to - from).abs();
        let (events, longest) = if to > from {
            let ready = now + self.spec.pod_startup;
            self.pods.extend(std::iter::repeat_n(
                ready,
                usize::try_from(change).unwrap_or(0),
            ));
            (
                &mut self.scale_up_events,
                self.spec.scale_up.longest_period(),
            )
        } else {
            // The ReplicaSet deletes not-ready and then the newest pods first.
            self.pods.truncate(usize::try_from(to).unwrap_or(0));
            (
                &mut self.scale_down_events,
                self.spec.scale_down.longest_period(),
            )
        };
        events.retain(|e| e.at > now - longest);
        events.push(Timestamped {
            at: now,
            value: change,
        });
    }
}

/// `int32(x)` for the values the controller produces, saturating instead of wrapping.
fn saturating_i32(x: f64) -> i32 {
    // `as` saturates at the bounds and maps NaN to 0.
    x as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Target 1.000 (1000 milli) per pod, 1..=200 replicas, pods ready after 60 s.
    fn spec() -> HpaSpec {
        HpaSpec::new(1000, 1, 200, 60)
    }

    #[test]
    fn within_tolerance_the_count_stays() {
        let mut hpa = Hpa::new(spec(), 10, 0);
        // 10 pods at target 1: usage 10.9 is a ratio of 1.09, inside the 10 % band.
        assert_eq!(hpa.sync(15, Some(10.9)), SyncOutcome::Unchanged);
        // 9.05 is 0.905: inside too (no scale-down to 10 either).
        assert_eq!(hpa.sync(30, Some(9.05)), SyncOutcome::Unchanged);
        // 11.01 is 1.101: outside; ceil(11.01) = 12.
        assert_eq!(
            hpa.sync(45, Some(11.01)),
            SyncOutcome::Scaled { from: 10, to: 12 }
        );
    }

    #[test]
    fn usage_is_truncated_to_milli_and_target_divides_it() {
        let mut hpa = Hpa::new(HpaSpec::new(87, 1, 200, 60), 10, 0);
        // 1.0009 → 1000 milli; 1000 / (87 · 10) = 1.149 is outside the band;
        // ceil(1000 / 87) = ceil(11.49) = 12.
        assert_eq!(
            hpa.sync(15, Some(1.0009)),
            SyncOutcome::Scaled { from: 10, to: 12 }
        );
        // 1.0449 → 1044 milli: 1044 / (87 · 12) = 1.0 exactly, no change; 1.0441 would be
        // the same milli value.
        assert_eq!(hpa.sync(30, Some(1.0449)), SyncOutcome::Unchanged);
    }

    #[test]
    fn scale_up_is_limited_to_max_of_four_pods_and_double() {
        let mut hpa = Hpa::new(spec(), 1, 0);
        // From 1: max(1 + 4, 2 · 1) = 5.
        assert_eq!(
            hpa.sync(15, Some(100.0)),
            SyncOutcome::Scaled { from: 1, to: 5 }
        );
        // The event at 15 is exactly one period old at 30: not counted (strict after).
        // From 5: max(5 + 4, 10) = 10.
        assert_eq!(
            hpa.sync(30, Some(100.0)),
            SyncOutcome::Scaled { from: 5, to: 10 }
        );
        assert_eq!(
            hpa.sync(45, Some(100.0)),
            SyncOutcome::Scaled { from: 10, to: 20 }
        );
        assert_eq!(
            hpa.sync(60, Some(100.0)),
            SyncOutcome::Scaled { from: 20, to: 40 }
        );
        assert_eq!(
            hpa.sync(75, Some(100.0)),
            SyncOutcome::Scaled { from: 40, to: 80 }
        );
        assert_eq!(
            hpa.sync(90, Some(100.0)),
            SyncOutcome::Scaled { from: 80, to: 100 }
        );
    }

    #[test]
    fn scale_up_within_one_period_counts_earlier_events() {
        let mut hpa = Hpa::new(spec(), 2, 0);
        // From 2: limit max(2 + 4, 4) = 6.
        assert_eq!(
            hpa.sync(15, Some(50.0)),
            SyncOutcome::Scaled { from: 2, to: 6 }
        );
        // 10 s later (an off-cycle sync): the period started at 2 replicas, so the limit
        // is still 6 and nothing more may be added.
        assert_eq!(hpa.sync(25, Some(50.0)), SyncOutcome::Unchanged);
        // At 31 the event at 15 is 16 s old: limit max(6 + 4, 12) = 12.
        assert_eq!(
            hpa.sync(31, Some(50.0)),
            SyncOutcome::Scaled { from: 6, to: 12 }
        );
    }

    #[test]
    fn scale_down_waits_for_the_max_of_the_300s_window() {
        let mut hpa = Hpa::new(spec(), 10, 0);
        // Recommendation 10 recorded at 15 (usage 10 = on target).
        assert_eq!(hpa.sync(15, Some(10.0)), SyncOutcome::Unchanged);
        // Load drops to 3 from 30 on: the window still holds 10.
        for t in (30..=300).step_by(15) {
            assert_eq!(hpa.sync(t, Some(3.0)), SyncOutcome::Unchanged, "t={t}");
        }
        // At 315 the record at 15 is exactly 300 s old: outside (strict after), so the
        // max of the window is 3 and all 7 pods go at once (100 % per 15 s).
        assert_eq!(
            hpa.sync(315, Some(3.0)),
            SyncOutcome::Scaled { from: 10, to: 3 }
        );
    }

    #[test]
    fn scale_down_follows_the_window_max_step_by_step() {
        let mut hpa = Hpa::new(spec(), 10, 0);
        // Recommendations 8 at 15, 6 at 30, then 2 from 45 on. The window is empty at
        // first, so 8 applies at once.
        assert_eq!(
            hpa.sync(15, Some(8.0)),
            SyncOutcome::Scaled { from: 10, to: 8 }
        );
        let _ = hpa.sync(30, Some(6.0));
        assert_eq!(hpa.replicas(), 8, "window max is 8 (from 15)");
        for t in (45..=300).step_by(15) {
            let _ = hpa.sync(t, Some(2.0));
            assert_eq!(hpa.replicas(), 8, "t={t}");
        }
        let _ = hpa.sync(315, Some(2.0));
        assert_eq!(
            hpa.replicas(),
            6,
            "at 315 the 8 at 15 left the window; 6 at 30 remains"
        );
        let _ = hpa.sync(330, Some(2.0));
        assert_eq!(hpa.replicas(), 2);
    }

    #[test]
    fn scale_down_rate_limit_of_a_pods_policy() {
        let mut spec = spec();
        spec.scale_down = ScalingRules {
            stabilization: 0,
            select: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                kind: PolicyKind::Pods,
                value: 2,
                period: 60,
            }],
        };
        let mut hpa = Hpa::new(spec, 10, 0);
        assert_eq!(
            hpa.sync(15, Some(1.0)),
            SyncOutcome::Scaled { from: 10, to: 8 }
        );
        // Within 60 s of that event the period started at 10: limit 10 − 2 = 8.
        assert_eq!(hpa.sync(30, Some(1.0)), SyncOutcome::Unchanged);
        assert_eq!(hpa.sync(74, Some(1.0)), SyncOutcome::Unchanged);
        // At 75 the event is exactly 60 s old: outside the period (strict after cutoff).
        assert_eq!(
            hpa.sync(75, Some(1.0)),
            SyncOutcome::Scaled { from: 8, to: 6 }
        );
    }

    #[test]
    fn default_scale_down_rate_allows_everything_but_min_replicas() {
        let mut spec = spec();
        spec.scale_down.stabilization = 0;
        spec.min_replicas = 3;
        let mut hpa = Hpa::new(spec, 50, 0);
        assert_eq!(
            hpa.sync(15, Some(0.0)),
            SyncOutcome::Scaled { from: 50, to: 3 }
        );
    }

    #[test]
    fn new_pods_are_ready_after_the_start_up_delay() {
        let mut hpa = Hpa::new(spec(), 2, 0);
        assert_eq!(
            hpa.sync(15, Some(4.0)),
            SyncOutcome::Scaled { from: 2, to: 4 }
        );
        assert_eq!(hpa.replicas(), 4);
        assert_eq!(hpa.ready_at(15), 2);
        assert_eq!(hpa.ready_at(74), 2);
        assert_eq!(hpa.ready_at(75), 4);
    }

    #[test]
    fn scale_down_deletes_starting_pods_first() {
        let mut spec = spec();
        spec.scale_down.stabilization = 0;
        let mut hpa = Hpa::new(spec, 2, 0);
        let _ = hpa.sync(15, Some(6.0));
        assert_eq!(hpa.pod_ready_times(), &[0, 0, 75, 75, 75, 75]);
        let _ = hpa.sync(30, Some(3.0));
        assert_eq!(hpa.pod_ready_times(), &[0, 0, 75]);
        assert_eq!(hpa.ready_at(30), 2);
    }

    #[test]
    fn missing_metric_skips_the_sync_and_records_nothing() {
        let mut hpa = Hpa::new(spec(), 10, 0);
        assert_eq!(hpa.sync(15, None), SyncOutcome::Skipped);
        assert_eq!(hpa.sync(30, Some(f64::NAN)), SyncOutcome::Skipped);
        assert_eq!(hpa.replicas(), 10);
        // Nothing was recorded: with an empty 300 s window a low value scales down at once.
        assert_eq!(
            hpa.sync(45, Some(2.0)),
            SyncOutcome::Scaled { from: 10, to: 2 }
        );
    }

    #[test]
    fn counts_outside_the_bounds_go_to_the_bound_without_the_metric() {
        let mut spec = spec();
        spec.max_replicas = 5;
        let mut hpa = Hpa {
            pods: vec![0; 8],
            ..Hpa::new(spec, 1, 0)
        };
        assert_eq!(hpa.sync(15, None), SyncOutcome::Scaled { from: 8, to: 5 });
        // Scaling up stops at max.
        assert_eq!(hpa.sync(30, Some(100.0)), SyncOutcome::Unchanged);
    }
}
