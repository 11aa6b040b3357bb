//! Watch-backed object metadata caches: one LIST+WATCH (kube-rs `metadata_watcher`) per
//! resource type and phase filter, started on first use and reused by every request, indexed
//! by namespace so a label selector is matched locally without a call to the API server.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;

use crate::promql::selector::LabelSelector;
use crate::provider::objects::{Labels, ObjectMeta, ObjectSource, ObjectsError, Phase};
use crate::resources::{GroupResource, ResourceInfo};

/// Objects by namespace (empty for cluster-scoped ones), then by name.
type Index = BTreeMap<Arc<str>, BTreeMap<Arc<str>, Arc<Labels>>>;

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
        if let Some(names) = index.get_mut(namespace) {
            names.remove(name);
            if names.is_empty() {
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
                    let count: usize = next.values().map(BTreeMap::len).sum();
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
        let mut take = |ns: &Arc<str>, names: &BTreeMap<Arc<str>, Arc<Labels>>| {
            for (name, labels) in names {
                if selector.matches(labels) {
                    out.push(ObjectMeta {
                        namespace: ns.clone(),
                        name: name.clone(),
                        labels: labels.clone(),
                    });
                }
            }
        };
        match namespace {
            Some(ns) => {
                if let Some((key, names)) = index.get_key_value(ns) {
                    take(key, names);
                }
            }
            None => index.iter().for_each(|(ns, names)| take(ns, names)),
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
