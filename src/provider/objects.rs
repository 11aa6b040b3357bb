//! Kubernetes objects a request selects (cluster mode): the [`ObjectSource`] interface the
//! providers ask for object names, and the short name matcher that keeps a long list of names
//! inside the query-length limits of Prometheus-compatible engines.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::promql::selector::LabelSelector;
use crate::resources::ResourceInfo;

/// Labels of one object.
pub type Labels = BTreeMap<String, String>;

/// One selected object: what the metrics APIs need of its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: Arc<str>,
    /// Name.
    pub name: Arc<str>,
    /// Labels.
    pub labels: Arc<Labels>,
}

/// Which objects of a resource to consider before the label selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Every object.
    Any,
    /// Pods with `status.phase=Running` (what metrics.k8s.io reports on).
    Running,
}

impl Phase {
    /// The field selector that implements this filter on the Kubernetes API.
    pub fn field_selector(self) -> Option<&'static str> {
        match self {
            Phase::Any => None,
            Phase::Running => Some("status.phase=Running"),
        }
    }
}

/// Why objects could not be selected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ObjectsError {
    /// The watch cache has not finished its first list (clients should retry: 503).
    #[error("{0}")]
    NotSynced(String),
    /// The resource cannot be listed at all (500).
    #[error("{0}")]
    Failed(String),
}

/// Answers "which objects of this resource match this selector", from a cache.
pub trait ObjectSource: Send + Sync + 'static {
    /// Objects of `resource` (filtered by `phase`) in `namespace` (every namespace when
    /// `None`) whose labels match `selector`, sorted by namespace then name.
    fn select<'a>(
        &'a self,
        resource: &'a ResourceInfo,
        phase: Phase,
        namespace: Option<&'a str>,
        selector: &'a LabelSelector,
    ) -> BoxFuture<'a, Result<Vec<ObjectMeta>, ObjectsError>>;
}

/// Longest `n1|n2|…` alternation sent as is; longer lists get a shorter superset matcher.
/// VictoriaMetrics rejects queries over 16 KiB (`-search.maxQueryLen`), and a metricsQuery
/// may use `<<.LabelMatchers>>` more than once.
pub const MAX_ALTERNATION: usize = 4096;

/// The regex for a `label=~` matcher selecting `names`, or `None` when the plain
/// alternation fits in `budget` bytes (then prometheus-adapter's `n1|n2|…` is used).
///
/// Longer lists are shortened to a superset, the first form that fits:
/// 1. names grouped by the prefix before their last `-` (ReplicaSet and StatefulSet pods:
///    `web-7d9f8c6b5-.*`), names without `-` kept whole;
/// 2. the same one `-` segment further up (`web-.*`);
/// 3. common leading characters (`we.*`), from 8 down to 1 character;
/// 4. `.+`.
///
/// The result can select objects that are not in `names`; callers keep only the samples of
/// the selected names, so the answer is the same.
pub fn compact_matcher(names: &[Arc<str>], budget: usize) -> Option<String> {
    let plain: usize = names.iter().map(|n| n.len() + 1).sum::<usize>();
    if plain <= budget + 1 {
        return None;
    }
    // (prefix, whether it is the whole name): deduplicated on slices, formatted once each.
    for depth in 1..=2 {
        let groups: BTreeSet<(&str, bool)> = names
            .iter()
            .map(|name| {
                let mut prefix: &str = name;
                for _ in 0..depth {
                    if let Some((head, _)) = prefix.rsplit_once('-')
                        && !head.is_empty()
                    {
                        prefix = head;
                    }
                }
                (prefix, prefix.len() == name.len())
            })
            .collect();
        if let Some(joined) = join_within(&groups, "-.*", budget) {
            return Some(joined);
        }
    }
    for width in (1..=8).rev() {
        let groups: BTreeSet<(&str, bool)> = names
            .iter()
            .map(|name| {
                let cut = name
                    .char_indices()
                    .nth(width)
                    .map_or(name.len(), |(i, _)| i);
                (&name[..cut], cut == name.len())
            })
            .collect();
        if let Some(joined) = join_within(&groups, ".*", budget) {
            return Some(joined);
        }
    }
    Some(".+".to_owned())
}

