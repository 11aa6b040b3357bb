//! HTTP implementation of [`Backend`](super::Backend): instant and range queries through
//! `prometheus-http-query` over augur's own reqwest client (rustls with ring, timeouts,
//! bearer token and extra headers); `/api/v1/series` by hand, streamed into shapes.
//!
//! What the crate cannot do, and so stays here: choosing GET or POST by URL length (it has
//! `get_raw` and `post_raw`, we pick), millisecond evaluation times (its `at` takes whole
//! seconds: the time goes as a raw `time` parameter), errors it cannot classify
//! (VictoriaMetrics' numeric `errorType`, non-JSON bodies of proxies, which its decoder
//! turns into "failed to parse JSON"), and streaming: it buffers every answer whole and its
//! series call decodes every label value, so `/api/v1/series` and every answer body are
//! decoded here by [`super::decode`], one result element at a time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use prometheus_client::metrics::gauge::Gauge;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::Semaphore;

use super::auth::{
    AuthConfigArgs, Authorization, Credentials, SkipVerification, TokenFile, VerifyAs,
};
use super::decode::{QuerySink, Scanner, SeriesSink, Sink};
use super::{Backend, Error, QueryResult, RangeSeries, Result, SeriesList};

/// Longest URL (path and query string included) sent with GET; longer requests go as POST.
pub const MAX_GET_URL_LEN: usize = 4096;

/// How much of a non-Prometheus error body is kept in [`Error::Status`].
const STATUS_BODY_LIMIT: usize = 512;

/// The most of an error answer (non-2xx) read to classify it.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Default of `--prometheus-max-connections`: Prometheus' own default
/// `--query.max-concurrency` (20); more calls at once would only queue inside Prometheus.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20;

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
    /// Bearer token file, read at start and again every minute.
    pub token_file: Option<PathBuf>,
    /// CA bundle for the backend's serving certificate.
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key files.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Extra headers (`X-Scope-OrgID`), in order.
    pub headers: Vec<(String, String)>,
    /// GET or POST.
    pub verb: Verb,
    /// Most calls (and so HTTP/1.1 connections) at once; more wait for one, within `timeout`.
    pub max_connections: usize,
    /// `--prometheus-auth-config` / `--prometheus-auth-incluster`.
    pub auth: AuthConfigArgs,
}

impl BackendOptions {
    /// Options for `url` with a timeout and everything else at its default (GET, no auth).
    pub fn new(url: impl Into<String>, timeout: Duration) -> Self {
        BackendOptions {
            url: url.into(),
            timeout,
            token_file: None,
            ca_file: None,
            client_cert: None,
            headers: Vec::new(),
            verb: Verb::Get,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            auth: AuthConfigArgs::default(),
        }
    }
}

/// The HTTP backend.
#[derive(Clone)]
pub struct HttpBackend {
    /// The query client over the same reqwest client used for `/api/v1/series`.
    client: prometheus_http_query::Client,
    /// Base URL without trailing slash; endpoints are appended verbatim.
    base: String,
    timeout: Duration,
    verb: Verb,
    /// One permit per call in flight: the bound on connections.
    slots: Arc<Semaphore>,
    /// Calls in flight and waiting for a slot.
    in_flight: Gauge,
    queued: Gauge,
    /// A bearer-token file, sent as `Authorization` with every call.
    token: Option<Arc<TokenFile>>,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .field("verb", &self.verb)
            .finish_non_exhaustive()
    }
}

