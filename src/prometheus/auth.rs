//! Credentials and trust for the backend from a kubeconfig (`--prometheus-auth-config`) or
//! the pod's service account (`--prometheus-auth-incluster`), read as prometheus-adapter reads
//! them, and the bearer-token file those name, re-read every minute as client-go does.
//!
//! From the kubeconfig's current context augur takes the cluster's CA
//! (`certificate-authority[-data]`), `insecure-skip-tls-verify` and `tls-server-name`, and the
//! user's `token` / `tokenFile`, `username` + `password`, or `client-certificate[-data]` +
//! `client-key[-data]`. The cluster's `server` is not used: `--prometheus-url` says where
//! Prometheus is. Exec and auth-provider plugins are refused with a reason. As in
//! prometheus-adapter, `--prometheus-ca-file` replaces all of this, and
//! `--prometheus-token-file` replaces the kubeconfig's token.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::{ArgAction, Args};
use reqwest::header::HeaderValue;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use secrecy::ExposeSecret as _;

use super::Error;

/// Where a pod's service-account token and CA are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How often a bearer-token file is read again (client-go's cached token source: 1 minute).
const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);

/// prometheus-adapter's flags for reaching Prometheus with Kubernetes credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct AuthConfigArgs {
    /// kubeconfig file with the CA and credentials for Prometheus (its current context's
    /// cluster and user; --prometheus-url still says where Prometheus is). Ignored when
    /// --prometheus-ca-file is given, as in prometheus-adapter.
    #[arg(long)]
    pub prometheus_auth_config: Option<PathBuf>,
    /// Reach Prometheus with the pod's service-account token and CA.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub prometheus_auth_incluster: bool,
}

/// How requests to the backend authenticate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// A bearer token read from this file (and re-read every minute).
    BearerFile(PathBuf),
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

/// TLS trust, client identity and authorization for the backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Where these came from, for messages (`kubeconfig /etc/…/prometheus-config.yaml`).
    pub source: String,
    /// PEM CA bundle the backend's certificate must chain to (else the system roots).
    pub ca_pem: Option<Vec<u8>>,
    /// Do not verify the backend's certificate at all.
    pub insecure_skip_tls_verify: bool,
    /// Name the backend's certificate is checked against instead of the URL's host.
    pub tls_server_name: Option<String>,
    /// PEM client certificate chain and key.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    /// How requests authenticate.
    pub authorization: Option<Authorization>,
}

impl AuthConfigArgs {
    /// The credentials these flags name (`None` without either flag), read from disk now.
    pub fn credentials(&self) -> Result<Option<Credentials>, Error> {
        match (&self.prometheus_auth_config, self.prometheus_auth_incluster) {
            (Some(_), true) => Err(Error::Setup(
                "--prometheus-auth-incluster and --prometheus-auth-config: may not use both in-cluster auth and an explicit kubeconfig at the same time".into(),
            )),
            (Some(path), false) => from_kubeconfig(path).map(Some),
            (None, true) => in_cluster(Path::new(SERVICE_ACCOUNT_DIR)).map(Some),
            (None, false) => Ok(None),
        }
    }
}

/// The pod's service account in `dir`: `ca.crt` and the `token` file.
pub fn in_cluster(dir: &Path) -> Result<Credentials, Error> {
    let setup = |what: &str, path: &Path, e: std::io::Error| {
        Error::Setup(format!(
            "--prometheus-auth-incluster: reading the service account {what} {}: {e} (is augur running in a pod with a service account token mounted?)",
            path.display()
        ))
    };
    let ca = dir.join("ca.crt");
    let token = dir.join("token");
    let ca_pem = std::fs::read(&ca).map_err(|e| setup("CA", &ca, e))?;
    std::fs::metadata(&token).map_err(|e| setup("token", &token, e))?;
    Ok(Credentials {
        source: format!("--prometheus-auth-incluster ({})", dir.display()),
        ca_pem: Some(ca_pem),
        authorization: Some(Authorization::BearerFile(token)),
        ..Credentials::default()
    })
}

