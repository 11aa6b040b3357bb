//! Logging setup and augur's own metrics (requests, relists, backend calls, forecasts), all
//! declared here: `logging` (the tracing subscriber), `metrics` (the registry and its label
//! types), `forecast` (the forecast engine's metrics), `refusals` (requests auth refused,
//! counted and logged). The HTTP side (request middleware,
//! `GET /metrics`) is in `api::instrument`.

mod forecast;
mod logging;
mod metrics;
mod refusals;

pub use self::forecast::{
    ForecastFallbackLabels, ForecastFigures, ForecastLabels, ForecastServedLabels,
};
pub use self::logging::{Error, LOG_LEVELS, Result, init_logging, parse_log_level};
pub use self::metrics::{
    EndpointLabels, HttpLabels, Metrics, PromEndpoint, PromErrorKind, PromErrorLabels,
    QueryIndexLabels, ReloadLabels, ReloadResult, RouteLabels,
};
pub use self::refusals::{Refusal, RefusalLabels, RefusalReason};
