//! external.metrics.k8s.io: find the external rule for a metric name, query it in the
//! request's namespace, return one value per result sample.

use std::time::SystemTime;

use crate::prometheus::{Backend, LabelSet, QueryResult};
use crate::promql::selector::LabelSelector;
use crate::series::Snapshot;

use super::ProviderError;
use super::custom::closest_names;
use super::query::{BuildError, build_external};

/// A parsed external metrics request.
#[derive(Debug, Clone)]
pub struct ExternalRequest {
    /// Namespace from the path.
    pub namespace: String,
    /// Metric name.
    pub metric: String,
    /// `labelSelector` (the HPA's `external.metric.selector`).
    pub selector: LabelSelector,
}

/// One value to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalItem {
    /// Metric name.
    pub metric: String,
    /// Labels of the result sample (None for a scalar result).
    pub labels: Option<LabelSet>,
    /// Sample time.
    pub timestamp: SystemTime,
    /// The value.
    pub value: f64,
}

/// Answers an external metrics request.
pub async fn external_metric(
    snapshot: &Snapshot,
    backend: &dyn Backend,
    request: &ExternalRequest,
    now: SystemTime,
) -> Result<Vec<ExternalItem>, ProviderError> {
    let promql = resolve_external(snapshot, request)?;
    run_external(backend, request, &promql, now).await
}

/// Finds the external rule for a request and renders its query (no backend call).
pub fn resolve_external(
    snapshot: &Snapshot,
    request: &ExternalRequest,
) -> Result<String, ProviderError> {
    let Some(series) = snapshot.external.get(&request.metric) else {
        let head = format!(
            "the server could not find the metric {} for namespaces",
            request.metric
        );
        let msg = if snapshot.relisted_at.is_none() {
            format!("{head}: augur has not completed its first series relist yet")
        } else {
            let closest = closest_names(
                &request.metric,
                snapshot.external.keys().map(String::as_str),
            );
            if closest.is_empty() {
                format!(
                    "{head}: no external rule discovered it (no external metric is discovered at all)"
                )
            } else {
                format!(
                    "{head}: no external rule discovered it; closest: {}",
                    closest.join(", ")
                )
            }
        };
        return Err(ProviderError::MetricNotFound(msg));
    };
    let rule = snapshot.external_rule(series).ok_or_else(|| {
        ProviderError::MetricNotFound(format!(
            "the metric {:?} refers to a rule that is no longer configured",
            request.metric
        ))
    })?;
    let namespaces = super::namespaces(snapshot)?;
    let promql = build_external(
        rule,
        &series.series,
        &request.namespace,
        &namespaces,
        &request.selector,
    )
    .map_err(|e| match e {
        BuildError::Selector(msg) => ProviderError::UnsupportedSelector(msg),
        // prometheus-adapter answers "unable to fetch metrics" here; augur adds why.
        other => ProviderError::QueryBuild(format!(
            "unable to fetch metrics: the query for external metric {} cannot be built: {other}",
            request.metric
        )),
    })?;
    Ok(promql)
}

/// Runs a resolved external query and maps its result to items.
pub async fn run_external(
    backend: &dyn Backend,
    request: &ExternalRequest,
    promql: &str,
    now: SystemTime,
) -> Result<Vec<ExternalItem>, ProviderError> {
    let result = backend
        .query(promql, now)
        .await
        .map_err(|error| ProviderError::Backend {
            error,
            query: promql.to_owned(),
        })?;
    let at = |ts: f64| sample_time(ts, promql);
    match result {
        QueryResult::Vector(samples) => samples
            .into_iter()
            .map(|s| {
                Ok(ExternalItem {
                    metric: request.metric.clone(),
                    labels: Some(s.labels),
                    timestamp: at(s.timestamp)?,
                    value: s.value,
                })
            })
            .collect(),
        QueryResult::Scalar(s) => Ok(vec![ExternalItem {
            metric: request.metric.clone(),
            labels: None,
            timestamp: at(s.timestamp)?,
            value: s.value,
        }]),
        other => Err(ProviderError::BadResult(format!(
            "unable to fetch metrics: the query returned a {} result, external metrics need a vector or scalar (query: {promql})",
            other.type_name()
        ))),
    }
}

/// A sample's time from the backend, or an error saying it is out of range (a broken
/// backend or proxy; the time is served to clients as RFC 3339).
pub(crate) fn sample_time(seconds: f64, promql: &str) -> Result<SystemTime, ProviderError> {
    crate::units::checked_unix_f64(seconds).map_err(|e| {
        ProviderError::BadResult(format!(
            "unable to fetch metrics: a sample time from prometheus is invalid: {e} (query: {promql})"
        ))
    })
}