/// Escapes regex syntax, except `-` (object names are DNS names; `-` is only special inside
/// a character class, and the plain form keeps matchers readable).
fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `p1|p2|…` where a prefix gets `suffix` and a whole name none, if it fits in `budget`.
fn join_within(groups: &BTreeSet<(&str, bool)>, suffix: &str, budget: usize) -> Option<String> {
    let len: usize = groups
        .iter()
        .map(|(text, whole)| text.len() + 1 + if *whole { 0 } else { suffix.len() })
        .sum();
    // Escapes only add to the length; check again after building.
    if len > budget + 1 {
        return None;
    }
    let mut out = String::with_capacity(len);
    for (i, (text, whole)) in groups.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        push_escaped(&mut out, text);
        if !whole {
            out.push_str(suffix);
        }
    }
    (out.len() <= budget).then_some(out)
}

/// A matcher that selects the pods of the one workload `names` belong to, now and after
/// scale events or rollouts, or `None` when the names do not share one workload's naming:
/// Deployment pods `<name>-<pod-template-hash>-<5 chars>`, StatefulSet pods
/// `<name>-<ordinal>`, DaemonSet/Job pods `<name>-<5 chars>`. Forecast histories use it so a
/// new pod does not start a new, empty history.
pub fn workload_matcher(names: &[Arc<str>]) -> Option<String> {
    static FORMS: std::sync::LazyLock<Vec<(regex::Regex, &'static str)>> =
        std::sync::LazyLock::new(|| {
            [
                (
                    r"^(.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$",
                    "-[a-z0-9]{6,10}-[a-z0-9]{5}",
                ),
                (r"^(.+)-[0-9]+$", "-[0-9]+"),
                (r"^(.+)-[a-z0-9]{5}$", "-[a-z0-9]{5}"),
            ]
            .into_iter()
            .filter_map(|(re, tail)| regex::Regex::new(re).ok().map(|re| (re, tail)))
            .collect()
        });
    let first = names.first()?;
    FORMS.iter().find_map(|(form, tail)| {
        let workload = form.captures(first)?.get(1)?.as_str();
        let same = names.iter().all(|name| {
            form.captures(name)
                .and_then(|c| c.get(1))
                .is_some_and(|w| w.as_str() == workload)
        });
        same.then(|| format!("{}{tail}", regex::escape(workload)))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn workload_matcher_follows_deployments_statefulsets_and_daemonsets() {
        let names = |list: &[&str]| {
            list.iter()
                .map(|n| Arc::from(*n))
                .collect::<Vec<Arc<str>>>()
        };
        assert_eq!(
            super::workload_matcher(&names(&["web-7d9f8c6b5-abcde", "web-7d9f8c6b5-x2x9q"]))
                .as_deref(),
            Some("web-[a-z0-9]{6,10}-[a-z0-9]{5}")
        );
        assert_eq!(
            super::workload_matcher(&names(&["db.main-0", "db.main-12"])).as_deref(),
            Some(r"db\.main-[0-9]+")
        );
        assert_eq!(
            super::workload_matcher(&names(&["agent-k2v9p"])).as_deref(),
            Some("agent-[a-z0-9]{5}")
        );
        assert_eq!(
            super::workload_matcher(&names(&["web-7d9f8c6b5-abcde", "api-6c7d8e9f0-abcde"])),
            None
        );
    }

    use super::*;
    use futures::future::BoxFuture;

    fn names(list: &[&str]) -> Vec<Arc<str>> {
        list.iter().map(|n| Arc::from(*n)).collect()
    }

    #[test]
    fn short_lists_stay_exact() {
        assert_eq!(compact_matcher(&names(&["a", "b"]), 3), None);
        assert_eq!(compact_matcher(&names(&[]), 0), None);
    }

    #[test]
    fn long_lists_group_by_replicaset_prefix_then_coarser() {
        let pods = names(&[
            "web-7d9f8c6b5-abcde",
            "web-7d9f8c6b5-fghij",
            "web-7d9f8c6b5-klmno",
            "api-5f6d7c8b9-pqrst",
            "api-5f6d7c8b9-uvwxy",
            "db-0",
            "db-1",
            "single",
        ]);
        assert_eq!(
            compact_matcher(&pods, 60).as_deref(),
            Some("api-5f6d7c8b9-.*|db-.*|single|web-7d9f8c6b5-.*")
        );
        assert_eq!(
            compact_matcher(&pods, 30).as_deref(),
            Some("api-.*|db-.*|single|web-.*")
        );
        assert_eq!(
            compact_matcher(&pods, 20).as_deref(),
            Some("ap.*|db.*|si.*|we.*")
        );
        assert_eq!(compact_matcher(&pods, 5).as_deref(), Some(".+"));
    }

    #[test]
    fn five_thousand_pods_fit_in_a_few_hundred_bytes() {
        let pods: Vec<Arc<str>> = (0..5000)
            .map(|i| Arc::from(format!("web-{:x}-{:05}", 0x7d9f8c6b0u64 + (i % 10), i)))
            .collect();
        let matcher = compact_matcher(&pods, MAX_ALTERNATION).unwrap();
        assert_eq!(matcher.split('|').count(), 10);
        assert!(matcher.len() < 300, "{}", matcher.len());
        let re = regex::Regex::new(&format!("^(?:{matcher})$")).unwrap();
        assert!(pods.iter().all(|p| re.is_match(p)));
    }

    /// Every pod of the list in one namespace, labelled app=web (even) or app=db (odd).
    struct Pods(Vec<Arc<str>>);

    impl ObjectSource for Pods {
        fn select<'a>(
            &'a self,
            _resource: &'a ResourceInfo,
            _phase: Phase,
            namespace: Option<&'a str>,
            selector: &'a LabelSelector,
        ) -> BoxFuture<'a, Result<Vec<ObjectMeta>, ObjectsError>> {
            Box::pin(async move {
                if namespace != Some("default") {
                    return Ok(Vec::new());
                }
                Ok(self
                    .0
                    .iter()
                    .enumerate()
                    .map(|(i, name)| {
                        let app = if i % 2 == 0 { "web" } else { "db" };
                        ObjectMeta {
                            namespace: Arc::from("default"),
                            name: name.clone(),
                            labels: Arc::new(Labels::from([("app".to_owned(), app.to_owned())])),
                        }
                    })
                    .filter(|o| selector.matches(&o.labels))
                    .collect())
            })
        }
    }

    /// A snapshot with one rule over `hits` of pods, and a `pods/*` request for it in
    /// namespace default with the object selector `selector`.
    fn hits_snapshot(selector: &str) -> (crate::series::Snapshot, crate::provider::CustomRequest) {
        use crate::config::{UnknownResources, parse};
        use crate::prometheus::fake::labels;
        use crate::provider::{CustomRequest, ObjectName};
        use crate::resources::ResourceTable;
        use crate::series::{Listing, Snapshot};
        use std::collections::HashMap;
        use std::time::UNIX_EPOCH;

        let table = Arc::new(ResourceTable::builtin());
        let text = "rules:\n- seriesQuery: 'hits'\n  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'\n";
        let config = Arc::new(parse(text, "t.yaml", &table, UnknownResources::Reject).unwrap());
        let listing = Listing::reduce(
            &[labels(&[
                ("__name__", "hits"),
                ("namespace", "default"),
                ("pod", "x"),
            ])],
            UNIX_EPOCH,
        );
        let snapshot = Snapshot::build(
            config,
            table,
            &HashMap::from([("hits".to_owned(), listing)]),
            Some(UNIX_EPOCH),
        );
        let request = CustomRequest {
            resource: "pods".into(),
            namespace: Some("default".into()),
            name: ObjectName::All,
            metric: "hits".into(),
            metric_selector: LabelSelector::default(),
            object_selector: LabelSelector::parse(selector).unwrap(),
        };
        (snapshot, request)
    }

    #[tokio::test]
    async fn a_workload_pattern_is_the_history_only_when_it_picks_nothing_else() {
        use crate::provider::custom::resolve_custom;

        let (snapshot, request) = hits_snapshot("app=web");
        let stable = |pods: Pods| {
            let snapshot = &snapshot;
            let request = &request;
            async move {
                resolve_custom(snapshot, Some(&pods), request)
                    .await
                    .unwrap()
                    .stable
                    .map(|q| q.promql)
            }
        };
        // app=web (even positions) picks web-0 and web-1; no other pod is named web-<n>:
        // the history follows the StatefulSet's pattern.
        assert_eq!(
            stable(Pods(names(&["web-0", "job-a", "web-1", "x"]))).await,
            Some(r#"sum(hits{namespace="default",pod=~"web-[0-9]+"}) by (pod)"#.to_owned())
        );
        // web-7 (app=db) matches the pattern too: the history is the selected pods' own
        // (before, web-[0-9]+ summed web-7 in).
        assert_eq!(
            stable(Pods(names(&["web-0", "web-7", "web-1"]))).await,
            None
        );
    }

    #[tokio::test]
    async fn selected_names_feed_label_matchers_and_filter_the_results() {
        use crate::prometheus::QueryResult;
        use crate::prometheus::fake::{FakeBackend, sample};
        use crate::provider::ProviderError;
        use crate::provider::custom::custom_metric_with_objects;
        use std::time::UNIX_EPOCH;

        let (snapshot, _) = hits_snapshot("");
        let request = |selector: &str| hits_snapshot(selector).1;
        // A few pods: the adapter's exact alternation; samples of unselected pods are dropped.
        let few = Pods(names(&["web-a", "db-a", "web-b"]));
        let fake = FakeBackend::new().with_query_fn(|_, _| {
            Ok(QueryResult::Vector(vec![
                sample(&[("pod", "web-a")], 1.0),
                sample(&[("pod", "db-a")], 2.0),
                sample(&[("pod", "web-b")], 3.0),
            ]))
        });
        let items = custom_metric_with_objects(
            &snapshot,
            &fake,
            Some(&few),
            &request("app=web"),
            UNIX_EPOCH,
        )
        .await
        .unwrap();
        let got: Vec<(&str, f64)> = items.iter().map(|i| (i.name.as_str(), i.value)).collect();
        assert_eq!(got, [("web-a", 1.0), ("web-b", 3.0)]);
        assert_eq!(
            fake.queries(),
            [r#"sum(hits{namespace="default",pod=~"web-a|web-b"}) by (pod)"#]
        );
        // 5,000 ReplicaSet pods: a short matcher, results still limited to the selection.
        let many = Pods(
            (0..5000)
                .map(|i| Arc::from(format!("web-7d9f8c6b{}-{i:05}", i % 2)))
                .collect(),
        );
        let fake = FakeBackend::new().with_query_fn(|_, _| {
            Ok(QueryResult::Vector(vec![
                sample(&[("pod", "web-7d9f8c6b0-00000")], 1.0),
                sample(&[("pod", "web-7d9f8c6b1-00001")], 2.0),
            ]))
        });
        let items = custom_metric_with_objects(
            &snapshot,
            &fake,
            Some(&many),
            &request("app=web"),
            UNIX_EPOCH,
        )
        .await
        .unwrap();
        let got: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(got, ["web-7d9f8c6b0-00000"]);
        assert_eq!(
            fake.queries(),
            [r#"sum(hits{namespace="default",pod=~"web-7d9f8c6b0-.*"}) by (pod)"#]
        );
        // Nothing selected: 404 naming the selector.
        let err = custom_metric_with_objects(
            &snapshot,
            &fake,
            Some(&few),
            &request("app=none"),
            UNIX_EPOCH,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProviderError::ObjectNotFound(_)));
        assert_eq!(
            err.to_string(),
            "the server could not find the metric hits for pods: no objects in namespace default matched the label selector \"app=none\""
        );
    }
}
