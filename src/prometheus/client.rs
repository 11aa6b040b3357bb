//! HTTP implementation of [`Backend`](super::Backend) over reqwest with rustls (ring provider).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::auth::{
    AuthConfigArgs, Authorization, Credentials, SkipVerification, TokenFile, VerifyAs,
};
use super::{
    Backend, Error, LabelSet, QueryResult, RangeSeries, Result, Sample, SeriesList,
    SeriesListBuilder,
};

/// Longest URL (path and query string included) sent with GET; longer requests go as POST.
pub const MAX_GET_URL_LEN: usize = 4096;

/// How much of a non-Prometheus error body is kept in [`Error::Status`].
const STATUS_BODY_LIMIT: usize = 512;

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
            auth: AuthConfigArgs::default(),
        }
    }
}

/// The HTTP backend.
#[derive(Debug, Clone)]
pub struct HttpBackend {
    client: reqwest::Client,
    /// Base URL without trailing slash; endpoints are appended verbatim.
    base: String,
    timeout: Duration,
    verb: Verb,
    /// A bearer-token file, sent as `Authorization` with every call.
    token: Option<Arc<TokenFile>>,
}

/// A request as it will go on the wire: method, full URL and optional form body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedRequest {
    /// True for POST with a form body.
    pub(crate) post: bool,
    /// The URL, with the query string for GET.
    pub(crate) url: String,
    /// The urlencoded form for POST.
    pub(crate) body: Option<String>,
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
        let base = options.url.trim_end_matches('/').to_owned();

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
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .default_headers(headers)
            .connect_timeout(options.timeout)
            .build()
            .map_err(|e| Error::Setup(format!("building the HTTP client: {}", innermost(&e))))?;
        Ok(HttpBackend {
            client,
            base,
            timeout: options.timeout,
            verb: options.verb,
            token: token.map(Arc::new),
        })
    }

    /// The base URL calls are joined to (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends one API call and returns the `data` field of a successful answer, decoded as `T`
    /// straight from the body (no intermediate JSON tree).
    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
    ) -> Result<Option<T>> {
        let url = join_url(&self.base, endpoint);
        let planned = plan_request(&url, params, self.verb);
        tracing::debug!(
            endpoint,
            post = planned.post,
            params = ?params,
            "prometheus call"
        );
        let request = if let Some(body) = planned.body {
            self.client
                .post(&planned.url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body)
        } else {
            self.client.get(&planned.url)
        };
        let request = match &self.token {
            Some(token) => request.header(AUTHORIZATION, token.header()),
            None => request,
        };
        let transport = |e: reqwest::Error| self.transport_error(&url, &e);
        let response = request
            .timeout(self.timeout)
            .send()
            .await
            .map_err(transport)?;
        let code = response.status().as_u16();
        let body = response.bytes().await.map_err(transport)?;
        decode_envelope(code, &body)
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
            let params = [
                ("match[]", selector.to_owned()),
                ("start", format_time(start)),
            ];
            let data: Option<SeriesCollector> = self.call("/api/v1/series", &params).await?;
            Ok(data.map(|c| c.0).unwrap_or_default())
        }
        .boxed()
    }

    fn query<'a>(&'a self, promql: &'a str, at: SystemTime) -> BoxFuture<'a, Result<QueryResult>> {
        async move {
            let params = [("query", promql.to_owned()), ("time", format_time(at))];
            let data: Option<serde_json::Value> = self.call("/api/v1/query", &params).await?;
            decode_query(data.unwrap_or(serde_json::Value::Null))
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
            let params = [
                ("query", promql.to_owned()),
                ("start", format_time(start)),
                ("end", format_time(end)),
                ("step", format_step(step)),
            ];
            let data: Option<serde_json::Value> = self.call("/api/v1/query_range", &params).await?;
            decode_query_range(data.unwrap_or(serde_json::Value::Null))
        }
        .boxed()
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

/// Decides GET or POST: GET when asked and the full URL fits in [`MAX_GET_URL_LEN`].
pub(crate) fn plan_request(url: &str, params: &[(&str, String)], verb: Verb) -> PlannedRequest {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        form.append_pair(name, value);
    }
    let encoded = form.finish();
    let get_url = format!("{url}?{encoded}");
    if verb == Verb::Get && get_url.len() <= MAX_GET_URL_LEN {
        PlannedRequest {
            post: false,
            url: get_url,
            body: None,
        }
    } else {
        PlannedRequest {
            post: true,
            url: url.to_owned(),
            body: Some(encoded),
        }
    }
}

