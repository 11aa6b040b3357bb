//! HTTP implementation of [`Backend`](super::Backend) over reqwest with rustls.
//!
//! CONTRACT STUB (to be implemented).

use std::path::PathBuf;
use std::time::Duration;

/// GET or POST for query calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verb {
    /// GET, switching to POST when the URL would exceed a safe length.
    #[default]
    Get,
    /// Always POST with a form body.
    Post,
}

/// Everything needed to reach one Prometheus-compatible API.
#[derive(Debug, Clone)]
pub struct BackendOptions {
    /// Base URL, path prefix allowed (`http://thanos:9090/prefix`).
    pub url: String,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Bearer token file, read at start.
    pub token_file: Option<PathBuf>,
    /// CA bundle for the backend's serving certificate.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key files.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Extra headers (`X-Scope-OrgID`), in order.
    pub headers: Vec<(String, String)>,
    /// GET or POST.
    pub verb: Verb,
}

/// The HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpBackend;
