//! Integration tests: one binary, one module per area, against real parts (Prometheus,
//! VictoriaMetrics, kubectl) started by [`support`].

mod api;
mod auth;
mod backend;
mod backtest;
mod certs;
mod cluster;
mod compat;
mod connections;
mod dropin;
mod forecast;
mod forecast_faults;
mod fuzz_replay;
mod hardening;
mod image;
mod manifests;
mod onnx;
mod support;
