//! Logging setup and augur's own metrics (requests, relists, backend calls, forecasts), all
//! declared here: `logging` (the tracing subscriber), `metrics` (the registry and its label
//! types), `forecast` (the forecast engine's metrics). The HTTP side (request middleware,
//! `GET /metrics`) is in `api::instrument`.

mod forecast;
mod logging;
mod metrics;

pub use self::forecast::{
    ForecastFallbackLabels, ForecastFigures, ForecastLabels, ForecastServedLabels,
};
pub use self::logging::{Error, Result, init_logging};
pub use self::metrics::{
    EndpointLabels, HttpLabels, Metrics, PromEndpoint, PromErrorKind, PromErrorLabels,
    QueryIndexLabels, ReloadLabels, ReloadResult, RouteLabels,
};
