//! The autoscaling policies simulated on a trace (reactive, predictive per model and
//! headroom, lower reference targets, oracle, static peak), compared fairly, with what each
//! model served at every sync.

use super::hpa::HpaSpec;
use super::served::WindowRow;
use super::simulate::{self, Served, Timing};
use super::{
    PEAK_PODS, PolicyRow, REFERENCE_TARGETS, Settings, fair, predictive_label, target_milli,
};
use crate::forecast::History;

/// What simulating the policies gave.
#[derive(Debug)]
pub struct Simulation {
    /// Policies in table order (none when the simulation was skipped).
    pub policies: Vec<PolicyRow>,
    /// Sync times of the simulation.
    pub syncs: Vec<i64>,
    /// Per model, the predictive forecast served at each sync (`NaN`: none).
    pub served_forecasts: Vec<(String, Vec<f64>)>,
    /// Why the HPA was not simulated, if it was not (no traffic, or a target below 1m).
    pub skipped: Option<String>,
}

/// Simulates every policy from `timing.first_origin` to the trace end, the predictive ones
/// served each model's forecasts from `windows`.
pub fn simulate_all(
    history: &History,
    settings: &Settings,
    timing: &Timing,
    peak: f64,
    windows: &[WindowRow],
) -> Simulation {
    let capacity = timing.capacity;
    let spec_at = |fraction: f64| {
        HpaSpec::new(
            target_milli(fraction * capacity),
            settings.min_replicas,
            settings.max_replicas,
            settings.pod_startup,
        )
    };
    let served = served_inputs(windows);
    let skipped = hpa_skipped(settings, peak, capacity);
    let mut policies = if skipped.is_some() {
        Vec::new()
    } else {
        policy_rows(history, settings, timing, peak, &served, spec_at)
    };
    let syncs = if policies.is_empty() {
        Vec::new()
    } else {
        simulate::sync_times(history, timing)
    };
    fair::compare(history, timing, &syncs, &mut policies, spec_at);
    let served_forecasts = served_at_syncs(history, timing, &syncs, &served);
    Simulation {
        policies,
        syncs,
        served_forecasts,
        skipped,
    }
}

/// The predictive policies are served what the twin serves (the live value where it
/// distrusts the forecast); the non-causal reference as it is.
fn served_inputs(windows: &[WindowRow]) -> Vec<(String, Vec<f64>)> {
    windows
        .iter()
        .map(|row| {
            let i = if row.model.starts_with("level-oracle") {
                &row.alone_forecasts[1]
            } else {
                &row.served_forecasts[1]
            };
            (row.model.clone(), i.clone())
        })
        .collect()
}

/// The rows in table order, before the fair comparison; `spec_at(fraction)` is the HPA at a
/// target of that fraction of capacity.
fn policy_rows(
    history: &History,
    settings: &Settings,
    timing: &Timing,
    peak: f64,
    served: &[(String, Vec<f64>)],
    spec_at: impl Fn(f64) -> HpaSpec,
) -> Vec<PolicyRow> {
    let spec = spec_at(settings.target_utilisation);
    let at_target = |input: Served<'_>| simulate::simulate(history, timing, &spec, input);
    let mut policies = vec![PolicyRow::new(
        "reactive".to_owned(),
        at_target(Served::Reactive),
    )];
    for (model, forecasts) in served {
        for &headroom in &settings.headroom {
            policies.push(PolicyRow::new(
                predictive_label(model, headroom),
                at_target(Served::Predictive {
                    forecasts,
                    headroom,
                }),
            ));
        }
    }
    for fraction in REFERENCE_TARGETS {
        policies.push(PolicyRow::new(
            format!("reactive@{fraction}"),
            simulate::simulate(history, timing, &spec_at(fraction), Served::Reactive),
        ));
    }
    policies.push(PolicyRow::new(
        "oracle".to_owned(),
        at_target(Served::Oracle),
    ));
    // `peak / (peak / 20)` may come out a hair above 20; that is still 20 pods.
    let peak_pods = ((peak / timing.capacity - 1e-9).ceil() as i32).max(1);
    policies.push(PolicyRow::new(
        "static_peak".to_owned(),
        simulate::static_replicas(history, timing, peak_pods),
    ));
    policies
}

/// Per model, the forecast it served at each sync (`NaN`: none).
fn served_at_syncs(
    history: &History,
    timing: &Timing,
    syncs: &[i64],
    served: &[(String, Vec<f64>)],
) -> Vec<(String, Vec<f64>)> {
    served
        .iter()
        .map(|(model, forecasts)| {
            let at_syncs = syncs
                .iter()
                .map(|&s| {
                    simulate::last_complete(history, s - timing.metric_delay)
                        .and_then(|o| o.checked_sub(timing.first_origin))
                        .and_then(|i| forecasts.get(i).copied())
                        .unwrap_or(f64::NAN)
                })
                .collect();
            (model.clone(), at_syncs)
        })
        .collect()
}

/// Why the HPA cannot be simulated on this trace, if so: no traffic to size pods from, or
/// a target below the 1m resolution of a Kubernetes quantity (an HPA given `0m` would
/// compare metric values truncated to 0m with it, and every policy would sit at
/// minReplicas).
fn hpa_skipped(settings: &Settings, peak: f64, capacity: f64) -> Option<String> {
    if capacity.is_nan() || capacity <= 0.0 {
        return Some(format!(
            "HPA simulation skipped: the evaluation window has no traffic (peak {peak} req/s), so the default capacity (peak / {PEAK_PODS}) is 0; give --capacity"
        ));
    }
    let lowest = REFERENCE_TARGETS
        .iter()
        .copied()
        .fold(settings.target_utilisation, f64::min);
    if (lowest * capacity * 1000.0).round() < 1.0 {
        return Some(format!(
            "HPA simulation skipped: a target AverageValue of {lowest} × {capacity:.3e} req/s per pod is below 1m (0.001), the resolution of a Kubernetes quantity; serve the metric in a smaller unit (requests per minute or hour) or give --capacity ≥ {} req/s per pod",
            0.0005 / lowest
        ));
    }
    None
}
