//! A [`Backend`] decorator that records every call's latency and failures in augur's own
//! metrics, so any backend (HTTP or fake) is observed the same way.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::telemetry::{Metrics, PromEndpoint, PromErrorKind};

use super::{Backend, Error, QueryResult, RangeSeries, Result, SeriesList};

/// Wraps a backend and records calls in [`Metrics`].
pub struct Instrumented {
    inner: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
}

impl Instrumented {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn record<'a, T: Send + 'a>(
        &'a self,
        endpoint: PromEndpoint,
        call: BoxFuture<'a, Result<T>>,
    ) -> BoxFuture<'a, Result<T>> {
        async move {
            let started = Instant::now();
            let result = call.await;
            self.metrics
                .observe_prometheus(endpoint, started.elapsed().as_secs_f64());
            if let Err(error) = &result {
                let kind = match error {
                    Error::Unreachable { .. } | Error::Setup(_) => PromErrorKind::Unreachable,
                    Error::Timeout { .. } => PromErrorKind::Timeout,
                    Error::Api { .. } => PromErrorKind::Api,
                    Error::Status { .. } => PromErrorKind::Status,
                    Error::Decode(_) => PromErrorKind::Decode,
                };
                self.metrics.prometheus_failed(endpoint, kind);
            }
            result
        }
        .boxed()
    }
}

impl Backend for Instrumented {
    fn series<'a>(
        &'a self,
        selector: &'a str,
        start: SystemTime,
    ) -> BoxFuture<'a, Result<SeriesList>> {
        self.record(PromEndpoint::Series, self.inner.series(selector, start))
    }

    fn query<'a>(&'a self, promql: &'a str, at: SystemTime) -> BoxFuture<'a, Result<QueryResult>> {
        self.record(PromEndpoint::Query, self.inner.query(promql, at))
    }

    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> BoxFuture<'a, Result<Vec<RangeSeries>>> {
        self.record(
            PromEndpoint::QueryRange,
            self.inner.query_range(promql, start, end, step),
        )
    }
}
