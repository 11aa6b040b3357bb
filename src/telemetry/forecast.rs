//! The forecast engine's metrics: per-series forecast, live and realised values, rolling
//! errors, fallback reasons, served values and the engine's size and refresh cost.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use super::metrics::{FloatGauge, Metrics, RELIST_BUCKETS};

/// Labels of the per-series forecast gauges: which rule and twin metric, and which series
/// of which target (`object` is the object name, the label set of an external series, or
/// `sum` for the summed pods of a Pods metric).
#[derive(Debug, Clone, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct ForecastLabels {
    /// `rules[i]` or `externalRules[i]`.
    pub rule: String,
    /// The twin metric's name.
    pub metric: String,
    /// The request's namespace (empty for root-scoped requests).
    pub namespace: String,
    /// The series within the target.
    pub object: String,
}

/// Labels of `augur_forecast_fallback`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForecastFallbackLabels {
    /// `rules[i]` or `externalRules[i]`.
    pub rule: String,
    /// The twin metric's name.
    pub metric: String,
    /// The request's namespace.
    pub namespace: String,
    /// The series within the target.
    pub object: String,
    /// Why the live value is served.
    pub reason: String,
}

/// Labels of `augur_forecast_served_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForecastServedLabels {
    /// `rules[i]` or `externalRules[i]`.
    pub rule: String,
    /// The twin metric's name.
    pub metric: String,
    /// `forecast` or `live`.
    pub source: String,
    /// Why live was served (empty when the forecast was).
    pub reason: String,
}

/// The per-series accuracy figures of one forecast series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ForecastFigures {
    /// The forecast for the current origin, headroom applied.
    pub forecast: Option<f64>,
    /// The newest live value in the history.
    pub live: Option<f64>,
    /// What actually happened over the horizon that ended at the origin (the value the
    /// forecast made one horizon earlier is compared with).
    pub realised: Option<f64>,
    /// Rolling mean absolute error of the model.
    pub mae: Option<f64>,
    /// Rolling mean absolute error persistence would have had.
    pub persistence_mae: Option<f64>,
    /// Rolling mean absolute percentage error of the model, in percent.
    pub mape: Option<f64>,
    /// The model's weight in what is served, `origin + weight · (forecast − origin)`.
    pub weight: Option<f64>,
}

/// The forecast engine's metrics (registered by [`Metrics::new`]).
#[derive(Debug)]
pub(super) struct ForecastMetrics {
    value: Family<ForecastLabels, FloatGauge>,
    live: Family<ForecastLabels, FloatGauge>,
    realised: Family<ForecastLabels, FloatGauge>,
    mae: Family<ForecastLabels, FloatGauge>,
    persistence_mae: Family<ForecastLabels, FloatGauge>,
    mape: Family<ForecastLabels, FloatGauge>,
    weight: Family<ForecastLabels, FloatGauge>,
    fallback: Family<ForecastFallbackLabels, Gauge>,
    served: Family<ForecastServedLabels, Counter>,
    targets: Gauge,
    series: Gauge,
    refused_targets: Counter,
    refresh_duration: Histogram,
    refresh_cpu: Counter<f64, AtomicU64>,
}

