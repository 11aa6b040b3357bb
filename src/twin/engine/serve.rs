//! The serve path: a twin request answered from its target's newest frame, or from the
//! live value with the reason the forecast cannot be trusted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::config::{ForecastSpec, Reduce, ServeMode};
use crate::forecast::Target;
use crate::provider::custom::{resolve_custom, run_custom};
use crate::provider::external::{resolve_external, run_external};
use crate::provider::objects::ObjectSource;
use crate::provider::{CustomItem, CustomRequest, ExternalItem, ExternalRequest, ProviderError};
use crate::resources::GroupResource;
use crate::series::{Snapshot, TwinRef};
use crate::units::unix;

use super::targets::{Frame, SeriesKind, TargetKey, fingerprint, label_text};
use super::{Engine, Reason};

/// What a lookup found for a request.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// A fresh frame.
    Frame(Arc<Frame>),
    /// No usable frame: serve live for this reason.
    Fallback(Reason),
}

/// A live-metric error answered for a twin request, saying which twin asked: the message
/// names the live metric, which is not the one in the request path.
fn for_twin(error: ProviderError, twin: &str) -> ProviderError {
    let note = |message: String| format!("{message} (the live metric of the forecast twin {twin})");
    match error {
        ProviderError::MetricNotFound(m) => ProviderError::MetricNotFound(note(m)),
        ProviderError::ObjectNotFound(m) => ProviderError::ObjectNotFound(note(m)),
        ProviderError::QueryBuild(m) => ProviderError::QueryBuild(note(m)),
        ProviderError::BadResult(m) => ProviderError::BadResult(note(m)),
        other => other,
    }
}

/// The value a twin serves for one series: the forecast with headroom, never below live
/// with `serve: max`.
pub fn served_value(spec: &ForecastSpec, live: f64, forecast: f64) -> f64 {
    let ahead = forecast * (1.0 + spec.headroom);
    match spec.serve {
        ServeMode::Max => live.max(ahead),
        ServeMode::Forecast => ahead,
    }
}

/// Per-pod values of a Pods twin: the combined total (live sum vs forecast sum, as
/// [`served_value`]) spread evenly over the `live.len()` pods, so the HPA's average times
/// the pod count is the combined total. With no forecast every pod keeps its live value.
pub fn pod_values(spec: &ForecastSpec, live: &[f64], forecast_sum: Option<f64>) -> Vec<f64> {
    let Some(forecast) = forecast_sum else {
        return live.to_vec();
    };
    if live.is_empty() {
        return Vec::new();
    }
    let total = served_value(spec, live.iter().sum(), forecast);
    vec![total / live.len() as f64; live.len()]
}

/// What a rule's `forecast` block asks of its model: the max or the point at the horizon.
pub fn model_target(spec: &ForecastSpec) -> Target {
    match spec.reduce {
        Reduce::Max => Target::Max(spec.horizon_steps()),
        Reduce::Point => Target::Point(spec.horizon_steps()),
    }
}

impl Engine {
    /// Answers a custom metrics request for a twin metric.
    pub async fn custom_metric(
        &self,
        snapshot: &Snapshot,
        request: &CustomRequest,
        twin: &TwinRef,
        objects: Option<&dyn ObjectSource>,
        now: SystemTime,
    ) -> Result<Vec<CustomItem>, ProviderError> {
        let rule = snapshot.config.rules.get(twin.rule);
        let Some((rule, spec)) = rule.and_then(|r| r.forecast.clone().map(|s| (r, s))) else {
            return Err(ProviderError::MetricNotFound(format!(
                "the metric {:?} refers to a forecast rule that is no longer configured",
                request.metric
            )));
        };
        let live_request = CustomRequest {
            metric: twin.live_metric.clone(),
            ..request.clone()
        };
        let resolved = resolve_custom(snapshot, objects, &live_request)
            .await
            .map_err(|e| for_twin(e, &request.metric))?;
        let pods = resolved.resource.group_resource == GroupResource::new("", "pods");
        let (promql, kind) = if pods {
            // Cluster mode: a matcher for the workload's pods, so the history survives scale
            // events; otherwise the live query's own matchers.
            let history = resolved.stable.as_ref().unwrap_or(&resolved.built);
            (format!("sum({})", history.promql), SeriesKind::PodSum)
        } else {
            (
                resolved.built.promql.clone(),
                SeriesKind::ByLabel(resolved.built.resource_label.clone()),
            )
        };
        let key = TargetKey {
            rule: rule.label(),
            metric: request.metric.clone(),
            namespace: request.namespace.clone().unwrap_or_default(),
            promql,
            spec: fingerprint(&spec),
        };
        let (live, lookup) = tokio::join!(
            run_custom(self.backend.as_ref(), &live_request, &resolved, now),
            self.lookup(key.clone(), spec.clone(), kind, now)
        );
        let mut items = live.map_err(|e| for_twin(e, &request.metric))?;
        for item in &mut items {
            item.metric = request.metric.clone();
        }
        let mut counts: HashMap<Option<Reason>, u64> = HashMap::new();
        match &lookup {
            Lookup::Fallback(reason) => {
                *counts.entry(Some(*reason)).or_default() += items.len() as u64;
            }
            Lookup::Frame(frame) if pods => {
                let outcome = frame
                    .series
                    .get("sum")
                    .copied()
                    .unwrap_or(Err(Reason::NoHistory));
                let live: Vec<f64> = items.iter().map(|i| i.value).collect();
                let values = pod_values(&spec, &live, outcome.ok());
                for (item, value) in items.iter_mut().zip(values) {
                    item.value = value;
                }
                *counts.entry(outcome.err()).or_default() += items.len() as u64;
            }
            Lookup::Frame(frame) => {
                for item in &mut items {
                    let outcome = frame
                        .series
                        .get(&item.name)
                        .copied()
                        .unwrap_or(Err(Reason::NoHistory));
                    if let Ok(forecast) = outcome {
                        item.value = served_value(&spec, item.value, forecast);
                    }
                    *counts.entry(outcome.err()).or_default() += 1;
                }
            }
        }
        self.count_served(&key, counts);
        Ok(items)
    }