/// Unix seconds with millisecond precision (`1700000000.123`); times before 1970 clamp to 0.
pub(crate) fn format_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}", since.as_secs(), since.subsec_millis())
}

/// A step as (fractional) seconds, at least one millisecond.
pub(crate) fn format_step(step: Duration) -> String {
    let step = step.max(Duration::from_millis(1));
    format!("{}", step.as_secs_f64())
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

/// Prometheus' response envelope, with `data` decoded as `T`.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Envelope<T> {
    status: String,
    #[serde(default = "Option::default")]
    data: Option<T>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Classifies an answer: `status: error` → [`Error::Api`] whatever the HTTP code; other
/// non-2xx → [`Error::Status`]; otherwise the `data` field (None when absent or null).
pub(crate) fn decode_envelope<T: DeserializeOwned>(code: u16, body: &[u8]) -> Result<Option<T>> {
    if !(200..300).contains(&code) {
        // Error answers carry no data worth decoding as `T`; read only the error fields.
        let envelope = serde_json::from_slice::<Envelope<IgnoredAny>>(body);
        if let Ok(envelope) = &envelope
            && envelope.status == "error"
        {
            return Err(Error::Api {
                error_type: envelope.error_type.clone().unwrap_or_default(),
                message: envelope.error.clone().unwrap_or_default(),
            });
        }
        let text = String::from_utf8_lossy(body);
        return Err(Error::Status {
            code,
            body: text.chars().take(STATUS_BODY_LIMIT).collect(),
        });
    }
    match serde_json::from_slice::<Envelope<T>>(body) {
        Ok(Envelope { status, data, .. }) if status == "success" => Ok(data),
        Ok(Envelope {
            status,
            error_type,
            error,
            ..
        }) if status == "error" => Err(Error::Api {
            error_type: error_type.unwrap_or_default(),
            message: error.unwrap_or_default(),
        }),
        Ok(Envelope { status, .. }) => Err(Error::Decode(format!("unknown status {status:?}"))),
        Err(e) => Err(Error::Decode(e.to_string())),
    }
}

/// The `data` of `/api/v1/series`, reduced to distinct shapes as the array is parsed: label
/// values are skipped, never allocated, so a million-series answer costs only its body.
#[derive(Debug, Default)]
pub(crate) struct SeriesCollector(pub(crate) SeriesList);

impl<'de> Deserialize<'de> for SeriesCollector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Series;
        impl<'de> Visitor<'de> for Series {
            type Value = SeriesCollector;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list of label sets")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut builder = SeriesListBuilder::default();
                while let Some(RawShape { name, labels }) = seq.next_element::<RawShape>()? {
                    builder.push(name.as_deref(), labels);
                }
                Ok(SeriesCollector(builder.finish()))
            }
        }
        deserializer.deserialize_seq(Series)
    }
}

/// One label set: its `__name__` value and the other label names.
struct RawShape {
    name: Option<String>,
    labels: Vec<Box<str>>,
}

impl<'de> Deserialize<'de> for RawShape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Labels;
        impl<'de> Visitor<'de> for Labels {
            type Value = RawShape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a label set")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut shape = RawShape {
                    name: None,
                    labels: Vec::new(),
                };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "__name__" {
                        shape.name = Some(map.next_value::<String>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        shape.labels.push(Box::from(key.as_ref()));
                    }
                }
                Ok(shape)
            }
        }
        deserializer.deserialize_map(Labels)
    }
}

/// A `[unix seconds, "value"]` pair.
type RawPoint = (f64, String);

#[derive(Debug, Deserialize)]
struct RawVectorItem {
    #[serde(default)]
    metric: LabelSet,
    value: Option<RawPoint>,
}

