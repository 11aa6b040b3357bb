//! custom.metrics.k8s.io: find the rule for (resource, metric), query it for the requested
//! objects, return one value per object.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::SystemTime;

use crate::prometheus::{Backend, QueryResult, Sample};
use crate::promql::selector::LabelSelector;
use crate::resources::{GroupResource, ResourceInfo};
use crate::series::{CustomKey, Snapshot};

use super::ProviderError;
use super::objects::{MAX_ALTERNATION, ObjectSource, Phase, compact_matcher, workload_matcher};
use super::query::{BuildError, BuiltQuery, Names, build_custom};

/// The object part of a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectName {
    /// One named object.
    Named(String),
    /// `*`: every object (matching `labelSelector` in cluster mode).
    All,
}

/// A parsed custom metrics request.
#[derive(Debug, Clone)]
pub struct CustomRequest {
    /// Resource as written in the path (`pods`, `deployments.apps`, `namespaces`).
    pub resource: String,
    /// Namespace from the path, if the request is namespaced.
    pub namespace: Option<String>,
    /// Object name or `*`.
    pub name: ObjectName,
    /// Metric name.
    pub metric: String,
    /// `metricLabelSelector`.
    pub metric_selector: LabelSelector,
    /// `labelSelector` (objects).
    pub object_selector: LabelSelector,
}

/// One value to serve.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomItem {
    /// The described object's resource.
    pub resource: ResourceInfo,
    /// Its namespace (None for root-scoped requests).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// Metric name.
    pub metric: String,
    /// When the value was read (the time of the request, as prometheus-adapter reports it).
    pub timestamp: SystemTime,
    /// The value.
    pub value: f64,
}

/// A custom request resolved against a snapshot: the described resource and the PromQL the
/// rule renders for it.
#[derive(Debug, Clone)]
pub struct ResolvedCustom {
    /// The resource of the request path.
    pub resource: ResourceInfo,
    /// The rendered query and the label holding object names.
    pub built: BuiltQuery,
    /// Cluster mode, `*`: the names the label selector picked from the watch cache (results
    /// are filtered back to them because the matcher may be a shorter superset).
    pub selected: Option<BTreeSet<Arc<str>>>,
    /// Cluster mode, `*` over pods of one workload: the query with a matcher that keeps
    /// matching the workload's pods across scale events and rollouts, for forecast histories.
    pub stable: Option<BuiltQuery>,
}

/// Answers a custom metrics request from the registry snapshot and the backend (standalone:
/// `*` means every object with a sample).
pub async fn custom_metric(
    snapshot: &Snapshot,
    backend: &dyn Backend,
    request: &CustomRequest,
    now: SystemTime,
) -> Result<Vec<CustomItem>, ProviderError> {
    custom_metric_with_objects(snapshot, backend, None, request, now).await
}

/// Answers a custom metrics request; with `objects` (cluster mode) `*` selects the objects
/// matching `labelSelector` from the watch cache and queries exactly those names.
pub async fn custom_metric_with_objects(
    snapshot: &Snapshot,
    backend: &dyn Backend,
    objects: Option<&dyn ObjectSource>,
    request: &CustomRequest,
    now: SystemTime,
) -> Result<Vec<CustomItem>, ProviderError> {
    let resolved = resolve_custom(snapshot, objects, request).await?;
    run_custom(backend, request, &resolved, now).await
}