    /// Answers an external metrics request for a twin metric.
    pub async fn external_metric(
        &self,
        snapshot: &Snapshot,
        request: &ExternalRequest,
        twin: &TwinRef,
        now: SystemTime,
    ) -> Result<Vec<ExternalItem>, ProviderError> {
        let rule = snapshot.config.external_rules.get(twin.rule);
        let Some((rule, spec)) = rule.and_then(|r| r.forecast.clone().map(|s| (r, s))) else {
            return Err(ProviderError::MetricNotFound(format!(
                "the metric {:?} refers to a forecast rule that is no longer configured",
                request.metric
            )));
        };
        let live_request = ExternalRequest {
            metric: twin.live_metric.clone(),
            ..request.clone()
        };
        let promql =
            resolve_external(snapshot, &live_request).map_err(|e| for_twin(e, &request.metric))?;
        let key = TargetKey {
            rule: rule.label(),
            metric: request.metric.clone(),
            namespace: request.namespace.clone(),
            promql: promql.clone(),
            spec: fingerprint(&spec),
        };
        let (live, lookup) = tokio::join!(
            run_external(self.backend.as_ref(), &live_request, &promql, now),
            self.lookup(key.clone(), spec.clone(), SeriesKind::ByLabels, now)
        );
        let mut items = live.map_err(|e| for_twin(e, &request.metric))?;
        let mut counts: HashMap<Option<Reason>, u64> = HashMap::new();
        for item in &mut items {
            item.metric = request.metric.clone();
            let outcome = match &lookup {
                Lookup::Fallback(reason) => Err(*reason),
                Lookup::Frame(frame) => {
                    let id = item
                        .labels
                        .as_ref()
                        .map_or_else(|| "{}".to_owned(), label_text);
                    frame
                        .series
                        .get(&id)
                        .copied()
                        .unwrap_or(Err(Reason::NoHistory))
                }
            };
            if let Ok(forecast) = outcome {
                item.value = served_value(&spec, item.value, forecast);
            }
            *counts.entry(outcome.err()).or_default() += 1;
        }
        self.count_served(&key, counts);
        Ok(items)
    }

    fn count_served(&self, key: &TargetKey, counts: HashMap<Option<Reason>, u64>) {
        for (reason, count) in counts {
            if count > 0 {
                self.metrics.forecast_served(
                    &key.rule,
                    &key.metric,
                    reason.map(Reason::as_str),
                    count,
                );
            }
        }
    }

    /// Leave to wait for a new target's first forecast, held while waiting: None when
    /// [`FIRST_WAITERS`](super::FIRST_WAITERS) requests wait already or the first-refresh
    /// queue is too deep for the fit to be ready in time. Then the request serves live at
    /// once (`warming_up`), so no request waits long because many targets are new.
    fn may_wait_first(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if self.first_pending.load(Ordering::Acquire) > self.first_queue {
            return None;
        }
        self.first_waiters.try_acquire().ok()
    }

    /// The frame for a target, creating the target (and waiting up to
    /// `--forecast-first-wait` for its first forecast) when it is new.
    pub async fn lookup(
        &self,
        key: TargetKey,
        spec: Arc<ForecastSpec>,
        kind: SeriesKind,
        now: SystemTime,
    ) -> Lookup {
        let now_secs = unix(now);
        let target = match self.target(&key) {
            Some(t) => t,
            None => match self.create(key, spec, kind, now) {
                Some(t) => t,
                None => return Lookup::Fallback(Reason::MaxTargets),
            },
        };
        target.last_request.store(now_secs, Ordering::Relaxed);
        let frame = match target.frame() {
            Some(frame) => frame,
            None => {
                let Some(_waiting) = self.may_wait_first() else {
                    tracing::debug!(target = ?target.key, "many first forecasts queued, serving live");
                    return Lookup::Fallback(Reason::WarmingUp);
                };
                let mut ready = target.ready.subscribe();
                let waited =
                    tokio::time::timeout(self.options.first_wait, ready.wait_for(|r| *r)).await;
                match (waited, target.frame()) {
                    (Ok(Ok(_)), Some(frame)) => frame,
                    _ => {
                        tracing::debug!(target = ?target.key, "first forecast not ready in time, serving live");
                        return Lookup::Fallback(Reason::WarmingUp);
                    }
                }
            }
        };
        if let Some(reason) = frame.failure {
            return Lookup::Fallback(reason);
        }
        if now_secs - frame.origin > 2 * target.step {
            return Lookup::Fallback(Reason::Stale);
        }
        Lookup::Frame(frame)
    }
}
