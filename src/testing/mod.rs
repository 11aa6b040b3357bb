//! Test support shared by unit tests, integration tests and benches (`cfg(test)` or the
//! `test-util` feature; never in a release build): one CA for test certificates, the fake
//! backend wired through registry, relister and router, an HTTPS server and clients (raw TLS and plain TCP too),
//! fixed-rate load for benchmarks, and a process' CPU time and memory.

#![allow(clippy::expect_used)]

pub mod app;
pub mod ca;
pub mod https;
pub mod load;
pub mod process;

pub use app::{PODS_RULES, PODS_SERIES, app_with_rules, pods_backend};
pub use ca::{Identity, TestCa};
pub use https::{
    TlsClient, TlsServer, client_config, https_client, pem_certificates, plain_request, serve_tls,
    serve_tls_with,
};
pub use load::{fixed_rate, percentile, saturate};
pub use process::{
    Killed, RssSampler, cpu_seconds, free_port, open_fds, run_queue_wait_seconds, status_kib,
};
