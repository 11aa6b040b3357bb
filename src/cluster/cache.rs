//! Watch-backed object metadata caches: one LIST+WATCH (kube-rs `metadata_watcher`) per
//! resource type and phase filter, started on first use and reused by every request, indexed
//! by namespace so a label selector is matched locally without a call to the API server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;

use crate::promql::selector::{LabelSelector, Operator};
use crate::provider::objects::{Labels, ObjectMeta, ObjectSource, ObjectsError, Phase};
use crate::resources::{GroupResource, ResourceInfo};

/// Objects by namespace (empty for cluster-scoped ones).
type Index = BTreeMap<Arc<str>, Namespace>;

/// The objects of one namespace, by name and by label, so a selector with an equality
/// requirement (`app=web`, `app in (a,b)`) visits only the objects that carry it.
#[derive(Debug, Default)]
struct Namespace {
    objects: BTreeMap<Arc<str>, Arc<Labels>>,
    by_label: HashMap<(String, String), BTreeSet<Arc<str>>>,
}

impl Namespace {
    fn insert(&mut self, name: Arc<str>, labels: Arc<Labels>) {
        if let Some(old) = self.objects.insert(name.clone(), labels.clone()) {
            self.unindex(&name, &old);
        }
        for (key, value) in labels.iter() {
            self.by_label
                .entry((key.clone(), value.clone()))
                .or_default()
                .insert(name.clone());
        }
    }

    fn remove(&mut self, name: &str) {
        if let Some((name, old)) = self.objects.remove_entry(name) {
            self.unindex(&name, &old);
        }
    }

    fn unindex(&mut self, name: &str, labels: &Labels) {
        for (key, value) in labels {
            let label = (key.clone(), value.clone());
            if let Some(names) = self.by_label.get_mut(&label) {
                names.remove(name);
                if names.is_empty() {
                    self.by_label.remove(&label);
                }
            }
        }
    }

    /// Objects matching `selector`, sorted by name.
    fn select(&self, namespace: &Arc<str>, selector: &LabelSelector, out: &mut Vec<ObjectMeta>) {
        let mut push = |name: &Arc<str>, labels: &Arc<Labels>| {
            if selector.matches(labels) {
                out.push(ObjectMeta {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    labels: labels.clone(),
                });
            }
        };
        // The smallest candidate set among the positive requirements, if any.
        let candidates = selector
            .requirements
            .iter()
            .filter(|r| {
                matches!(
                    r.operator,
                    Operator::Equals | Operator::DoubleEquals | Operator::In
                )
            })
            .map(|r| {
                let sets: Vec<&BTreeSet<Arc<str>>> = r
                    .values
                    .iter()
                    .filter_map(|v| self.by_label.get(&(r.key.clone(), v.clone())))
                    .collect();
                (sets.iter().map(|s| s.len()).sum::<usize>(), sets)
            })
            .min_by_key(|(size, _)| *size);
        match candidates {
            None => self.objects.iter().for_each(|(n, l)| push(n, l)),
            Some((_, sets)) => {
                // Sets for different values of one key are disjoint; merge them in name order.
                let mut names: Vec<&Arc<str>> = sets.into_iter().flatten().collect();
                names.sort_unstable();
                for name in names {
                    if let Some(labels) = self.objects.get(name) {
                        push(name, labels);
                    }
                }
            }
        }
    }
}

/// One watched resource type.
struct Watched {
    index: RwLock<Index>,
    synced: watch::Sender<bool>,
    last_error: Mutex<Option<String>>,
}

impl Watched {
    fn insert(index: &mut Index, object: &PartialObjectMeta<DynamicObject>) {
        let Some(name) = object.metadata.name.as_deref() else {
            return;
        };
        let namespace: Arc<str> = Arc::from(object.metadata.namespace.as_deref().unwrap_or(""));
        let labels = object.metadata.labels.clone().unwrap_or_default();
        index
            .entry(namespace)
            .or_default()
            .insert(Arc::from(name), Arc::new(labels));
    }

