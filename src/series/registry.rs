//! The registry: an immutable snapshot of which metrics exist for which resources, built
//! from relisted series and swapped in atomically so request handlers never lock.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

use crate::config::{Config, Rule};
use crate::resources::{GroupResource, ResourceInfo, ResourceTable, is_root_scoped_special};

use super::relist::Listing;

/// Where a discovered metric comes from: the series name for `<<.Series>>` and the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRef {
    /// Prometheus series name (the last one of that metric seen by the rule).
    pub series: Arc<str>,
    /// Index of the rule in its section of the config.
    pub rule: usize,
}

/// A forecast twin: the live metric it forecasts and the rule whose `forecast` block made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwinRef {
    /// The live metric's name.
    pub live_metric: String,
    /// Index of the rule in its section of the config.
    pub rule: usize,
}

/// Registry key of a custom metric, as prometheus-adapter keys it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomKey {
    /// The resource the metric describes.
    pub resource: GroupResource,
    /// Whether requests for it name a namespace.
    pub namespaced: bool,
    /// API metric name.
    pub metric: String,
}

/// What one rule found in the last relist (for `augur check` and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleStats {
    /// Distinct series names that passed the rule's filters.
    pub series: usize,
    /// Metric names it produced.
    pub metrics: BTreeSet<String>,
    /// Resources its series were associated with.
    pub resources: BTreeSet<GroupResource>,
}

/// One immutable view of the configuration and what it discovered.
#[derive(Debug)]
pub struct Snapshot {
    /// The configuration the snapshot was built from.
    pub config: Arc<Config>,
    /// Resource names known to this snapshot.
    pub table: Arc<ResourceTable>,
    /// Custom metrics.
    pub custom: HashMap<CustomKey, SeriesRef>,
    /// External metrics by name.
    pub external: HashMap<String, SeriesRef>,
    /// Forecast twins of custom metrics, for every resource their live metric has.
    pub custom_twins: HashMap<CustomKey, TwinRef>,
    /// Forecast twins of external metrics.
    pub external_twins: HashMap<String, TwinRef>,
    /// Resources referenced by rules that the table does not know (guessed CRDs).
    pub extra_resources: HashMap<GroupResource, ResourceInfo>,
    /// Per custom rule, what it found.
    pub rule_stats: Vec<RuleStats>,
    /// Per external rule, what it found.
    pub external_rule_stats: Vec<RuleStats>,
    /// When the listings behind this snapshot were taken (None before the first relist).
    pub relisted_at: Option<SystemTime>,
}

impl Snapshot {
    /// The snapshot before the first relist: the configuration, nothing discovered.
    pub fn empty(config: Arc<Config>, table: Arc<ResourceTable>) -> Self {
        Self::build(config, table, &HashMap::new(), None)
    }

    /// Builds a snapshot from per-seriesQuery listings. Later rules overwrite earlier ones for
    /// the same key, as in prometheus-adapter.
    pub fn build(
        config: Arc<Config>,
        table: Arc<ResourceTable>,
        listings: &HashMap<String, Listing>,
        relisted_at: Option<SystemTime>,
    ) -> Self {
        let mut custom = HashMap::new();
        let mut external = HashMap::new();
        let mut extra_resources = HashMap::new();
        let mut rule_stats = Vec::with_capacity(config.rules.len());
        for (index, rule) in config.rules.iter().enumerate() {
            let mut stats = RuleStats::default();
            let mut label_resources: HashMap<&str, Option<ResourceInfo>> = HashMap::new();
            for (series, metric, labels) in matching_series(rule, listings) {
                stats.series += 1;
                for label in labels.iter() {
                    let resolved = label_resources
                        .entry(label)
                        .or_insert_with(|| rule.resources.resource_for_label(label, &table));
                    let Some(info) = resolved else { continue };
                    let gr = info.group_resource.clone();
                    if table.get(&gr).is_none() {
                        extra_resources
                            .entry(gr.clone())
                            .or_insert_with(|| info.clone());
                    }
                    stats.resources.insert(gr.clone());
                    let key = CustomKey {
                        namespaced: !is_root_scoped_special(&gr),
                        resource: gr,
                        metric: metric.clone(),
                    };
                    custom.insert(
                        key,
                        SeriesRef {
                            series: series.clone(),
                            rule: index,
                        },
                    );
                }
                stats.metrics.insert(metric);
            }
            rule_stats.push(stats);
        }
        let mut external_rule_stats = Vec::with_capacity(config.external_rules.len());
        for (index, rule) in config.external_rules.iter().enumerate() {
            let mut stats = RuleStats::default();
            for (series, metric, _) in matching_series(rule, listings) {
                stats.series += 1;
                stats.metrics.insert(metric.clone());
                external.insert(
                    metric,
                    SeriesRef {
                        series: series.clone(),
                        rule: index,
                    },
                );
            }
            external_rule_stats.push(stats);
        }
        let twin = |rules: &[Rule], live: &str, series: &SeriesRef| -> Option<(String, TwinRef)> {
            let spec = rules.get(series.rule)?.forecast.as_ref()?;
            let twin = TwinRef {
                live_metric: live.to_owned(),
                rule: series.rule,
            };
            Some((spec.twin_name(live), twin))
        };
        // Twins come from the rule that won the live key; a live metric of the same name wins
        // over a twin.
        let mut custom_twins = HashMap::new();
        for (key, series) in &custom {
            if let Some((name, t)) = twin(&config.rules, &key.metric, series) {
                let twin_key = CustomKey {
                    metric: name,
                    ..key.clone()
                };
                if !custom.contains_key(&twin_key) {
                    custom_twins.insert(twin_key, t);
                }
            }
        }
        let mut external_twins = HashMap::new();
        for (metric, series) in &external {
            if let Some((name, t)) = twin(&config.external_rules, metric, series)
                && !external.contains_key(&name)
            {
                external_twins.insert(name, t);
            }
        }
        Snapshot {
            config,
            table,
            custom,
            external,
            custom_twins,
            external_twins,
            extra_resources,
            rule_stats,
            external_rule_stats,
            relisted_at,
        }
    }