#[derive(Debug, Deserialize)]
struct RawMatrixItem {
    #[serde(default)]
    metric: LabelSet,
    #[serde(default)]
    values: Vec<RawPoint>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum RawQueryData {
    Vector(Vec<RawVectorItem>),
    Scalar(RawPoint),
    Matrix(Vec<RawMatrixItem>),
    String(RawPoint),
}

/// Parses a sample value: a float in a string, `NaN`, `+Inf`, `-Inf` included.
pub(crate) fn parse_value(s: &str) -> Result<f64> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        other => other
            .parse::<f64>()
            .map_err(|e| Error::Decode(format!("sample value {other:?}: {e}"))),
    }
}

/// Checks a sample time: Unix seconds augur can represent (1970 to 9999), not what a broken
/// backend or proxy may write (`3e11`, `1e19`), which would be served as RFC 3339.
fn sample_time(t: f64) -> Result<f64> {
    crate::units::checked_unix_f64(t)
        .map(|_| t)
        .map_err(|e| Error::Decode(format!("sample time: {e}")))
}

fn decode_points(values: Vec<RawPoint>) -> Result<Vec<(f64, f64)>> {
    values
        .into_iter()
        .map(|(t, v)| Ok((sample_time(t)?, parse_value(&v)?)))
        .collect()
}