impl ForecastMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let mut gauge = |name: &str, help: &str| {
            let family = Family::<ForecastLabels, FloatGauge>::default();
            registry.register(name, help, family.clone());
            family
        };
        let value = gauge(
            "augur_forecast_value",
            "Forecast for the current origin (reduced over the horizon, headroom applied), per rule, twin metric and series",
        );
        let live = gauge(
            "augur_forecast_origin_value",
            "The forecast's origin: the newest bucket of its history (the rule's query at the bucket's end, as the history's range query gives it), which persistence would forecast; the live value a request is served comes from an instant query at request time and may differ",
        );
        let realised = gauge(
            "augur_forecast_realised_value",
            "What happened over the horizon that just ended (max or point, as the rule's reduce), compared with the forecast made one horizon earlier",
        );
        let mae = gauge(
            "augur_forecast_mae",
            "Rolling mean absolute error of the forecasts over the fallback window",
        );
        let persistence_mae = gauge(
            "augur_forecast_persistence_mae",
            "Rolling mean absolute error persistence (last value) would have had over the same window",
        );
        let mape = gauge(
            "augur_forecast_mape",
            "Rolling mean absolute percentage error of the forecasts, in percent (buckets with a realised value of 0 left out)",
        );
        let weight = gauge(
            "augur_forecast_weight",
            "The model's weight in the served forecast, origin + weight × (forecast − origin): the slope of realised on forecast changes over the recent outcomes, clamped to [0, 1]",
        );
        let fallback = Family::<ForecastFallbackLabels, Gauge>::default();
        registry.register(
            "augur_forecast_fallback",
            "1 while a forecast series serves its live value instead, with the reason",
            fallback.clone(),
        );
        let served = Family::<ForecastServedLabels, Counter>::default();
        registry.register(
            "augur_forecast_served",
            "Values served for twin metrics, by source (forecast or live) and, for live, why",
            served.clone(),
        );
        let targets = Gauge::default();
        registry.register(
            "augur_forecast_targets",
            "Forecast targets held in memory",
            targets.clone(),
        );
        let series = Gauge::default();
        registry.register(
            "augur_forecast_series",
            "Forecast series held in memory by all targets (bounded by --forecast-max-series)",
            series.clone(),
        );
        let refused_targets = Counter::default();
        registry.register(
            "augur_forecast_refused_targets",
            "Requests for a new forecast target refused because --forecast-max-targets was reached",
            refused_targets.clone(),
        );
        let refresh_duration = Histogram::new(RELIST_BUCKETS);
        registry.register_with_unit(
            "augur_forecast_refresh_duration",
            "Wall time of one forecast refresh round (range queries, fits, predictions)",
            Unit::Seconds,
            refresh_duration.clone(),
        );
        let refresh_cpu = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "augur_forecast_compute",
            "Time spent fitting and predicting in refresh rounds",
            Unit::Seconds,
            refresh_cpu.clone(),
        );
        Self {
            value,
            live,
            realised,
            mae,
            persistence_mae,
            mape,
            weight,
            fallback,
            served,
            targets,
            series,
            refused_targets,
            refresh_duration,
            refresh_cpu,
        }
    }
}

impl Metrics {
    /// Publish the figures of one forecast series (absent figures are removed).
    pub fn forecast_figures(&self, labels: &ForecastLabels, figures: &ForecastFigures) {
        let f = &self.forecast;
        for (family, value) in [
            (&f.value, figures.forecast),
            (&f.live, figures.live),
            (&f.realised, figures.realised),
            (&f.mae, figures.mae),
            (&f.persistence_mae, figures.persistence_mae),
            (&f.mape, figures.mape),
            (&f.weight, figures.weight),
        ] {
            match value.filter(|v| v.is_finite()) {
                Some(v) => {
                    family.get_or_create(labels).set(v);
                }
                None => {
                    family.remove(labels);
                }
            }
        }
    }

    /// Set (or clear, with `None`) the fallback reason of a forecast series; `previous` is
    /// the reason set before, if any.
    pub fn forecast_fallback(
        &self,
        labels: &ForecastLabels,
        previous: Option<&str>,
        reason: Option<&str>,
    ) {
        let with = |reason: &str| ForecastFallbackLabels {
            rule: labels.rule.clone(),
            metric: labels.metric.clone(),
            namespace: labels.namespace.clone(),
            object: labels.object.clone(),
            reason: reason.to_owned(),
        };
        if previous == reason {
            return;
        }
        if let Some(old) = previous {
            self.forecast.fallback.remove(&with(old));
        }
        if let Some(new) = reason {
            self.forecast.fallback.get_or_create(&with(new)).set(1);
        }
    }

    /// Forget every gauge of a forecast series (its target was evicted).
    pub fn forecast_forget(&self, labels: &ForecastLabels, reason: Option<&str>) {
        self.forecast_figures(labels, &ForecastFigures::default());
        self.forecast_fallback(labels, reason, None);
    }

    /// Count values served for a twin metric: `reason` None = from the forecast.
    pub fn forecast_served(&self, rule: &str, metric: &str, reason: Option<&str>, count: u64) {
        self.forecast
            .served
            .get_or_create(&ForecastServedLabels {
                rule: rule.to_owned(),
                metric: metric.to_owned(),
                source: if reason.is_some() { "live" } else { "forecast" }.to_owned(),
                reason: reason.unwrap_or_default().to_owned(),
            })
            .inc_by(count);
    }

    /// The number of forecast targets held.
    pub fn forecast_targets(&self, count: usize) {
        self.forecast
            .targets
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// The number of forecast series held.
    pub fn forecast_series(&self, count: usize) {
        self.forecast
            .series
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A new target was refused (max targets reached).
    pub fn forecast_target_refused(&self) {
        self.forecast.refused_targets.inc();
    }

    /// One refresh round: wall seconds and compute (fit + predict) seconds.
    pub fn forecast_refreshed(&self, wall: f64, compute: f64) {
        self.forecast.refresh_duration.observe(wall);
        self.forecast.refresh_cpu.inc_by(compute);
    }
}