impl HttpBackend {
    /// Builds the client: TLS roots, client certificate, bearer token and extra headers are read
    /// once here.
    pub fn new(options: &BackendOptions) -> Result<Self> {
        let parsed = reqwest::Url::parse(&options.url)
            .map_err(|e| Error::Setup(format!("--prometheus-url {:?}: {e}", options.url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::Setup(format!(
                "--prometheus-url {:?}: scheme must be http or https",
                options.url
            )));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Error::Setup(format!(
                "--prometheus-url {:?}: must not have a query string or fragment",
                options.url
            )));
        }
        // The normalised form, so that URL lengths computed here are those sent.
        let base = parsed.as_str().trim_end_matches('/').to_owned();

        if options.max_connections == 0 {
            return Err(Error::Setup(
                "--prometheus-max-connections must be at least 1".to_owned(),
            ));
        }
        let credentials = if options.ca_file.is_some() {
            if options.auth != AuthConfigArgs::default() {
                tracing::warn!(
                    "--prometheus-auth-config / --prometheus-auth-incluster are ignored because --prometheus-ca-file is given (as in prometheus-adapter)"
                );
            }
            None
        } else {
            options.auth.credentials()?
        };
        let tls = tls_config(options, credentials.as_ref())?;
        let (headers, token) = default_headers(options, credentials.as_ref())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .connect_timeout(options.timeout)
            .pool_max_idle_per_host(options.max_connections)
            .build()
            .map_err(|e| Error::Setup(format!("building the HTTP client: {}", innermost(&e))))?;
        let client = prometheus_http_query::Client::from(http, &base).map_err(|e| {
            Error::Setup(format!(
                "--prometheus-url {:?}: {}",
                options.url,
                innermost(&e)
            ))
        })?;
        Ok(HttpBackend {
            client,
            base,
            timeout: options.timeout,
            verb: options.verb,
            slots: Arc::new(Semaphore::new(options.max_connections)),
            in_flight: Gauge::default(),
            queued: Gauge::default(),
            token: token.map(Arc::new),
        })
    }

    /// Reports calls in flight and calls waiting for a slot on these gauges.
    pub fn with_load_gauges(mut self, in_flight: Gauge, queued: Gauge) -> Self {
        self.in_flight = in_flight;
        self.queued = queued;
        self
    }

    /// The base URL calls are joined to (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Runs one call within the timeout: `send` gives the response, which is then classified
    /// and, when successful, streamed through `scanner`.
    async fn call<S: Sink, E: std::error::Error + 'static>(
        &self,
        endpoint: &str,
        post: bool,
        send: impl Future<Output = std::result::Result<reqwest::Response, E>>,
        scanner: Scanner<S>,
    ) -> Result<S> {
        let url = join_url(&self.base, endpoint);
        tracing::debug!(endpoint, post, "prometheus call");
        let transport = |e: reqwest::Error| self.transport_error(&url, &e);
        let work = async {
            // Wait for a slot (queued, not failed, within the timeout), then hold it until
            // the answer is read.
            let _slot =
                match self.slots.clone().try_acquire_owned() {
                    Ok(slot) => slot,
                    Err(_) => {
                        self.queued.inc();
                        let _waiting = DecOnDrop(&self.queued);
                        self.slots.clone().acquire_owned().await.map_err(|_| {
                            Error::Setup("the connection limit is closed".to_owned())
                        })?
                    }
                };
            self.in_flight.inc();
            let _flying = DecOnDrop(&self.in_flight);
            let mut response = send.await.map_err(|e| self.send_error(&url, &e))?;
            let code = response.status().as_u16();
            if !(200..300).contains(&code) {
                let mut body = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(transport)? {
                    body.extend_from_slice(&chunk);
                    if body.len() >= ERROR_BODY_LIMIT {
                        break;
                    }
                }
                return Err(classify_error(code, &body));
            }
            let mut scanner = scanner;
            while let Some(chunk) = response.chunk().await.map_err(transport)? {
                scanner.feed(&chunk)?;
            }
            // Let the connection go back to the idle pool before the slot is given to the
            // next call, so that call reuses it instead of opening another.
            drop(response);
            tokio::task::yield_now().await;
            scanner.finish()
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                url,
                after: self.timeout,
            }),
        }
    }

    /// True when a call with these parameters goes as POST.
    fn posts(&self, endpoint: &str, params: &[(&str, &str)]) -> bool {
        sends_post(&join_url(&self.base, endpoint), params, self.verb)
    }

    /// A failure to send: the reqwest error in the chain classified, or the innermost cause.
    fn send_error(&self, url: &str, e: &(dyn std::error::Error + 'static)) -> Error {
        let mut current = Some(e);
        while let Some(err) = current {
            if let Some(reqwest) = err.downcast_ref::<reqwest::Error>() {
                return self.transport_error(url, reqwest);
            }
            current = err.source();
        }
        Error::Unreachable {
            url: url.to_owned(),
            cause: innermost(e),
        }
    }

    fn transport_error(&self, url: &str, e: &reqwest::Error) -> Error {
        if e.is_timeout() || has_timeout_source(e) {
            Error::Timeout {
                url: url.to_owned(),
                after: self.timeout,
            }
        } else {
            Error::Unreachable {
                url: url.to_owned(),
                cause: transport_cause(e),
            }
        }
    }
}

