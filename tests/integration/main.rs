//! Integration tests: one binary, one module per area, against real parts (Prometheus,
//! VictoriaMetrics, kubectl) started by [`support`].

mod api;
#[allow(dead_code)]
mod apiserver_double;
mod backend;
mod compat;
mod forecast;
#[allow(dead_code)]
mod support;
