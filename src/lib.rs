//! augur: a prometheus-adapter compatible Kubernetes metrics API server.
//!
//! Data flow: [`config`] compiles prometheus-adapter rules; [`series`] relists matching
//! series from the [`prometheus`] backend into an immutable registry snapshot; [`provider`]
//! answers custom and external metric requests by rendering [`promql`] from a rule and a
//! request; [`api`] is the HTTP layer that only translates requests and errors; [`tls`]
//! serves it over HTTPS; [`telemetry`] holds logging and augur's own metrics.

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