impl Backend for HttpBackend {
    fn series<'a>(
        &'a self,
        selector: &'a str,
        start: SystemTime,
    ) -> BoxFuture<'a, Result<SeriesList>> {
        async move {
            // prometheus-http-query's series call takes structured selectors (not a rule's
            // seriesQuery text), only GETs, and decodes every label value into a map: by hand.
            let endpoint = "/api/v1/series";
            let start = format_time(start);
            let params = [("match[]", selector), ("start", start.as_str())];
            let post = self.posts(endpoint, &params);
            let url = join_url(&self.base, endpoint);
            let http = self.client.inner();
            let request = if post {
                http.post(&url).form(&params)
            } else {
                http.get(&url).query(&params)
            };
            let request = match &self.token {
                Some(token) => request.header(AUTHORIZATION, token.header()),
                None => request,
            };
            self.call(endpoint, post, request.send(), SeriesSink::scanner())
                .await?
                .finish()
        }
        .boxed()
    }

    fn query<'a>(&'a self, promql: &'a str, at: SystemTime) -> BoxFuture<'a, Result<QueryResult>> {
        async move {
            let endpoint = "/api/v1/query";
            let time = format_time(at);
            let post = self.posts(endpoint, &[("query", promql), ("time", &time)]);
            // `at()` takes whole seconds: the millisecond time goes as a raw parameter.
            let mut builder = self.client.query(promql).query("time", time);
            if let Some(token) = &self.token {
                builder = builder.header(AUTHORIZATION, token.header());
            }
            let send = async move {
                if post {
                    builder.post_raw().await
                } else {
                    builder.get_raw().await
                }
            };
            self.call(endpoint, post, send, QuerySink::scanner())
                .await?
                .finish()
        }
        .boxed()
    }

    fn query_range<'a>(
        &'a self,
        promql: &'a str,
        start: SystemTime,
        end: SystemTime,
        step: Duration,
    ) -> BoxFuture<'a, Result<Vec<RangeSeries>>> {
        async move {
            let endpoint = "/api/v1/query_range";
            let (start, end) = (unix_seconds(start), unix_seconds(end));
            let step = step.max(Duration::from_millis(1)).as_secs_f64();
            let (start_text, end_text, step_text) =
                (start.to_string(), end.to_string(), step.to_string());
            let params = [
                ("query", promql),
                ("start", start_text.as_str()),
                ("end", end_text.as_str()),
                ("step", step_text.as_str()),
            ];
            let post = self.posts(endpoint, &params);
            let mut builder = self.client.query_range(promql, start, end, step);
            if let Some(token) = &self.token {
                builder = builder.header(AUTHORIZATION, token.header());
            }
            let send = async move {
                if post {
                    builder.post_raw().await
                } else {
                    builder.get_raw().await
                }
            };
            matrix(
                self.call(endpoint, post, send, QuerySink::scanner())
                    .await?
                    .finish()?,
            )
        }
        .boxed()
    }
}

/// The series of a range query's answer, which must be a matrix.
fn matrix(result: QueryResult) -> Result<Vec<RangeSeries>> {
    match result {
        QueryResult::Matrix(series) => Ok(series),
        other => Err(Error::Decode(format!(
            "query_range returned {} instead of a matrix",
            other.type_name()
        ))),
    }
}

/// Decrements a gauge when dropped (a call leaving the queue or finishing, however it ends).
struct DecOnDrop<'a>(&'a Gauge);