/// Finds the rule for a request, selects the objects (cluster mode) and renders its query.
pub async fn resolve_custom(
    snapshot: &Snapshot,
    objects: Option<&dyn ObjectSource>,
    request: &CustomRequest,
) -> Result<ResolvedCustom, ProviderError> {
    let resource = snapshot.resolve_resource(&request.resource).cloned().ok_or_else(|| ProviderError::UnknownResource {
        resource: request.resource.clone(),
        hint: String::from(" (standalone mode knows the built-in core resources and those named in rule overrides)"),
    })?;
    let key = CustomKey {
        resource: resource.group_resource.clone(),
        namespaced: request.namespace.is_some(),
        metric: request.metric.clone(),
    };
    let Some(series) = snapshot.custom.get(&key) else {
        return Err(ProviderError::MetricNotFound(not_found_message(
            snapshot, &key,
        )));
    };
    let rule = snapshot.custom_rule(series).ok_or_else(|| {
        ProviderError::MetricNotFound(format!(
            "the metric {:?} refers to a rule that is no longer configured",
            request.metric
        ))
    })?;
    if request.name == ObjectName::All && objects.is_none() && !request.object_selector.is_empty() {
        return Err(ProviderError::NeedsCluster(format!(
            "label selector {:?} on {}: selecting objects by label needs cluster mode (augur runs standalone, without access to the Kubernetes API); use a name or * without labelSelector",
            request.object_selector.to_string(),
            resource.group_resource
        )));
    }
    let namespaces = super::namespaces(snapshot)?;
    // Cluster mode: `*` is the objects the label selector picks from the watch cache.
    let selected: Option<BTreeSet<Arc<str>>> = match (&request.name, objects) {
        (ObjectName::All, Some(source)) => {
            let found = source
                .select(
                    &resource,
                    Phase::Any,
                    request.namespace.as_deref(),
                    &request.object_selector,
                )
                .await?;
            if found.is_empty() {
                let place = request
                    .namespace
                    .as_deref()
                    .map(|ns| format!(" in namespace {ns}"))
                    .unwrap_or_default();
                return Err(ProviderError::ObjectNotFound(format!(
                    "the server could not find the metric {} for {}: no objects{place} matched the label selector {:?}",
                    request.metric,
                    resource.group_resource,
                    request.object_selector.to_string()
                )));
            }
            Some(found.into_iter().map(|o| o.name).collect())
        }
        _ => None,
    };
    let namespace = request.namespace.as_deref().map(|ns| (ns, &namespaces));
    let build = |names: Names<'_>| {
        build_custom(
            rule,
            &series.series,
            &resource,
            namespace,
            names,
            &request.metric_selector,
        )
        .map_err(|e| match e {
            BuildError::Selector(msg) => ProviderError::UnsupportedSelector(msg),
            other => ProviderError::QueryBuild(format!(
                "the server could not find the metric {} for {}: {other}",
                request.metric, resource.group_resource
            )),
        })
    };
    let built = match (&request.name, &selected) {
        (ObjectName::Named(name), _) => build(Names::List(std::slice::from_ref(name)))?,
        (ObjectName::All, Some(selected)) => {
            let list: Vec<Arc<str>> = selected.iter().cloned().collect();
            match compact_matcher(&list, MAX_ALTERNATION) {
                Some(pattern) => build(Names::Matching(&pattern))?,
                None => {
                    let names: Vec<String> = list.iter().map(|n| n.to_string()).collect();
                    build(Names::List(&names))?
                }
            }
        }
        (ObjectName::All, None) => build(Names::Any)?,
    };
    // The workload's pattern only where it selects no object the selector left out (an
    // unrelated `web-7` next to StatefulSet pods `web-0`, `web-1`); else the history is
    // the selected names' own.
    let stable = match (&selected, objects) {
        (Some(selected), Some(source)) => {
            let list: Vec<Arc<str>> = selected.iter().cloned().collect();
            match workload_matcher(&list) {
                Some(pattern)
                    if selects_only(
                        source,
                        &resource,
                        request.namespace.as_deref(),
                        &pattern,
                        selected,
                    )
                    .await? =>
                {
                    Some(build(Names::Matching(&pattern))?)
                }
                _ => None,
            }
        }
        _ => None,
    };
    Ok(ResolvedCustom {
        resource,
        built,
        selected,
        stable,
    })
}

/// Whether every object of `resource` in `namespace` (from the watch cache) whose name the
/// regex `pattern` matches is one of `selected`.
async fn selects_only(
    source: &dyn ObjectSource,
    resource: &ResourceInfo,
    namespace: Option<&str>,
    pattern: &str,
    selected: &BTreeSet<Arc<str>>,
) -> Result<bool, ProviderError> {
    let Ok(re) = regex::Regex::new(&format!("^(?:{pattern})$")) else {
        return Ok(false);
    };
    let all = source
        .select(resource, Phase::Any, namespace, &LabelSelector::default())
        .await?;
    Ok(all
        .iter()
        .filter(|o| re.is_match(&o.name))
        .all(|o| selected.contains(&o.name)))
}

