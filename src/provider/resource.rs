//! metrics.k8s.io from `resourceRules`: CPU and memory usage of pods (per container) and
//! nodes, queried and assembled as prometheus-adapter's resource provider does.
//!
//! Cluster mode asks an [`ObjectSource`] for the Running pods (or the nodes) a request
//! selects and queries exactly those names, one query per namespace and resource; standalone
//! mode takes the objects from the query results.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;

use crate::config::{ResourceRule, ResourceRules};
use crate::prometheus::{Backend, QueryResult, Sample};
use crate::promql::selector::LabelSelector;
use crate::quantity::to_milli;
use crate::resources::ResourceInfo;
use crate::series::Snapshot;

use super::ProviderError;
use super::objects::{Labels, MAX_ALTERNATION, ObjectMeta, ObjectSource, Phase, compact_matcher};
use super::query::{BuildError, BuiltQuery, Names, build_resource};

/// How many namespaces are queried at once for a pod list across namespaces.
const NAMESPACE_CONCURRENCY: usize = 4;

/// A PodMetrics or NodeMetrics request.
#[derive(Debug, Clone, Default)]
pub struct ResourceRequest {
    /// Namespace of the pods (None: every namespace; always None for nodes).
    pub namespace: Option<String>,
    /// One object by name (`get`), or every selected one (`list`).
    pub name: Option<String>,
    /// `labelSelector` on the objects.
    pub selector: LabelSelector,
}

/// Usage of one container, in milli-units (millicores, milli-bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    /// Container name (the value of `containerLabel`).
    pub name: String,
    /// CPU in millicores.
    pub cpu_milli: i64,
    /// Memory in milli-bytes (rendered BinarySI).
    pub memory_milli: i64,
}

/// One PodMetrics item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// The pod's labels (None when unknown, in standalone mode).
    pub labels: Option<Arc<Labels>>,
    /// Earliest sample time of the pod's values.
    pub timestamp: SystemTime,
    /// Containers, sorted by name.
    pub containers: Vec<ContainerUsage>,
}

/// One NodeMetrics item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUsage {
    /// Node name.
    pub name: String,
    /// The node's labels (None when unknown, in standalone mode).
    pub labels: Option<Arc<Labels>>,
    /// Earliest sample time of the node's values.
    pub timestamp: SystemTime,
    /// CPU in millicores.
    pub cpu_milli: i64,
    /// Memory in milli-bytes.
    pub memory_milli: i64,
}

/// One sample of one object: (container name or empty, value, Unix seconds).
type Point = (String, f64, f64);
/// Samples by (namespace, object name).
type ByObject = HashMap<(String, String), Vec<Point>>;

/// The configured `resourceRules`, or why metrics.k8s.io is not served.
pub fn rules(snapshot: &Snapshot) -> Result<&ResourceRules, ProviderError> {
    snapshot.config.resource_rules.as_ref().ok_or_else(|| {
        ProviderError::MetricNotFound(
            "metrics.k8s.io is not served: the config has no `resourceRules`".into(),
        )
    })
}

fn lookup(snapshot: &Snapshot, name: &str) -> Result<ResourceInfo, ProviderError> {
    snapshot.table.lookup(name).cloned().ok_or_else(|| {
        ProviderError::QueryBuild(format!("the resource table has no {name} resource"))
    })
}