impl Drop for DecOnDrop<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Builds the rustls client configuration with the ring provider (nothing installed globally):
/// trust from `--prometheus-ca-file`, else the kubeconfig's CA, else the system roots; the
/// client certificate from the flags, else the kubeconfig's.
fn tls_config(
    options: &BackendOptions,
    credentials: Option<&Credentials>,
) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Setup(format!("TLS protocol versions: {e}")))?;
    let roots = match (
        &options.ca_file,
        credentials.and_then(|c| c.ca_pem.as_ref()),
    ) {
        (Some(ca_file), _) => Some((
            read_certs(ca_file)?,
            format!("CA file {}", ca_file.display()),
        )),
        (None, Some(pem)) => {
            let source = credentials.map_or_else(String::new, |c| c.source.clone());
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Setup(format!("{source}: certificate authority: {e}")))?;
            if certs.is_empty() {
                return Err(Error::Setup(format!(
                    "{source}: certificate authority: no PEM certificate found"
                )));
            }
            Some((certs, source))
        }
        (None, None) => None,
    };
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match roots {
        Some((certs, source)) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in certs {
                store
                    .add(cert)
                    .map_err(|e| Error::Setup(format!("{source}: {e}")))?;
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::Setup(format!("{source}: {e}")))?
        }
        None if credentials.is_some_and(|c| c.insecure_skip_tls_verify) => {
            SkipVerification::new(&provider)
        }
        None => {
            // The system trust store, as any other client on the host would use.
            Arc::new(
                rustls_platform_verifier::Verifier::new(provider)
                    .map_err(|e| Error::Setup(format!("system trust store: {e}")))?,
            )
        }
    };
    let verifier = match credentials.and_then(|c| c.tls_server_name.as_deref()) {
        Some(name) => VerifyAs::new(verifier, name)?,
        None => verifier,
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let identity = match (
        &options.client_cert,
        credentials.and_then(|c| c.client_identity.as_ref()),
    ) {
        (Some((cert_file, key_file)), _) => {
            let certs = read_certs(cert_file)?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                Error::Setup(format!("client key file {}: {e}", key_file.display()))
            })?;
            Some((
                certs,
                key,
                format!("client certificate {}", cert_file.display()),
            ))
        }
        (None, Some((cert_pem, key_pem))) => {
            let source = credentials.map_or_else(String::new, |c| c.source.clone());
            let certs = CertificateDer::pem_slice_iter(cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Error::Setup(format!("{source}: client certificate: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(key_pem)
                .map_err(|e| Error::Setup(format!("{source}: client key: {e}")))?;
            Some((certs, key, format!("{source}: client certificate")))
        }
        (None, None) => None,
    };
    let mut config = match identity {
        Some((certs, key, source)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| Error::Setup(format!("{source}: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// All certificates of a PEM file; an empty file is an error.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::Setup(format!("certificate file {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Setup(format!(
            "certificate file {}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

/// Extra headers and static credentials, sent with every call, and the bearer-token file
/// (`--prometheus-token-file`, else the kubeconfig's) whose header is added per call.
fn default_headers(
    options: &BackendOptions,
    credentials: Option<&Credentials>,
) -> Result<(HeaderMap, Option<TokenFile>)> {
    let mut headers = HeaderMap::new();
    let mut token = None;
    let authorization = match &options.token_file {
        Some(file) => Some(Authorization::BearerFile(file.clone())),
        None => credentials.and_then(|c| c.authorization.clone()),
    };
    match authorization {
        Some(Authorization::BearerFile(file)) => token = Some(TokenFile::open(file)?),
        Some(Authorization::Bearer(value)) => {
            let mut value = HeaderValue::from_str(&format!("Bearer {value}"))
                .map_err(|e| Error::Setup(format!("bearer token: {e}")))?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Some(Authorization::Basic { username, password }) => {
            headers.insert(
                AUTHORIZATION,
                super::auth::basic_header(&username, &password)?,
            );
        }
        None => {}
    }
    for (name, value) in &options.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Error::Setup(format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| Error::Setup(format!("value of header {name}: {e}")))?;
        headers.append(name, value);
    }
    Ok((headers, token))
}

/// `base` (no trailing slash) + `endpoint` (leading slash): keeps any path prefix of `base`.
pub(crate) fn join_url(base: &str, endpoint: &str) -> String {
    format!("{}{}", base.trim_end_matches('/'), endpoint)
}

/// POST when asked, or when the GET URL (`url?form`) would be longer than
/// [`MAX_GET_URL_LEN`]. The form is encoded as reqwest encodes it.
pub(crate) fn sends_post(url: &str, params: &[(&str, &str)], verb: Verb) -> bool {
    if verb == Verb::Post {
        return true;
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    url.len() + 1 + form.finish().len() > MAX_GET_URL_LEN
}

/// Unix seconds with millisecond precision (`1700000000.123`); times before 1970 clamp to 0.
pub(crate) fn format_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}

/// Whole Unix seconds (range queries are asked on whole seconds); before 1970 clamps to 0.
fn unix_seconds(t: SystemTime) -> i64 {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// The innermost cause of an error chain (reqwest's own message says only "error sending
/// request").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    let inner = current.to_string();
    let outer = e.to_string();
    if inner == outer {
        outer
    } else {
        format!("{outer}: {inner}")
    }
}

/// The innermost cause of a reqwest error, without the request URL (whose query string holds
/// the PromQL text): `Connection refused (os error 111)`, `invalid peer certificate: ...`.
fn transport_cause(e: &reqwest::Error) -> String {
    let mut current: &(dyn std::error::Error + 'static) = e;
    let mut innermost_source = None;
    while let Some(next) = current.source() {
        innermost_source = Some(next);
        current = next;
    }
    match innermost_source {
        Some(source) => source.to_string(),
        None => {
            let text = e.to_string();
            match e.url() {
                Some(u) => {
                    let mut without_query = u.clone();
                    without_query.set_query(None);
                    text.replace(u.as_str(), without_query.as_str())
                }
                None => text,
            }
        }
    }
}

/// True when an error in the chain is an I/O timeout.
fn has_timeout_source(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// The error fields of an answer.
#[derive(Debug, serde::Deserialize)]
struct ErrorAnswer {
    status: String,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Classifies a non-2xx answer: `status: error` → [`Error::Api`] (whatever the code, and
/// whatever the `errorType`: VictoriaMetrics sends `"422"`); otherwise [`Error::Status`]
/// with the start of the body.
pub(crate) fn classify_error(code: u16, body: &[u8]) -> Error {
    if let Ok(answer) = serde_json::from_slice::<ErrorAnswer>(body)
        && answer.status == "error"
    {
        return Error::Api {
            error_type: answer.error_type.unwrap_or_default(),
            message: answer.error.unwrap_or_default(),
        };
    }
    let text = String::from_utf8_lossy(body);
    Error::Status {
        code,
        body: text.chars().take(STATUS_BODY_LIMIT).collect(),
    }
}

/// A whole answer (HTTP status and body) run through `scanner` as a call's body would be.
fn decode_answer<S: Sink>(code: u16, body: &[u8], mut scanner: Scanner<S>) -> Result<S> {
    if !(200..300).contains(&code) {
        return Err(classify_error(
            code,
            &body[..body.len().min(ERROR_BODY_LIMIT)],
        ));
    }
    scanner.feed(body)?;
    scanner.finish()
}

/// A whole `/api/v1/query` answer (HTTP status and body) decoded as [`HttpBackend`]'s
/// `query` decodes it (for fuzzing and tools that hold a recorded answer).
pub fn decode_query_answer(code: u16, body: &[u8]) -> Result<QueryResult> {
    decode_answer(code, body, QuerySink::scanner())?.finish()
}

/// A whole `/api/v1/query_range` answer decoded as [`HttpBackend`]'s `query_range` decodes it.
pub fn decode_query_range_answer(code: u16, body: &[u8]) -> Result<Vec<RangeSeries>> {
    matrix(decode_answer(code, body, QuerySink::scanner())?.finish()?)
}

/// A whole `/api/v1/series` answer decoded as [`HttpBackend`]'s `series` decodes it.
pub fn decode_series_answer(code: u16, body: &[u8]) -> Result<SeriesList> {
    decode_answer(code, body, SeriesSink::scanner())?.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn join_keeps_path_prefix() {
        assert_eq!(
            join_url("http://h:9090/prom", "/api/v1/query"),
            "http://h:9090/prom/api/v1/query"
        );
        assert_eq!(
            join_url("http://h:9090/prom/", "/api/v1/query"),
            "http://h:9090/prom/api/v1/query"
        );
        assert_eq!(
            join_url("http://h:9090", "/api/v1/series"),
            "http://h:9090/api/v1/series"
        );
    }

    #[test]
    fn new_strips_trailing_slash_and_rejects_bad_urls() {
        let b = HttpBackend::new(&BackendOptions::new(
            "http://h:9090/prom/",
            Duration::from_secs(1),
        ))
        .unwrap();
        assert_eq!(b.base_url(), "http://h:9090/prom");
        // Normalised as sent: lower-case scheme and host, default port dropped.
        let b =
            HttpBackend::new(&BackendOptions::new("HTTP://H:80", Duration::from_secs(1))).unwrap();
        assert_eq!(b.base_url(), "http://h");
        for bad in ["not a url", "ftp://h/", "http://h/?x=1"] {
            let err =
                HttpBackend::new(&BackendOptions::new(bad, Duration::from_secs(1))).unwrap_err();
            assert!(matches!(err, Error::Setup(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn setup_errors_name_the_file() {
        let mut opts = BackendOptions::new("https://h", Duration::from_secs(1));
        opts.ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = HttpBackend::new(&opts).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
        let mut opts = BackendOptions::new("https://h", Duration::from_secs(1));
        opts.headers = vec![("bad header".into(), "x".into())];
        assert!(matches!(HttpBackend::new(&opts), Err(Error::Setup(_))));
    }

    #[test]
    fn get_switches_to_post_when_url_too_long() {
        let url = "http://h/api/v1/query";
        // `{`, `"` and `|` take three bytes each once encoded.
        assert!(!sends_post(url, &[("query", "up")], Verb::Get));
        let fits = "x".repeat(MAX_GET_URL_LEN - url.len() - "?query=".len());
        assert!(!sends_post(url, &[("query", &fits)], Verb::Get));
        assert!(sends_post(
            url,
            &[("query", &format!("{fits}x"))],
            Verb::Get
        ));
        let encoded = "|".repeat((MAX_GET_URL_LEN - url.len() - "?query=".len()) / 3);
        assert!(!sends_post(url, &[("query", &encoded)], Verb::Get));
        assert!(sends_post(
            url,
            &[("query", &format!("{encoded}|"))],
            Verb::Get
        ));
        assert!(sends_post(url, &[("query", "up")], Verb::Post));
    }

    #[test]
    fn times_have_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(format_time(t), "1700000000.123");
        assert_eq!(format_time(UNIX_EPOCH + Duration::from_secs(5)), "5.000");
        assert_eq!(format_time(UNIX_EPOCH - Duration::from_secs(5)), "0.000");
        assert_eq!(unix_seconds(t), 1_700_000_000);
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }

    #[test]
    fn sample_times_beyond_year_9999_are_decode_errors() {
        let bad = [
            r#"{"status":"success","data":{"resultType":"scalar","result":[3e11,"1"]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1e19,"1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[-1,"1"]}]}}"#,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[1e300,"2"]]}]}}"#,
        ];
        for body in bad {
            let err = decode_query_answer(200, body.as_bytes()).unwrap_err();
            assert!(
                matches!(&err, Error::Decode(m) if m.starts_with("sample time: Unix time ") && m.contains("is out of range")),
                "{body}: {err}"
            );
        }
        assert_eq!(
            decode_query_answer(200, bad[0].as_bytes())
                .unwrap_err()
                .to_string(),
            "cannot decode prometheus response: sample time: Unix time 300000000000 is out of range (expected seconds from 0, 1970-01-01T00:00:00Z, to 253402300799, 9999-12-31T23:59:59Z)"
        );
        let range = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1e19,"1"]]}]}}"#;
        assert!(decode_query_range_answer(200, range.as_bytes()).is_err());
        // The last representable second still decodes.
        let last =
            r#"{"status":"success","data":{"resultType":"scalar","result":[253402300799,"1"]}}"#;
        assert!(decode_query_answer(200, last.as_bytes()).is_ok());
    }

    #[test]
    fn whole_answers_decode_as_calls_do() {
        let series = decode_series_answer(
            200,
            br#"{"status":"success","data":[{"__name__":"up","job":"a"},{"__name__":"up","job":"b"}]}"#,
        )
        .unwrap();
        assert_eq!(series.total, 2);
        assert_eq!(series.shapes.len(), 1);
        let err = decode_series_answer(
            422,
            br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Api { .. }), "{err}");
        let err = decode_query_range_answer(
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot decode prometheus response: query_range returned vector instead of a matrix"
        );
    }

    #[test]
    fn api_errors_whatever_the_code() {
        for code in [400, 422, 503] {
            let err = classify_error(
                code,
                br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#,
            );
            match err {
                Error::Api {
                    error_type,
                    message,
                } => {
                    assert_eq!(error_type, "bad_data");
                    assert_eq!(message, "1:5: parse error: unexpected");
                }
                other => panic!("{code}: {other:?}"),
            }
        }
    }

    #[test]
    fn other_statuses_keep_body_start() {
        let body = "y".repeat(2000);
        let Error::Status { code, body } = classify_error(414, body.as_bytes()) else {
            panic!()
        };
        assert_eq!(code, 414);
        assert_eq!(body.len(), 512);
        let err = classify_error(502, br#"{"status":"success","data":[]}"#);
        assert!(matches!(err, Error::Status { code: 502, .. }));
    }

    #[test]
    fn innermost_cause_is_reported() {
        let inner = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let msg = innermost(&Outer(inner));
        assert_eq!(
            msg,
            "error sending request: Connection refused (os error 111)"
        );
        let timeout = Outer(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
        assert!(has_timeout_source(&timeout));
    }
}