    /// Resolves a resource as written in a request path (`pods`, `pod`, `deployments.apps`).
    pub fn resolve_resource(&self, name: &str) -> Option<&ResourceInfo> {
        self.table.lookup(name).or_else(|| {
            let lower = name.to_ascii_lowercase();
            self.extra_resources.values().find(|info| {
                let gr = &info.group_resource;
                let qualified = |n: &str| {
                    if gr.group.is_empty() {
                        n.to_owned()
                    } else {
                        format!("{n}.{}", gr.group)
                    }
                };
                [gr.resource.as_str(), info.singular.as_str()]
                    .iter()
                    .any(|n| *n == lower || qualified(n) == lower)
            })
        })
    }

    /// Discovery entries for custom.metrics.k8s.io: (`resource/metric`, namespaced), sorted.
    pub fn custom_resources(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = self
            .custom
            .keys()
            .chain(self.custom_twins.keys())
            .map(|key| (format!("{}/{}", key.resource, key.metric), key.namespaced))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Discovery entries for external.metrics.k8s.io: metric names, sorted.
    pub fn external_metrics(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .external
            .keys()
            .chain(self.external_twins.keys())
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The forecast twin a custom request names, with its resolved resource (None when the
    /// metric is not a twin, or a live metric of that name exists).
    pub fn custom_twin(
        &self,
        resource: &str,
        namespaced: bool,
        metric: &str,
    ) -> Option<(&ResourceInfo, &TwinRef)> {
        if self.custom_twins.is_empty() {
            return None;
        }
        let info = self.resolve_resource(resource)?;
        let key = CustomKey {
            resource: info.group_resource.clone(),
            namespaced,
            metric: metric.to_owned(),
        };
        self.custom_twins.get(&key).map(|t| (info, t))
    }

    /// The rule behind a custom metric.
    pub fn custom_rule(&self, series: &SeriesRef) -> Option<&Rule> {
        self.config.rules.get(series.rule)
    }

    /// The rule behind an external metric.
    pub fn external_rule(&self, series: &SeriesRef) -> Option<&Rule> {
        self.config.external_rules.get(series.rule)
    }
}

/// The series of a rule's listing that pass its filters, with their metric names.
fn matching_series<'a>(
    rule: &'a Rule,
    listings: &'a HashMap<String, Listing>,
) -> impl Iterator<Item = (&'a Arc<str>, String, &'a Arc<[Box<str>]>)> + 'a {
    listings
        .get(&rule.series_query)
        .into_iter()
        .flat_map(|listing| listing.series.iter())
        .filter(|shape| {
            rule.series_filters
                .iter()
                .all(|filter| filter.passes(&shape.name))
        })
        .filter_map(|shape| {
            rule.naming
                .metric_name(&shape.name)
                .map(|metric| (&shape.name, metric, &shape.labels))
        })
}

/// The shared handle to the current snapshot.
#[derive(Debug)]
pub struct Registry {
    current: ArcSwap<Snapshot>,
}

impl Registry {
    /// A registry holding `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self {
            current: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The current snapshot (lock-free).
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Publishes a new snapshot.
    pub fn store(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }
}