/// The CA and credentials of the current context of the kubeconfig at `path`.
pub fn from_kubeconfig(path: &Path) -> Result<Credentials, Error> {
    let source = format!("--prometheus-auth-config {}", path.display());
    let fail = |why: String| Error::Setup(format!("{source}: {why}"));
    let config = kube::config::Kubeconfig::read_from(path).map_err(|e| fail(e.to_string()))?;
    let context_name = config
        .current_context
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| fail("no current-context".into()))?;
    let context =
        named(&config.contexts, &context_name, |c| (&c.name, &c.context)).ok_or_else(|| {
            fail(format!(
                "current-context {context_name:?} is not in contexts"
            ))
        })?;
    let cluster = named(&config.clusters, &context.cluster, |c| {
        (&c.name, &c.cluster)
    })
    .ok_or_else(|| {
        fail(format!(
            "context {context_name:?} names cluster {:?}, which is not in clusters",
            context.cluster
        ))
    })?;
    let mut credentials = Credentials {
        source: format!("{source} (context {context_name:?})"),
        insecure_skip_tls_verify: cluster.insecure_skip_tls_verify.unwrap_or(false),
        tls_server_name: cluster.tls_server_name.clone(),
        ..Credentials::default()
    };
    credentials.ca_pem = data_or_file(
        cluster.certificate_authority_data.as_deref(),
        cluster.certificate_authority.as_deref(),
    )
    .map_err(|e| {
        fail(format!(
            "cluster {:?} certificate-authority: {e}",
            context.cluster
        ))
    })?;
    if credentials.ca_pem.is_some() && credentials.insecure_skip_tls_verify {
        return Err(fail(format!(
            "cluster {:?}: specifying a root certificates file with the insecure flag is not allowed",
            context.cluster
        )));
    }
    let Some(user_name) = context.user.filter(|u| !u.is_empty()) else {
        return Ok(credentials);
    };
    let user =
        named(&config.auth_infos, &user_name, |u| (&u.name, &u.auth_info)).ok_or_else(|| {
            fail(format!(
                "context {context_name:?} names user {user_name:?}, which is not in users"
            ))
        })?;
    let user_fail = |why: &str| fail(format!("user {user_name:?}: {why}"));
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err(user_fail(
            "exec and auth-provider plugins are not supported; use token, tokenFile, username and password, or a client certificate",
        ));
    }
    if user.impersonate.is_some() || user.impersonate_groups.is_some() {
        return Err(user_fail("impersonation (as, as-groups) is not supported"));
    }
    let cert = data_or_file(
        user.client_certificate_data.as_deref(),
        user.client_certificate.as_deref(),
    )
    .map_err(|e| user_fail(&format!("client-certificate: {e}")))?;
    let key = data_or_file(
        user.client_key_data.as_ref().map(|k| k.expose_secret()),
        user.client_key.as_deref(),
    )
    .map_err(|e| user_fail(&format!("client-key: {e}")))?;
    credentials.client_identity = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(user_fail(
                "client-certificate and client-key must be given together",
            ));
        }
    };
    let token = user
        .token
        .as_ref()
        .map(|t| t.expose_secret().trim().to_owned());
    let basic = user.username.is_some() || user.password.is_some();
    if basic && (token.is_some() || user.token_file.is_some()) {
        return Err(user_fail(
            "username/password or bearer token may be set, but not both",
        ));
    }
    credentials.authorization = if let Some(file) = &user.token_file {
        // As client-go: the file wins over an inline token.
        let file = PathBuf::from(file);
        std::fs::metadata(&file)
            .map_err(|e| user_fail(&format!("tokenFile {}: {e}", file.display())))?;
        Some(Authorization::BearerFile(file))
    } else if let Some(token) = token {
        Some(Authorization::Bearer(token))
    } else if basic {
        Some(Authorization::Basic {
            username: user.username.clone().unwrap_or_default(),
            password: user
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default(),
        })
    } else {
        None
    };
    Ok(credentials)
}