    fn remove(index: &mut Index, object: &PartialObjectMeta<DynamicObject>) {
        let Some(name) = object.metadata.name.as_deref() else {
            return;
        };
        let namespace = object.metadata.namespace.as_deref().unwrap_or("");
        if let Some(objects) = index.get_mut(namespace) {
            objects.remove(name);
            if objects.objects.is_empty() {
                index.remove(namespace);
            }
        }
    }

    /// Applies watcher events until the stream ends (it does not: the watcher retries with
    /// backoff). A relist (`Init` … `InitDone`) replaces the index atomically.
    async fn run(
        self: Arc<Self>,
        api: Api<PartialObjectMeta<DynamicObject>>,
        config: watcher::Config,
        what: String,
    ) {
        // `Api<PartialObjectMeta<_>>` makes metadata-only LIST and WATCH requests.
        let stream = watcher::watcher(api, config).default_backoff();
        futures::pin_mut!(stream);
        let mut buffer: Option<Index> = None;
        while let Some(event) = stream.next().await {
            match event {
                Ok(Event::Init) => buffer = Some(Index::new()),
                Ok(Event::InitApply(object)) => {
                    if let Some(buffer) = buffer.as_mut() {
                        Self::insert(buffer, &object);
                    }
                }
                Ok(Event::InitDone) => {
                    let next = buffer.take().unwrap_or_default();
                    let count: usize = next.values().map(|ns| ns.objects.len()).sum();
                    if let Ok(mut index) = self.index.write() {
                        *index = next;
                    }
                    if let Ok(mut error) = self.last_error.lock() {
                        *error = None;
                    }
                    self.synced.send_replace(true);
                    tracing::info!(resource = %what, objects = count, "object cache synced");
                }
                Ok(Event::Apply(object)) => {
                    if let Ok(mut index) = self.index.write() {
                        Self::insert(&mut index, &object);
                    }
                }
                Ok(Event::Delete(object)) => {
                    if let Ok(mut index) = self.index.write() {
                        Self::remove(&mut index, &object);
                    }
                }
                Err(e) => {
                    tracing::warn!(resource = %what, error = %e, "object watch failed; retrying with backoff");
                    if let Ok(mut error) = self.last_error.lock() {
                        *error = Some(e.to_string());
                    }
                }
            }
        }
    }

    fn select(
        &self,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<ObjectMeta>, ObjectsError> {
        let index = self
            .index
            .read()
            .map_err(|_| ObjectsError::Failed("the object cache lock is poisoned".into()))?;
        let mut out = Vec::new();
        match namespace {
            Some(ns) => {
                if let Some((key, objects)) = index.get_key_value(ns) {
                    objects.select(key, selector, &mut out);
                }
            }
            None => index
                .iter()
                .for_each(|(ns, objects)| objects.select(ns, selector, &mut out)),
        }
        Ok(out)
    }
}

/// The caches, keyed by resource type and phase filter.
pub struct ObjectCache {
    client: kube::Client,
    sync_timeout: Duration,
    watches: Mutex<HashMap<(GroupResource, Phase), Arc<Watched>>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for ObjectCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watched: Vec<String> = self
            .watches
            .lock()
            .map(|w| w.keys().map(|(gr, p)| format!("{gr} {p:?}")).collect())
            .unwrap_or_default();
        f.debug_struct("ObjectCache")
            .field("watched", &watched)
            .finish_non_exhaustive()
    }
}

impl ObjectCache {
    /// Caches over `client`; a request waits at most `sync_timeout` for a cache's first list.
    pub fn new(client: kube::Client, sync_timeout: Duration) -> Self {
        Self {
            client,
            sync_timeout,
            watches: Mutex::default(),
            tasks: Mutex::default(),
        }
    }