/// Runs a resolved query and maps its samples to items for the requested objects.
pub async fn run_custom(
    backend: &dyn Backend,
    request: &CustomRequest,
    resolved: &ResolvedCustom,
    now: SystemTime,
) -> Result<Vec<CustomItem>, ProviderError> {
    let ResolvedCustom {
        resource,
        built,
        selected,
        ..
    } = resolved;
    let result =
        backend
            .query(&built.promql, now)
            .await
            .map_err(|error| ProviderError::Backend {
                error,
                query: built.promql.clone(),
            })?;
    let samples = match result {
        QueryResult::Vector(samples) => samples,
        other => {
            return Err(ProviderError::BadResult(format!(
                "unable to fetch metrics: the query returned a {} result, custom metrics need an instant vector (query: {})",
                other.type_name(),
                built.promql
            )));
        }
    };
    let by_name = samples_by_object(&samples, &built.resource_label);
    let item = |name: &str, value: f64| CustomItem {
        resource: resource.clone(),
        namespace: request.namespace.clone(),
        name: name.to_owned(),
        metric: request.metric.clone(),
        timestamp: now,
        value,
    };
    match &request.name {
        ObjectName::All => Ok(by_name
            .into_iter()
            .filter(|(name, _)| selected.as_ref().is_none_or(|s| s.contains(*name)))
            .map(|(name, sample)| item(name, sample.value))
            .collect()),
        ObjectName::Named(name) => {
            if let Some(sample) = by_name.get(name.as_str()) {
                return Ok(vec![item(name, sample.value)]);
            }
            let place = request
                .namespace
                .as_deref()
                .map(|ns| format!(" in namespace {ns}"))
                .unwrap_or_default();
            let why = if samples.is_empty() {
                format!("the query returned nothing (query: {})", built.promql)
            } else {
                format!(
                    "the query returned {} series but none with {}={:?}; does metricsQuery group by <<.GroupBy>>? (query: {})",
                    samples.len(),
                    built.resource_label,
                    name,
                    built.promql
                )
            };
            Err(ProviderError::ObjectNotFound(format!(
                "the server could not find the metric {} for {} {name}{place}: {why}",
                request.metric, resource.group_resource
            )))
        }
    }
}

/// Samples keyed by the value of the resource label (later samples win, as in the adapter);
/// samples without the label are skipped.
fn samples_by_object<'a>(samples: &'a [Sample], label: &str) -> BTreeMap<&'a str, &'a Sample> {
    let mut out = BTreeMap::new();
    for sample in samples {
        if let Some(name) = sample.labels.get(label).filter(|n| !n.is_empty()) {
            out.insert(name.as_str(), sample);
        }
    }
    out
}

/// "the server could not find the metric M for R", then why and the closest names.
fn not_found_message(snapshot: &Snapshot, key: &CustomKey) -> String {
    let head = format!(
        "the server could not find the metric {} for {}",
        key.metric, key.resource
    );
    if snapshot.relisted_at.is_none() {
        return format!("{head}: augur has not completed its first series relist yet");
    }
    let other_scope = CustomKey {
        namespaced: !key.namespaced,
        ..key.clone()
    };
    if snapshot.custom.contains_key(&other_scope) {
        let (has, asked) = if key.namespaced {
            ("root-scoped", "namespaced")
        } else {
            ("namespaced", "root-scoped")
        };
        return format!(
            "{head}: it is discovered as a {has} metric of {}, but the request is {asked}",
            key.resource
        );
    }
    let same_resource: Vec<&str> = snapshot
        .custom
        .keys()
        .filter(|k| k.resource == key.resource)
        .map(|k| k.metric.as_str())
        .collect();
    let elsewhere: Vec<&GroupResource> = snapshot
        .custom
        .keys()
        .filter(|k| k.metric == key.metric)
        .map(|k| &k.resource)
        .collect();
    let mut msg = format!("{head}: no rule discovered it");
    if !elsewhere.is_empty() {
        let mut names: Vec<String> = elsewhere.iter().map(|gr| gr.to_string()).collect();
        names.sort();
        names.dedup();
        msg.push_str(&format!("; it exists for {}", names.join(", ")));
    }
    let closest = closest_names(&key.metric, same_resource);
    if !closest.is_empty() {
        msg.push_str(&format!(
            "; closest metrics for {}: {}",
            key.resource,
            closest.join(", ")
        ));
    } else if elsewhere.is_empty() {
        msg.push_str(&format!(
            " and no metric is discovered for {}",
            key.resource
        ));
    }
    msg
}

/// Up to three plausible candidates, closest first: within an edit distance of half the
/// wanted name's length, or containing it (or contained in it).
pub fn closest_names<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let limit = (wanted.chars().count() / 2).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(wanted, c), c))
        .filter(|(d, c)| *d <= limit || c.contains(wanted) || wanted.contains(c))
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_names_rank_by_edit_distance() {
        let names = closest_names(
            "http_request",
            [
                "http_requests",
                "cpu_usage",
                "http_requests_per_second",
                "x",
            ],
        );
        assert_eq!(names, vec!["http_requests", "http_requests_per_second"]);
        assert!(closest_names("memory", ["http_requests"]).is_empty());
    }
}
