//! augur: a prometheus-adapter compatible Kubernetes metrics API server.
//!
//! Data flow: [`config`] compiles prometheus-adapter rules; [`series`] relists matching
//! series from the [`prometheus`] backend into an immutable registry snapshot; [`provider`]
//! answers custom and external metric requests by rendering [`promql`] from a rule and a
//! request; [`twin`] serves forecast twins of those metrics with the models of
//! [`forecast`]; [`api`] is the HTTP layer that only translates requests and errors,
//! behind [`auth`]; [`tls`] serves it over HTTPS; [`telemetry`] holds logging and augur's
//! own metrics; [`app`] wires `augur serve` together.
//!
//! ## Layers
//!
//! Top to bottom; a module imports only from modules in layers below its own (never from a
//! module beside it), which the `layers` unit test checks against this list:
//!
//! 1. `testing`: test support for unit tests, integration tests and benches
//! 2. `cli`: the command tree and prometheus-adapter's command line
//! 3. `app`, `check`, `certs`, `train`, `backtest`: the subcommands, each with its flags
//! 4. `reload`: config reload for `serve`
//! 5. `auth`: authentication and authorization of every API request
//! 6. `api`: the HTTP layer: routes, handlers, discovery, errors as `Status`
//! 7. `twin`, `cluster`: forecast twins; the Kubernetes API (discovery, watch caches)
//! 8. `provider`: custom, external and resource metric requests to PromQL and back
//! 9. `series`: the relist loop and the registry snapshot
//! 10. `prometheus`: the backend client, its flags and its fake
//! 11. `config`: prometheus-adapter's rules and the `forecast:` block, compiled
//! 12. `promql`, `forecast`, `resources`, `quantity`, `units`, `telemetry`, `tls`: libraries

pub mod api;
pub mod app;
pub mod auth;
pub mod backtest;
pub mod certs;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod forecast;
#[cfg(test)]
mod layers;
pub mod prometheus;
pub mod promql;
pub mod provider;
pub mod quantity;
pub mod reload;
pub mod resources;
pub mod series;
pub mod telemetry;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod tls;
pub mod train;
pub mod twin;
pub mod units;