/// Usage of the pods a request selects, sorted by namespace then name. Pods without a CPU or
/// without a memory sample are left out, as the adapter does.
pub async fn pod_metrics(
    snapshot: &Snapshot,
    backend: &dyn Backend,
    objects: Option<&dyn ObjectSource>,
    request: &ResourceRequest,
) -> Result<Vec<PodUsage>, ProviderError> {
    let rules = rules(snapshot)?;
    let pods = lookup(snapshot, "pods")?;
    let namespaces = lookup(snapshot, "namespaces")?;
    let Some(source) = objects else {
        return standalone_pods(rules, backend, &pods, &namespaces, request).await;
    };
    let mut selected = source
        .select(
            &pods,
            Phase::Running,
            request.namespace.as_deref(),
            &request.selector,
        )
        .await?;
    if let Some(name) = &request.name {
        selected.retain(|o| &*o.name == name.as_str());
        if selected.is_empty() {
            return Err(ProviderError::ObjectNotFound(format!(
                "pods {name:?} not found"
            )));
        }
    }
    let mut by_namespace: BTreeMap<Arc<str>, Vec<ObjectMeta>> = BTreeMap::new();
    for object in selected {
        by_namespace
            .entry(object.namespace.clone())
            .or_default()
            .push(object);
    }
    let calls = by_namespace.into_iter().map(|(namespace, objects)| {
        let (pods, namespaces) = (&pods, &namespaces);
        async move {
            let names: Vec<Arc<str>> = objects.iter().map(|o| o.name.clone()).collect();
            let list: Vec<String>;
            let pattern;
            let names = match compact_matcher(&names, MAX_ALTERNATION) {
                Some(p) => {
                    pattern = p;
                    Names::Matching(&pattern)
                }
                None => {
                    list = names.iter().map(|n| n.to_string()).collect();
                    Names::List(&list)
                }
            };
            let scope = Scope {
                pods,
                namespaces,
                namespace: Some(&namespace),
            };
            let (cpu, memory) = futures::try_join!(
                container_usage(&rules.cpu, "cpu", backend, &scope, names.clone()),
                container_usage(&rules.memory, "memory", backend, &scope, names.clone()),
            )?;
            let mut out = Vec::new();
            for object in &objects {
                let key = (namespace.to_string(), object.name.to_string());
                if let Some(mut pod) = assemble_pod(&key, cpu.get(&key), memory.get(&key)) {
                    pod.labels = Some(object.labels.clone());
                    out.push(pod);
                }
            }
            Ok::<_, ProviderError>(out)
        }
    });
    let results: Vec<Result<Vec<PodUsage>, ProviderError>> = futures::stream::iter(calls)
        .buffered(NAMESPACE_CONCURRENCY)
        .collect()
        .await;
    let mut out = Vec::new();
    for result in results {
        out.extend(result?);
    }
    if let Some(name) = &request.name
        && out.is_empty()
    {
        return Err(ProviderError::ObjectNotFound(format!(
            "podmetrics.metrics.k8s.io {name:?} not found"
        )));
    }
    Ok(out)
}

/// Standalone: the pods are whatever the queries return (no Running filter, no labels).
async fn standalone_pods(
    rules: &ResourceRules,
    backend: &dyn Backend,
    pods: &ResourceInfo,
    namespaces: &ResourceInfo,
    request: &ResourceRequest,
) -> Result<Vec<PodUsage>, ProviderError> {
    needs_no_selector(&request.selector, "pods")?;
    let list: Vec<String> = request.name.iter().cloned().collect();
    let names = if list.is_empty() {
        Names::Any
    } else {
        Names::List(&list)
    };
    let scope = Scope {
        pods,
        namespaces,
        namespace: request.namespace.as_deref(),
    };
    let (cpu, memory) = futures::try_join!(
        container_usage(&rules.cpu, "cpu", backend, &scope, names.clone()),
        container_usage(&rules.memory, "memory", backend, &scope, names.clone()),
    )?;
    let mut keys: Vec<&(String, String)> = cpu.keys().filter(|k| memory.contains_key(*k)).collect();
    keys.sort();
    let out: Vec<PodUsage> = keys
        .into_iter()
        .filter_map(|key| assemble_pod(key, cpu.get(key), memory.get(key)))
        .collect();
    if let Some(name) = &request.name
        && out.is_empty()
    {
        return Err(ProviderError::ObjectNotFound(format!(
            "podmetrics.metrics.k8s.io {name:?} not found"
        )));
    }
    Ok(out)
}

