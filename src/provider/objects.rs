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
    for depth in 1..=2 {
        let patterns: BTreeSet<String> = names
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
                if prefix.len() == name.len() {
                    escape(name)
                } else {
                    format!("{}-.*", escape(prefix))
                }
            })
            .collect();
        if let Some(joined) = join_within(&patterns, budget) {
            return Some(joined);
        }
    }
    for width in (1..=8).rev() {
        let patterns: BTreeSet<String> = names
            .iter()
            .map(|name| {
                let cut = name
                    .char_indices()
                    .nth(width)
                    .map_or(name.len(), |(i, _)| i);
                if cut == name.len() {
                    escape(name)
                } else {
                    format!("{}.*", escape(&name[..cut]))
                }
            })
            .collect();
        if let Some(joined) = join_within(&patterns, budget) {
            return Some(joined);
        }
    }
    Some(".+".to_owned())
}

/// `regex::escape` without escaping `-` (object names are DNS names; `-` is only special inside
/// a character class, and the plain form keeps matchers readable).
fn escape(text: &str) -> String {
    regex::escape(text).replace("\\-", "-")
}

fn join_within(patterns: &BTreeSet<String>, budget: usize) -> Option<String> {
    let len: usize = patterns.iter().map(|p| p.len() + 1).sum();
    (len <= budget + 1).then(|| patterns.iter().cloned().collect::<Vec<_>>().join("|"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
}