    /// The cache of `resource`/`phase`, starting its watch on first use.
    fn watched(&self, resource: &ResourceInfo, phase: Phase) -> Result<Arc<Watched>, ObjectsError> {
        let mut watches = self
            .watches
            .lock()
            .map_err(|_| ObjectsError::Failed("the object cache lock is poisoned".into()))?;
        let key = (resource.group_resource.clone(), phase);
        if let Some(existing) = watches.get(&key) {
            return Ok(existing.clone());
        }
        let gr = &resource.group_resource;
        let api_resource = ApiResource {
            group: gr.group.clone(),
            version: resource.version.clone(),
            api_version: if gr.group.is_empty() {
                resource.version.clone()
            } else {
                format!("{}/{}", gr.group, resource.version)
            },
            kind: resource.kind.clone(),
            plural: gr.resource.clone(),
        };
        let api =
            Api::<PartialObjectMeta<DynamicObject>>::all_with(self.client.clone(), &api_resource);
        let mut config = watcher::Config::default();
        if let Some(fields) = phase.field_selector() {
            config = config.fields(fields);
        }
        let watched = Arc::new(Watched {
            index: RwLock::default(),
            synced: watch::Sender::new(false),
            last_error: Mutex::default(),
        });
        let what = match phase.field_selector() {
            Some(fields) => format!("{gr} ({fields})"),
            None => gr.to_string(),
        };
        tracing::info!(resource = %what, "starting object watch");
        let task = tokio::spawn(watched.clone().run(api, config, what));
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.push(task);
        }
        watches.insert(key, watched.clone());
        Ok(watched)
    }

    async fn select_objects(
        &self,
        resource: &ResourceInfo,
        phase: Phase,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Result<Vec<ObjectMeta>, ObjectsError> {
        let watched = self.watched(resource, phase)?;
        let mut synced = watched.synced.subscribe();
        if !*synced.borrow() {
            let waited = tokio::time::timeout(self.sync_timeout, synced.wait_for(|s| *s)).await;
            if !matches!(waited, Ok(Ok(_))) {
                let why = watched
                    .last_error
                    .lock()
                    .ok()
                    .and_then(|e| e.clone())
                    .map(|e| format!("; last error: {e}"))
                    .unwrap_or_default();
                return Err(ObjectsError::NotSynced(format!(
                    "the object cache of {} has not synced with the Kubernetes API yet (waited {:?}){why}; retry shortly",
                    resource.group_resource, self.sync_timeout
                )));
            }
        }
        watched.select(namespace, selector)
    }
}

impl ObjectSource for ObjectCache {
    fn select<'a>(
        &'a self,
        resource: &'a ResourceInfo,
        phase: Phase,
        namespace: Option<&'a str>,
        selector: &'a LabelSelector,
    ) -> BoxFuture<'a, Result<Vec<ObjectMeta>, ObjectsError>> {
        Box::pin(self.select_objects(resource, phase, namespace, selector))
    }
}

impl Drop for ObjectCache {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            tasks.iter().for_each(tokio::task::JoinHandle::abort);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Arc<Labels> {
        Arc::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn names(ns: &Namespace, selector: &str) -> Vec<String> {
        let mut out = Vec::new();
        ns.select(
            &Arc::from("default"),
            &LabelSelector::parse(selector).unwrap(),
            &mut out,
        );
        out.iter().map(|o| o.name.to_string()).collect()
    }

    #[test]
    fn label_index_follows_updates_and_deletes() {
        let mut ns = Namespace::default();
        ns.insert(Arc::from("web-2"), labels(&[("app", "web")]));
        ns.insert(
            Arc::from("web-1"),
            labels(&[("app", "web"), ("tier", "front")]),
        );
        ns.insert(Arc::from("db-0"), labels(&[("app", "db")]));
        ns.insert(Arc::from("web-3"), labels(&[("app", "canary")]));
        assert_eq!(names(&ns, "app=web"), ["web-1", "web-2"]);
        assert_eq!(names(&ns, "app in (web,db),tier!=front"), ["db-0", "web-2"]);
        assert_eq!(names(&ns, "!tier"), ["db-0", "web-2", "web-3"]);
        assert_eq!(names(&ns, "app=none"), Vec::<String>::new());
        // A relabel moves the object between index entries; a delete removes it.
        ns.insert(Arc::from("web-3"), labels(&[("app", "web")]));
        ns.remove("web-1");
        assert_eq!(names(&ns, "app=web"), ["web-2", "web-3"]);
        assert_eq!(names(&ns, "app=canary"), Vec::<String>::new());
        assert_eq!(names(&ns, ""), ["db-0", "web-2", "web-3"]);
        assert!(
            !ns.by_label
                .contains_key(&("tier".to_owned(), "front".to_owned()))
        );
    }
}