/// Usage of the nodes a request selects, sorted by name; nodes without a CPU or without a
/// memory sample are left out.
pub async fn node_metrics(
    snapshot: &Snapshot,
    backend: &dyn Backend,
    objects: Option<&dyn ObjectSource>,
    request: &ResourceRequest,
) -> Result<Vec<NodeUsage>, ProviderError> {
    let rules = rules(snapshot)?;
    let nodes = lookup(snapshot, "nodes")?;
    let mut labels: HashMap<String, Arc<Labels>> = HashMap::new();
    let list: Vec<String>;
    let pattern;
    let names = match objects {
        Some(source) => {
            let mut selected = source
                .select(&nodes, Phase::Any, None, &request.selector)
                .await?;
            if let Some(name) = &request.name {
                selected.retain(|o| &*o.name == name.as_str());
                if selected.is_empty() {
                    return Err(ProviderError::ObjectNotFound(format!(
                        "nodes {name:?} not found"
                    )));
                }
            }
            if selected.is_empty() {
                return Ok(Vec::new());
            }
            let names: Vec<Arc<str>> = selected.iter().map(|o| o.name.clone()).collect();
            labels = selected
                .into_iter()
                .map(|o| (o.name.to_string(), o.labels))
                .collect();
            match compact_matcher(&names, MAX_ALTERNATION) {
                Some(p) => {
                    pattern = p;
                    Names::Matching(&pattern)
                }
                None => {
                    list = names.iter().map(|n| n.to_string()).collect();
                    Names::List(&list)
                }
            }
        }
        None => {
            needs_no_selector(&request.selector, "nodes")?;
            list = request.name.iter().cloned().collect();
            if list.is_empty() {
                Names::Any
            } else {
                Names::List(&list)
            }
        }
    };
    let (cpu, memory) = futures::try_join!(
        node_usage(&rules.cpu, "cpu", backend, &nodes, names.clone()),
        node_usage(&rules.memory, "memory", backend, &nodes, names.clone()),
    )?;
    let mut out: Vec<NodeUsage> = Vec::new();
    for (key, cpu_points) in &cpu {
        let Some(memory_points) = memory.get(key) else {
            continue;
        };
        if objects.is_some() && !labels.contains_key(&key.1) {
            continue;
        }
        let (cpu_milli, cpu_at) = total(cpu_points);
        let (memory_milli, memory_at) = total(memory_points);
        out.push(NodeUsage {
            name: key.1.clone(),
            labels: labels.get(&key.1).cloned(),
            timestamp: at(cpu_at.min(memory_at)),
            cpu_milli,
            memory_milli,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(name) = &request.name
        && out.is_empty()
    {
        return Err(ProviderError::ObjectNotFound(format!(
            "nodemetrics.metrics.k8s.io {name:?} not found"
        )));
    }
    Ok(out)
}

/// Where a container query looks: the pods resource, the namespaces resource (for the
/// namespace label) and the namespace (None: every namespace).
struct Scope<'a> {
    pods: &'a ResourceInfo,
    namespaces: &'a ResourceInfo,
    namespace: Option<&'a str>,
}

/// Runs one `containerQuery` and groups its samples by (namespace, pod).
async fn container_usage(
    rule: &ResourceRule,
    which: &str,
    backend: &dyn Backend,
    scope: &Scope<'_>,
    names: Names<'_>,
) -> Result<ByObject, ProviderError> {
    let what = format!("resourceRules.{which}.containerQuery");
    let mut extra = vec![rule.container_label.clone()];
    // Across namespaces the namespace label joins the grouping, so samples keep it.
    let namespace_label = match scope.namespace {
        Some(_) => None,
        None => {
            let label = rule.resources.label_for_resource(scope.namespaces);
            extra.extend(label.clone());
            label
        }
    };
    let built = build_resource(
        &rule.container_query,
        &rule.resources,
        &what,
        scope.pods,
        scope.namespace.map(|ns| (ns, scope.namespaces)),
        names,
        &extra,
    )
    .map_err(|e| build_error(e, &what))?;
    let samples = run(backend, &built).await?;
    let mut out = ByObject::new();
    for sample in &samples {
        let Some(pod) = sample
            .labels
            .get(&built.resource_label)
            .filter(|p| !p.is_empty())
        else {
            continue;
        };
        let namespace = match (&namespace_label, scope.namespace) {
            (_, Some(ns)) => ns.to_owned(),
            (Some(label), None) => sample.labels.get(label).cloned().unwrap_or_default(),
            (None, None) => String::new(),
        };
        let container = sample
            .labels
            .get(&rule.container_label)
            .cloned()
            .unwrap_or_default();
        out.entry((namespace, pod.clone())).or_default().push((
            container,
            sample.value,
            sample.timestamp,
        ));
    }
    Ok(out)
}

/// Runs one `nodeQuery` and groups its samples by node.
async fn node_usage(
    rule: &ResourceRule,
    which: &str,
    backend: &dyn Backend,
    nodes: &ResourceInfo,
    names: Names<'_>,
) -> Result<ByObject, ProviderError> {
    let what = format!("resourceRules.{which}.nodeQuery");
    let built = build_resource(
        &rule.node_query,
        &rule.resources,
        &what,
        nodes,
        None,
        names,
        &[],
    )
    .map_err(|e| build_error(e, &what))?;
    let samples = run(backend, &built).await?;
    let mut out = ByObject::new();
    for sample in &samples {
        if let Some(node) = sample
            .labels
            .get(&built.resource_label)
            .filter(|n| !n.is_empty())
        {
            out.entry((String::new(), node.clone())).or_default().push((
                String::new(),
                sample.value,
                sample.timestamp,
            ));
        }
    }
    Ok(out)
}

fn build_error(error: BuildError, what: &str) -> ProviderError {
    match error {
        BuildError::Selector(msg) => ProviderError::UnsupportedSelector(msg),
        other => {
            ProviderError::QueryBuild(format!("unable to build the query for {what}: {other}"))
        }
    }
}

async fn run(backend: &dyn Backend, built: &BuiltQuery) -> Result<Vec<Sample>, ProviderError> {
    // The resource provider asks for "now"; the sample timestamps say how fresh values are.
    let result = backend
        .query(&built.promql, SystemTime::now())
        .await
        .map_err(|error| ProviderError::Backend {
            error,
            query: built.promql.clone(),
        })?;
    match result {
        QueryResult::Vector(samples) => {
            for sample in &samples {
                super::external::sample_time(sample.timestamp, &built.promql)?;
            }
            Ok(samples)
        }
        other => Err(ProviderError::BadResult(format!(
            "unable to fetch metrics: the query returned a {} result, resource metrics need an instant vector (query: {})",
            other.type_name(),
            built.promql
        ))),
    }
}

fn needs_no_selector(selector: &LabelSelector, resource: &str) -> Result<(), ProviderError> {
    if selector.is_empty() {
        return Ok(());
    }
    Err(ProviderError::NeedsCluster(format!(
        "label selector {:?} on {resource}: selecting objects by label needs cluster mode (augur runs standalone, without access to the Kubernetes API)",
        selector.to_string()
    )))
}

/// Usage as the adapter stores it: NaN and negative values become 0, then
/// `int64(value*1000)`.
fn milli(value: f64) -> i64 {
    if value.is_nan() || value < 0.0 {
        0
    } else {
        to_milli(value)
    }
}

/// A sample time [`run`] has checked (the earliest of a pod's samples; none: the epoch).
fn at(seconds: f64) -> SystemTime {
    crate::units::from_unix_f64(seconds).unwrap_or(UNIX_EPOCH)
}

/// A node's value (the last sample wins, as the adapter's map does) and its time.
fn total(points: &[Point]) -> (i64, f64) {
    let earliest = points.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let value = points.last().map_or(0, |p| milli(p.1));
    (value, earliest)
}

/// One pod from its CPU and memory samples: skipped (None) when either is missing; a
/// container with only one of them gets 0 for the other; the time is the earliest sample.
fn assemble_pod(
    key: &(String, String),
    cpu: Option<&Vec<Point>>,
    memory: Option<&Vec<Point>>,
) -> Option<PodUsage> {
    let (cpu, memory) = (cpu?, memory?);
    let mut containers: BTreeMap<&str, ContainerUsage> = BTreeMap::new();
    let mut earliest = f64::INFINITY;
    for (points, is_cpu) in [(cpu, true), (memory, false)] {
        for (container, value, timestamp) in points {
            let usage = containers
                .entry(container.as_str())
                .or_insert_with(|| ContainerUsage {
                    name: container.clone(),
                    cpu_milli: 0,
                    memory_milli: 0,
                });
            if is_cpu {
                usage.cpu_milli = milli(*value);
            } else {
                usage.memory_milli = milli(*value);
            }
            earliest = earliest.min(*timestamp);
        }
    }
    Some(PodUsage {
        namespace: key.0.clone(),
        name: key.1.clone(),
        labels: None,
        timestamp: at(earliest),
        containers: containers.into_values().collect(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::{self, UnknownResources};
    use crate::prometheus::fake::{FakeBackend, labels};
    use crate::provider::objects::ObjectsError;
    use crate::resources::ResourceTable;
    use futures::future::BoxFuture;

    const CONFIG: &str = r#"
resourceRules:
  cpu:
    containerQuery: 'sum(rate(cpu{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
    nodeQuery: 'sum(rate(cpu{<<.LabelMatchers>>,id="/"}[1m])) by (<<.GroupBy>>)'
    resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}, instance: {resource: node}}}
    containerLabel: container
  memory:
    containerQuery: 'sum(mem{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
    nodeQuery: 'sum(mem{<<.LabelMatchers>>,id="/"}) by (<<.GroupBy>>)'
    resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}, instance: {resource: node}}}
    containerLabel: container
  window: 5m