/// The entry called `name` of a kubeconfig list (contexts, clusters, users), if it has a body.
fn named<N, T: Clone>(
    list: &[N],
    name: &str,
    parts: impl Fn(&N) -> (&String, &Option<T>),
) -> Option<T> {
    list.iter()
        .map(&parts)
        .find(|(n, _)| n.as_str() == name)
        .and_then(|(_, body)| body.clone())
}

/// Inline base64 data, else the file's bytes, else nothing.
fn data_or_file(data: Option<&str>, file: Option<&str>) -> Result<Option<Vec<u8>>, String> {
    if let Some(data) = data.filter(|d| !d.trim().is_empty()) {
        return base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map(Some)
            .map_err(|e| format!("invalid base64 data: {e}"));
    }
    match file.filter(|f| !f.is_empty()) {
        Some(file) => std::fs::read(file)
            .map(Some)
            .map_err(|e| format!("{file}: {e}")),
        None => Ok(None),
    }
}

/// The `Authorization` header value for basic authentication.
pub fn basic_header(username: &str, password: &str) -> Result<HeaderValue, Error> {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
        .map_err(|e| Error::Setup(format!("basic authentication for {username:?}: {e}")))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A bearer-token file read at start and again at most every minute, so a rotated
/// service-account token is picked up; a failed re-read keeps the previous token.
#[derive(Debug)]
pub struct TokenFile {
    path: PathBuf,
    refresh: Duration,
    state: Mutex<(HeaderValue, Instant)>,
}

impl TokenFile {
    /// Reads the token now; an unreadable or empty file is an error.
    pub fn open(path: PathBuf) -> Result<Self, Error> {
        Self::with_refresh(path, TOKEN_FILE_REFRESH)
    }

    /// [`TokenFile::open`] re-reading after `refresh` instead of a minute.
    pub fn with_refresh(path: PathBuf, refresh: Duration) -> Result<Self, Error> {
        let value = read_token(&path)?;
        Ok(Self {
            path,
            refresh,
            state: Mutex::new((value, Instant::now())),
        })
    }

    /// The header value to send, re-reading the file when the last read is a minute old.
    pub fn header(&self) -> HeaderValue {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.1.elapsed() >= self.refresh {
            state.1 = Instant::now();
            match read_token(&self.path) {
                Ok(value) => state.0 = value,
                Err(e) => tracing::warn!(error = %e, "keeping the previous bearer token"),
            }
        }
        state.0.clone()
    }
}

fn read_token(path: &Path) -> Result<HeaderValue, Error> {
    let fail = |why: String| Error::Setup(format!("token file {}: {why}", path.display()));
    let token = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let token = token.trim();
    if token.is_empty() {
        return Err(fail("empty".into()));
    }
    let mut value =
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| fail(e.to_string()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `insecure-skip-tls-verify: true`: any certificate is accepted (handshake signatures are
/// still checked against it, as Go's `InsecureSkipVerify` does).
#[derive(Debug)]
pub struct SkipVerification(pub WebPkiSupportedAlgorithms);

impl SkipVerification {
    /// With the provider's signature algorithms.
    pub fn new(provider: &CryptoProvider) -> Arc<Self> {
        Arc::new(Self(provider.signature_verification_algorithms))
    }
}

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `tls-server-name`: the certificate is verified for this name instead of the URL's host.
#[derive(Debug)]
pub struct VerifyAs {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl VerifyAs {
    /// `inner`, checking `name`; an invalid name is an error.
    pub fn new(inner: Arc<dyn ServerCertVerifier>, name: &str) -> Result<Arc<Self>, Error> {
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| Error::Setup(format!("tls-server-name {name:?}: {e}")))?;
        Ok(Arc::new(Self { inner, name }))
    }
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests;