/// Decodes the `data` of `/api/v1/query`.
pub(crate) fn decode_query(data: serde_json::Value) -> Result<QueryResult> {
    let raw: RawQueryData =
        serde_json::from_value(data).map_err(|e| Error::Decode(format!("query result: {e}")))?;
    Ok(match raw {
        RawQueryData::Vector(items) => QueryResult::Vector(
            items
                .into_iter()
                .map(|item| {
                    let (timestamp, value) = item.value.ok_or_else(|| {
                        Error::Decode(
                            "vector sample without a value (native histogram?)".to_owned(),
                        )
                    })?;
                    Ok(Sample {
                        labels: item.metric,
                        timestamp: sample_time(timestamp)?,
                        value: parse_value(&value)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        ),
        RawQueryData::Scalar((timestamp, value)) => QueryResult::Scalar(Sample {
            labels: LabelSet::new(),
            timestamp: sample_time(timestamp)?,
            value: parse_value(&value)?,
        }),
        RawQueryData::Matrix(items) => QueryResult::Matrix(decode_matrix(items)?),
        RawQueryData::String((_, s)) => QueryResult::String(s),
    })
}

fn decode_matrix(items: Vec<RawMatrixItem>) -> Result<Vec<RangeSeries>> {
    items
        .into_iter()
        .map(|item| {
            Ok(RangeSeries {
                labels: item.metric,
                points: decode_points(item.values)?,
            })
        })
        .collect()
}

/// Decodes the `data` of `/api/v1/query_range` (always a matrix).
pub(crate) fn decode_query_range(data: serde_json::Value) -> Result<Vec<RangeSeries>> {
    let raw: RawQueryData = serde_json::from_value(data)
        .map_err(|e| Error::Decode(format!("query_range result: {e}")))?;
    match raw {
        RawQueryData::Matrix(items) => decode_matrix(items),
        other => Err(Error::Decode(format!(
            "query_range returned {} instead of a matrix",
            match other {
                RawQueryData::Vector(_) => "vector",
                RawQueryData::Scalar(_) => "scalar",
                RawQueryData::Matrix(_) => "matrix",
                RawQueryData::String(_) => "string",
            }
        ))),
    }
}

/// A whole `/api/v1/query` answer (HTTP status and body) decoded as [`HttpBackend::query`]
/// decodes it (for fuzzing and tools that hold a recorded answer).
pub fn decode_query_answer(code: u16, body: &[u8]) -> Result<QueryResult> {
    decode_query(decode_envelope(code, body)?.unwrap_or(serde_json::Value::Null))
}

/// A whole `/api/v1/query_range` answer decoded as [`HttpBackend::query_range`] decodes it.
pub fn decode_query_range_answer(code: u16, body: &[u8]) -> Result<Vec<RangeSeries>> {
    decode_query_range(decode_envelope(code, body)?.unwrap_or(serde_json::Value::Null))
}

/// A whole `/api/v1/series` answer decoded as [`HttpBackend::series`] decodes it.
pub fn decode_series_answer(code: u16, body: &[u8]) -> Result<SeriesList> {
    Ok(decode_envelope::<SeriesCollector>(code, body)?
        .map(|c| c.0)
        .unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// `data` of an answer as a JSON value (null when absent), or the classified error.
    fn data_of(code: u16, body: &[u8]) -> Result<serde_json::Value> {
        decode_envelope::<serde_json::Value>(code, body)
            .map(|d| d.unwrap_or(serde_json::Value::Null))
    }

    fn query_of(json: &str) -> Result<QueryResult> {
        data_of(200, json.as_bytes()).and_then(decode_query)
    }

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
    fn get_encodes_selector_verbatim() {
        let p = plan_request(
            "http://h/api/v1/series",
            &[
                ("match[]", r#"{__name__=~"a|b",ns!=""}"#.into()),
                ("start", "1.500".into()),
            ],
            Verb::Get,
        );
        assert!(!p.post);
        assert_eq!(p.body, None);
        assert_eq!(
            p.url,
            "http://h/api/v1/series?match%5B%5D=%7B__name__%3D%7E%22a%7Cb%22%2Cns%21%3D%22%22%7D&start=1.500"
        );
        let decoded: Vec<(String, String)> =
            form_urlencoded::parse(p.url.split_once('?').unwrap().1.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(decoded[0].1, r#"{__name__=~"a|b",ns!=""}"#);
    }

    #[test]
    fn get_switches_to_post_when_url_too_long() {
        let url = "http://h/api/v1/query";
        let fits = "x".repeat(MAX_GET_URL_LEN - url.len() - "?query=".len());
        let p = plan_request(url, &[("query", fits.clone())], Verb::Get);
        assert!(!p.post);
        assert_eq!(p.url.len(), MAX_GET_URL_LEN);
        let too_long = format!("{fits}x");
        let p = plan_request(url, &[("query", too_long.clone())], Verb::Get);
        assert!(p.post);
        assert_eq!(p.url, url);
        assert_eq!(p.body.unwrap(), format!("query={too_long}"));
    }

    #[test]
    fn post_verb_always_posts() {
        let p = plan_request(
            "http://h/api/v1/query",
            &[("query", "up".into()), ("time", "1.000".into())],
            Verb::Post,
        );
        assert!(p.post);
        assert_eq!(p.url, "http://h/api/v1/query");
        assert_eq!(p.body.as_deref(), Some("query=up&time=1.000"));
    }

    #[test]
    fn times_have_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(format_time(t), "1700000000.123");
        assert_eq!(format_time(UNIX_EPOCH + Duration::from_secs(5)), "5.000");
        assert_eq!(format_time(UNIX_EPOCH - Duration::from_secs(5)), "0.000");
        assert_eq!(format_step(Duration::from_secs(15)), "15");
        assert_eq!(format_step(Duration::from_millis(1500)), "1.5");
    }

    #[test]
    fn decodes_vector() {
        let r = query_of(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"pod":"web-1"},"value":[1700000000.5,"1.25"]},
                {"metric":{"pod":"web-2"},"value":[1700000000.5,"NaN"]},
                {"metric":{"pod":"web-3"},"value":[1700000000.5,"+Inf"]},
                {"metric":{},"value":[1700000000.5,"-Inf"]}]}}"#,
        )
        .unwrap();
        let QueryResult::Vector(samples) = r else {
            panic!("{r:?}")
        };
        assert_eq!(samples.len(), 4);
        assert_eq!(samples[0].labels["pod"], "web-1");
        assert_eq!(samples[0].timestamp, 1_700_000_000.5);
        assert_eq!(samples[0].value, 1.25);
        assert!(samples[1].value.is_nan());
        assert_eq!(samples[2].value, f64::INFINITY);
        assert_eq!(samples[3].value, f64::NEG_INFINITY);
        assert!(samples[3].labels.is_empty());
    }

    #[test]
    fn decodes_scalar_string_and_matrix() {
        let r =
            query_of(r#"{"status":"success","data":{"resultType":"scalar","result":[12.5,"3"]}}"#)
                .unwrap();
        assert_eq!(
            r,
            QueryResult::Scalar(Sample {
                labels: LabelSet::new(),
                timestamp: 12.5,
                value: 3.0
            })
        );
        assert_eq!(r.type_name(), "scalar");
        let r = query_of(
            r#"{"status":"success","data":{"resultType":"string","result":[12.5,"hello"]}}"#,
        )
        .unwrap();
        assert_eq!(r, QueryResult::String("hello".into()));
        let r = query_of(
            r#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"a":"b"},"values":[[1,"1"],[2,"2.5"]]}]}}"#,
        )
        .unwrap();
        let QueryResult::Matrix(m) = r else {
            panic!("{r:?}")
        };
        assert_eq!(m[0].labels["a"], "b");
        assert_eq!(m[0].points, vec![(1.0, 1.0), (2.0, 2.5)]);
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
    fn decodes_query_range_and_rejects_non_matrix() {
        let data = data_of(
            200,
            br#"{"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"pod":"x"},"values":[[10,"1"],[25,"NaN"]]},{"metric":{},"values":[]}]}}"#,
        )
        .unwrap();
        let m = decode_query_range(data).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].points[0], (10.0, 1.0));
        assert!(m[0].points[1].1.is_nan());
        assert!(m[1].points.is_empty());
        let data = data_of(
            200,
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        )
        .unwrap();
        assert!(matches!(decode_query_range(data), Err(Error::Decode(m)) if m.contains("vector")));
    }

    #[test]
    fn decodes_series() {
        let body = br#"{"status":"success","data":[{"__name__":"up","job":"a","instance":"x"},{"job":"b","__name__":"up","instance":"y"},{"job":"c"},{"__name__":"down","job":"\u0061"},{"__name__":"gone","job":"d"}]}"#;
        let list = decode_envelope::<SeriesCollector>(200, body)
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(list.total, 5);
        let shapes: Vec<String> = list.shapes.iter().map(ToString::to_string).collect();
        assert_eq!(shapes, ["down{job}", "gone{job}", "up{instance,job}"]);
        // Equal label-name lists are shared, not copied.
        assert!(Arc::ptr_eq(&list.shapes[0].labels, &list.shapes[1].labels));
        assert!(
            decode_envelope::<SeriesCollector>(200, br#"{"status":"success","data":null}"#)
                .unwrap()
                .is_none()
        );
        let empty = decode_envelope::<SeriesCollector>(200, br#"{"status":"success","data":[]}"#)
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(empty, SeriesList::default());
        assert!(matches!(
            decode_envelope::<SeriesCollector>(200, br#"{"status":"success","data":{"a":1}}"#),
            Err(Error::Decode(_))
        ));
    }

    #[test]
    fn api_errors_whatever_the_code() {
        for code in [200, 400, 422, 503] {
            let err = data_of(
                code,
                br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected"}"#,
            )
            .unwrap_err();
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
        let err = data_of(414, body.as_bytes()).unwrap_err();
        let Error::Status { code, body } = err else {
            panic!()
        };
        assert_eq!(code, 414);
        assert_eq!(body.len(), 512);
        let err = data_of(502, br#"{"status":"success","data":[]}"#).unwrap_err();
        assert!(matches!(err, Error::Status { code: 502, .. }));
    }

    #[test]
    fn bad_json_is_decode_error() {
        for body in [&b"<html>"[..], br#"{"status":"weird","data":1}"#] {
            assert!(
                matches!(data_of(200, body), Err(Error::Decode(_))),
                "{body:?}"
            );
        }
        let no_data = data_of(200, br#"{"status":"success"}"#).unwrap();
        assert!(matches!(decode_query(no_data), Err(Error::Decode(_))));
        let bad_value = query_of(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#,
        );
        assert!(matches!(bad_value, Err(Error::Decode(_))));
        let bad_type =
            query_of(r#"{"status":"success","data":{"resultType":"histogram","result":[]}}"#);
        assert!(matches!(bad_type, Err(Error::Decode(_))));
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