"#;

    fn snapshot() -> Snapshot {
        let table = Arc::new(ResourceTable::builtin());
        let config =
            Arc::new(config::parse(CONFIG, "r.yaml", &table, UnknownResources::Reject).unwrap());
        Snapshot::empty(config, table)
    }

    /// A fixed object list, filtered like the cache does.
    struct Objects(Vec<(Phase, &'static str, String, Labels)>);

    impl ObjectSource for Objects {
        fn select<'a>(
            &'a self,
            resource: &'a ResourceInfo,
            phase: Phase,
            namespace: Option<&'a str>,
            selector: &'a LabelSelector,
        ) -> BoxFuture<'a, Result<Vec<ObjectMeta>, ObjectsError>> {
            let kind = resource.group_resource.resource.clone();
            Box::pin(async move {
                Ok(self
                    .0
                    .iter()
                    .filter(|(p, ns, name, labels)| {
                        *p == phase
                            && namespace.is_none_or(|n| n == *ns)
                            && selector.matches(labels)
                            && (kind == "nodes") == ns.is_empty()
                            && !name.is_empty()
                    })
                    .map(|(_, ns, name, labels)| ObjectMeta {
                        namespace: Arc::from(*ns),
                        name: Arc::from(name.as_str()),
                        labels: Arc::new(labels.clone()),
                    })
                    .collect())
            })
        }
    }

    fn point(pairs: &[(&str, &str)], value: f64, timestamp: f64) -> Sample {
        Sample {
            labels: labels(pairs),
            timestamp,
            value,
        }
    }

    fn answers(fake: FakeBackend, table: HashMap<&'static str, Vec<Sample>>) -> FakeBackend {
        fake.with_query_fn(move |promql, _| {
            let key = table
                .keys()
                .find(|k| promql.starts_with(*k))
                .unwrap_or_else(|| panic!("unexpected query {promql}"));
            Ok(QueryResult::Vector(table[key].clone()))
        })
    }

    #[tokio::test]
    async fn running_pods_are_queried_by_name_and_assembled_like_the_adapter() {
        let app = |v: &str| labels(&[("app", v)]);
        let objects = Objects(vec![
            (Phase::Running, "default", "web-1".into(), app("web")),
            (Phase::Running, "default", "web-2".into(), app("web")),
            (Phase::Running, "default", "web-3".into(), app("web")),
            (Phase::Running, "default", "db-0".into(), app("db")),
            (Phase::Any, "default", "web-9".into(), app("web")),
        ]);
        let c =
            |pod: &'static str, container: &'static str| [("pod", pod), ("container", container)];
        let fake = answers(
            FakeBackend::new(),
            HashMap::from([
                (
                    "sum(rate(cpu",
                    vec![
                        point(&c("web-1", "app"), 0.1205, 100.0),
                        point(&c("web-1", "sidecar"), f64::NAN, 101.0),
                        point(&c("web-2", "app"), -3.0, 102.0),
                        point(&c("web-3", "app"), 1.0, 100.0),
                    ],
                ),
                (
                    "sum(mem",
                    vec![
                        point(&c("web-1", "app"), 300.0 * 1024.0 * 1024.0, 99.0),
                        point(&c("web-2", "app"), 1000.0, 102.0),
                        point(&c("web-2", "extra"), 2048.0, 102.0),
                    ],
                ),
            ]),
        );
        let request = ResourceRequest {
            namespace: Some("default".into()),
            name: None,
            selector: LabelSelector::parse("app=web").unwrap(),
        };
        let pods = pod_metrics(&snapshot(), &fake, Some(&objects), &request)
            .await
            .unwrap();
        let mut queries = fake.queries();
        queries.sort();
        assert_eq!(
            queries,
            [
                r#"sum(mem{namespace="default",pod=~"web-1|web-2|web-3"}) by (pod,container)"#,
                r#"sum(rate(cpu{namespace="default",pod=~"web-1|web-2|web-3"}[1m])) by (pod,container)"#,
            ]
        );
        // web-3 has no memory sample: skipped. NaN and negative CPU are 0; a container with
        // only memory gets CPU 0; the timestamp is the earliest sample's.
        let usage = |name: &str, cpu_milli, memory_milli| ContainerUsage {
            name: name.into(),
            cpu_milli,
            memory_milli,
        };
        assert_eq!(
            pods,
            vec![
                PodUsage {
                    namespace: "default".into(),
                    name: "web-1".into(),
                    labels: Some(Arc::new(app("web"))),
                    timestamp: at(99.0),
                    containers: vec![usage("app", 120, 314_572_800_000), usage("sidecar", 0, 0)],
                },
                PodUsage {
                    namespace: "default".into(),
                    name: "web-2".into(),
                    labels: Some(Arc::new(app("web"))),
                    timestamp: at(102.0),
                    containers: vec![usage("app", 0, 1_000_000), usage("extra", 0, 2_048_000)],
                },
            ]
        );
        let err = pod_metrics(
            &snapshot(),
            &fake,
            Some(&objects),
            &ResourceRequest {
                namespace: Some("default".into()),
                name: Some("web-9".into()),
                selector: LabelSelector::default(),
            },
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), r#"pods "web-9" not found"#);
    }

    #[tokio::test]
    async fn standalone_pods_across_namespaces_group_by_the_namespace_label() {
        let c = |ns: &'static str, pod: &'static str| {
            [("namespace", ns), ("pod", pod), ("container", "app")]
        };
        let fake = answers(
            FakeBackend::new(),
            HashMap::from([
                (
                    "sum(rate(cpu",
                    vec![
                        point(&c("b", "p"), 0.5, 1.0),
                        point(&c("a", "p"), 0.25, 1.0),
                    ],
                ),
                (
                    "sum(mem",
                    vec![
                        point(&c("a", "p"), 2048.0, 1.0),
                        point(&c("b", "p"), 1.0, 1.0),
                    ],
                ),
            ]),
        );
        let pods = pod_metrics(&snapshot(), &fake, None, &ResourceRequest::default())
            .await
            .unwrap();
        let mut queries = fake.queries();
        queries.sort();
        assert_eq!(
            queries,
            [
                r#"sum(mem{pod=~".+"}) by (pod,container,namespace)"#,
                r#"sum(rate(cpu{pod=~".+"}[1m])) by (pod,container,namespace)"#,
            ]
        );
        let got: Vec<(String, String, i64)> = pods
            .iter()
            .map(|p| {
                (
                    p.namespace.clone(),
                    p.name.clone(),
                    p.containers[0].cpu_milli,
                )
            })
            .collect();
        assert_eq!(
            got,
            [("a".into(), "p".into(), 250), ("b".into(), "p".into(), 500)]
        );
        let err = pod_metrics(
            &snapshot(),
            &fake,
            None,
            &ResourceRequest {
                selector: LabelSelector::parse("app=web").unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProviderError::NeedsCluster(_)), "{err}");
    }

    #[tokio::test]
    async fn thousands_of_nodes_use_a_short_matcher_and_keep_only_selected_nodes() {
        let mut nodes: Vec<(Phase, &'static str, String, Labels)> = (0..3000)
            .map(|i| {
                (
                    Phase::Any,
                    "",
                    format!("ip-10-0-{}-{}", i / 250, i % 250),
                    Labels::new(),
                )
            })
            .collect();
        nodes.push((Phase::Any, "", "edge".into(), labels(&[("role", "edge")])));
        let objects = Objects(nodes);
        // The superset matcher also matches a node the selection does not contain.
        let node = |name: &'static str| [("instance", name)];
        let fake = answers(
            FakeBackend::new(),
            HashMap::from([
                (
                    "sum(rate(cpu",
                    vec![
                        point(&node("ip-10-0-0-1"), 1.0, 5.0),
                        point(&node("ip-10-0-99-1"), 1.0, 5.0),
                    ],
                ),
                (
                    "sum(mem",
                    vec![
                        point(&node("ip-10-0-0-1"), 1024.0, 4.0),
                        point(&node("ip-10-0-99-1"), 1.0, 5.0),
                    ],
                ),
            ]),
        );
        let request = ResourceRequest {
            selector: LabelSelector::parse("!role").unwrap(),
            ..Default::default()
        };
        let found = node_metrics(&snapshot(), &fake, Some(&objects), &request)
            .await
            .unwrap();
        for query in fake.queries() {
            assert!(query.len() < 1000, "{} bytes: {query}", query.len());
            assert!(query.contains(r#"instance=~"ip-10-0-"#), "{query}");
        }
        assert_eq!(
            found,
            vec![NodeUsage {
                name: "ip-10-0-0-1".into(),
                labels: Some(Arc::new(Labels::new())),
                timestamp: at(4.0),
                cpu_milli: 1000,
                memory_milli: 1_024_000,
            }]
        );
    }
}
