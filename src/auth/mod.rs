//! Delegated authentication and authorization for requests that reach augur through
//! kube-apiserver's aggregation layer.
//!
//! Behaviour follows k8s.io/apiserver's delegated options (the ones prometheus-adapter
//! inherits): [`authn`] tries the front-proxy request headers, an x509 client certificate,
//! a bearer token (TokenReview) and falls back to anonymous; [`authz`] allows the
//! always-allowed paths and `system:masters`, and asks a SubjectAccessReview for the rest.
//! Trust material comes from flags or the `kube-system/extension-apiserver-authentication`
//! ConfigMap ([`trust`]), which is watched. The TLS layer only requests client
//! certificates ([`verifier`]); chains are verified per request against the current CAs.
//!
//! Wiring: [`setup`] resolves `--authentication-mode` and returns `None` (off) or a
//! [`Delegated`]; [`Delegated::tls`] adds the client-certificate request to the serving
//! TLS configuration and [`Delegated::protect`] wraps the router.

pub mod authn;
pub mod authz;
pub mod cache;
pub mod request_info;
pub mod review;
pub mod trust;
pub mod user;
pub mod verifier;
pub mod x509;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::{ArgAction, Args, ValueEnum};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails;

use self::authn::{Authenticator, TokenAuthenticator, clear_identity_headers};
use self::authz::{Authorizer, AuthorizerOptions, Decision};
use self::request_info::RequestInfo;
use self::review::{KubeReviews, Reviews};
use self::trust::{RequestHeaderTrust, TrustMaterial, TrustStore};
use self::user::UserInfo;
use crate::api::error::ApiError;
use crate::telemetry::{Refusal, RefusalReason};
use crate::tls::{PeerCertificates, ServerTls};
use crate::units::parse_duration;

/// How long one TokenReview, SubjectAccessReview or ConfigMap read may take
/// (k8s.io/apiserver's delegated clients use 10 s too).
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether requests are authenticated and authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Mode {
    /// Delegated when augur runs against a cluster (a kubeconfig flag, or in a pod), off otherwise.
    #[default]
    Auto,
    /// Serve every request without checks (standalone use, behind a trusted proxy).
    Off,
    /// Always authenticate and authorize through kube-apiserver.
    Delegated,
}

/// Flags for delegated authentication and authorization (k8s.io/apiserver's names).
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// auto: delegated when a kubeconfig flag is given or augur runs in a pod, else off.
    #[arg(long, value_enum, default_value = "auto")]
    pub authentication_mode: Mode,
    /// kubeconfig for TokenReview and the extension-apiserver-authentication ConfigMap
    /// (default: in-cluster, then --lister-kubeconfig).
    #[arg(long)]
    pub authentication_kubeconfig: Option<PathBuf>,
    /// Do not read client CAs from kube-system/extension-apiserver-authentication.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub authentication_skip_lookup: bool,
    /// Start even when that ConfigMap cannot be read (it is still watched).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub authentication_tolerate_lookup_failure: bool,
    /// How long TokenReview answers are reused.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authentication_token_webhook_cache_ttl: Duration,
    /// CA bundle for x509 client certificate users (CN = user, O = groups); overrides the ConfigMap.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// CA bundle of the front-proxy client certificate; with it, every --requestheader-* flag
    /// is used instead of the ConfigMap.
    #[arg(long)]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// Common names the front-proxy certificate may have (comma-separated; empty = any).
    #[arg(long, value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,
    /// Headers holding the user name.
    #[arg(long, value_delimiter = ',', default_value = "x-remote-user")]
    pub requestheader_username_headers: Vec<String>,
    /// Headers holding the user uid.
    #[arg(long, value_delimiter = ',', default_value = "x-remote-uid")]
    pub requestheader_uid_headers: Vec<String>,
    /// Headers holding groups.
    #[arg(long, value_delimiter = ',', default_value = "x-remote-group")]
    pub requestheader_group_headers: Vec<String>,
    /// Prefixes of headers holding extra attributes.
    #[arg(long, value_delimiter = ',', default_value = "x-remote-extra-")]
    pub requestheader_extra_headers_prefix: Vec<String>,
    /// kubeconfig for SubjectAccessReview (default: in-cluster, then --lister-kubeconfig).
    #[arg(long)]
    pub authorization_kubeconfig: Option<PathBuf>,
    /// Paths served without authorization (exact, or prefix when ending in `*`).
    #[arg(long, value_delimiter = ',', default_value = "/healthz,/readyz,/livez")]
    pub authorization_always_allow_paths: Vec<String>,
    /// How long "allowed" SubjectAccessReview answers are reused.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authorization_webhook_cache_authorized_ttl: Duration,
    /// How long "denied" SubjectAccessReview answers are reused.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,
}

impl Default for AuthArgs {
    fn default() -> Self {
        Self {
            authentication_mode: Mode::Auto,
            authentication_kubeconfig: None,
            authentication_skip_lookup: false,
            authentication_tolerate_lookup_failure: false,
            authentication_token_webhook_cache_ttl: Duration::from_secs(10),
            client_ca_file: None,
            requestheader_client_ca_file: None,
            requestheader_allowed_names: Vec::new(),
            requestheader_username_headers: vec!["x-remote-user".to_owned()],
            requestheader_uid_headers: vec!["x-remote-uid".to_owned()],
            requestheader_group_headers: vec!["x-remote-group".to_owned()],
            requestheader_extra_headers_prefix: vec!["x-remote-extra-".to_owned()],
            authorization_kubeconfig: None,
            authorization_always_allow_paths: vec![
                "/healthz".to_owned(),
                "/readyz".to_owned(),
                "/livez".to_owned(),
            ],
            authorization_webhook_cache_authorized_ttl: Duration::from_secs(10),
            authorization_webhook_cache_unauthorized_ttl: Duration::from_secs(10),
        }
    }
}

/// Why delegated auth could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag or file is unusable.
    #[error("authentication setup: {0}")]
    Config(String),
    /// kube-apiserver could not be reached or read.
    #[error("authentication setup: {0}")]
    Lookup(String),
}

/// Whether augur runs in a pod (the service-account environment is set).
pub fn in_cluster() -> bool {
    ["KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"]
        .iter()
        .all(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// `--authentication-mode` resolved: whether delegated auth is on.
pub fn delegated(args: &AuthArgs, lister_kubeconfig: Option<&Path>, in_cluster: bool) -> bool {
    match args.authentication_mode {
        Mode::Off => false,
        Mode::Delegated => true,
        Mode::Auto => {
            in_cluster
                || args.authentication_kubeconfig.is_some()
                || args.authorization_kubeconfig.is_some()
                || lister_kubeconfig.is_some()
        }
    }
}

/// Where a delegated client connects: the specific flag, else in-cluster, else the lister
/// kubeconfig. `Ok(None)` = in-cluster.
fn client_source(
    flag: &str,
    specific: Option<&Path>,
    lister: Option<&Path>,
    in_cluster: bool,
) -> Result<Option<PathBuf>, Error> {
    match (specific, in_cluster, lister) {
        (Some(path), _, _) => Ok(Some(path.to_owned())),
        (None, true, _) => Ok(None),
        (None, false, Some(path)) => Ok(Some(path.to_owned())),
        (None, false, None) => Err(Error::Config(format!(
            "delegated authentication needs {flag} (or --lister-kubeconfig, or running in a pod)"
        ))),
    }
}

fn describe_source(source: Option<&Path>) -> String {
    source.map_or_else(
        || "in-cluster service account".to_owned(),
        |p| p.display().to_string(),
    )
}

/// Delegated authentication and authorization, ready to wrap a router.
pub struct Delegated {
    authenticator: Authenticator,
    authorizer: Authorizer,
}

impl std::fmt::Debug for Delegated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delegated")
            .field("authenticator", &self.authenticator)
            .field("authorizer", &self.authorizer)
            .finish()
    }
}

/// Resolve `--authentication-mode` and, when delegated, connect to kube-apiserver, load the
/// trust material and start watching the ConfigMap. Logs which mode is in effect.
pub async fn setup(
    args: &AuthArgs,
    lister_kubeconfig: Option<&Path>,
) -> Result<Option<Arc<Delegated>>, Error> {
    let pod = in_cluster();
    if !delegated(args, lister_kubeconfig, pod) {
        if args.authentication_mode == Mode::Off {
            tracing::warn!(
                "authentication and authorization off (--authentication-mode=off): every request is served without checks"
            );
        } else {
            tracing::warn!(
                "authentication and authorization off: no --authentication-kubeconfig, --authorization-kubeconfig or --lister-kubeconfig and not running in a pod (standalone use); --authentication-mode=delegated turns them on"
            );
        }
        return Ok(None);
    }
    let authn_source = client_source(
        "--authentication-kubeconfig",
        args.authentication_kubeconfig.as_deref(),
        lister_kubeconfig,
        pod,
    )?;
    let authz_source = client_source(
        "--authorization-kubeconfig",
        args.authorization_kubeconfig.as_deref(),
        lister_kubeconfig,
        pod,
    )?;
    let authn_client = crate::cluster::connect(authn_source.as_deref())
        .await
        .map_err(|e| Error::Config(e.to_string()))?;
    let authz_client = crate::cluster::connect(authz_source.as_deref())
        .await
        .map_err(|e| Error::Config(e.to_string()))?;
    let reviews: Arc<dyn Reviews> = Arc::new(KubeReviews::new(
        authn_client.clone(),
        authz_client,
        REVIEW_TIMEOUT,
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let trust = Arc::new(trust_store(args, provider.clone())?);
    if args.client_ca_file.is_some() || args.requestheader_client_ca_file.is_some() {
        tokio::spawn(follow_files(
            trust.clone(),
            args.clone(),
            provider,
            CA_FILE_CHECK_INTERVAL,
        ));
    }
    if trust.follows_configmap() {
        match trust::lookup(authn_client.clone(), REVIEW_TIMEOUT).await {
            Ok(data) => {
                if data.is_none() {
                    tracing::warn!(
                        "configmap {}/{} not found; client certificates are not trusted until it exists",
                        trust::CONFIGMAP_NAMESPACE,
                        trust::CONFIGMAP_NAME
                    );
                }
                trust.apply_configmap(data.as_ref());
            }
            Err(e) if args.authentication_tolerate_lookup_failure => {
                tracing::warn!(error = %e, "cannot read the authentication configmap; starting without it (--authentication-tolerate-lookup-failure) and watching for it");
            }
            Err(e) => {
                return Err(Error::Lookup(format!(
                    "{e}; --authentication-tolerate-lookup-failure starts anyway, --authentication-skip-lookup with --client-ca-file/--requestheader-client-ca-file avoids the lookup"
                )));
            }
        }
        tokio::spawn(trust.clone().watch(authn_client));
    }
    tracing::info!(
        authentication = %describe_source(authn_source.as_deref()),
        authorization = %describe_source(authz_source.as_deref()),
        trust = %trust.current().describe(),
        follows_configmap = trust.follows_configmap(),
        "delegated authentication and authorization on"
    );
    Ok(Some(Arc::new(Delegated::new(args, trust, reviews))))
}

/// The trust store the flags describe: parts given by CA file flags come from the files
/// (see [`follow_files`]), the other parts follow the ConfigMap unless
/// --authentication-skip-lookup.
pub fn trust_store(
    args: &AuthArgs,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<TrustStore, Error> {
    let fixed = flag_material(args, &provider)?;
    let lookup = !args.authentication_skip_lookup;
    Ok(TrustStore::new(
        fixed,
        lookup && args.client_ca_file.is_none(),
        lookup && args.requestheader_client_ca_file.is_none(),
        provider,
    ))
}

/// How often CA files given by flags are re-read.
pub const CA_FILE_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// Re-read the CA files given by flags every `interval` and apply changes (k8s.io/apiserver
/// follows these files too); an unreadable or invalid file keeps the previous CAs.
pub async fn follow_files(
    trust: Arc<TrustStore>,
    args: AuthArgs,
    provider: Arc<rustls::crypto::CryptoProvider>,
    interval: Duration,
) {
    loop {
        tokio::time::sleep(interval).await;
        match flag_material(&args, &provider) {
            Ok(material) => {
                trust.apply_flags(&material);
            }
            Err(e) => tracing::warn!(error = %e, "keeping the previous CAs"),
        }
    }
}

/// The trust material the CA file flags give, files read now.
fn flag_material(
    args: &AuthArgs,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<TrustMaterial, Error> {
    let provider = provider.clone();
    let mut fixed = TrustMaterial::default();
    if let Some(path) = &args.client_ca_file {
        fixed.client_ca =
            Some(trust::ca_from_file("--client-ca-file", path, &provider).map_err(Error::Config)?);
    }
    if let Some(path) = &args.requestheader_client_ca_file {
        fixed.request_header = Some(RequestHeaderTrust {
            ca: trust::ca_from_file("--requestheader-client-ca-file", path, &provider)
                .map_err(Error::Config)?,
            allowed_names: args.requestheader_allowed_names.clone(),
            username_headers: args.requestheader_username_headers.clone(),
            uid_headers: args.requestheader_uid_headers.clone(),
            group_headers: args.requestheader_group_headers.clone(),
            extra_prefixes: args.requestheader_extra_headers_prefix.clone(),
        });
    }
    Ok(fixed)
}

/// A 403 `Forbidden` Status as kube-apiserver writes it (with details).
fn forbidden(info: &RequestInfo, user: &UserInfo, reason: &str) -> Response {
    let given = |s: &String| (!s.is_empty()).then(|| s.clone());
    let details = info
        .resource
        .as_ref()
        .map(|r| StatusDetails {
            name: given(&r.name),
            group: given(&r.group),
            kind: given(&r.resource),
            ..StatusDetails::default()
        })
        .unwrap_or_default();
    ApiError::forbidden(info.forbidden_message(user, reason))
        .with_details(details)
        .into_response()
}

impl Delegated {
    /// Delegated auth from flags, a trust store and a reviewer.
    pub fn new(args: &AuthArgs, trust: Arc<TrustStore>, reviews: Arc<dyn Reviews>) -> Self {
        let tokens =
            TokenAuthenticator::new(reviews.clone(), args.authentication_token_webhook_cache_ttl);
        let authorizer = Authorizer::new(
            AuthorizerOptions {
                always_allow_paths: args.authorization_always_allow_paths.clone(),
                allowed_ttl: args.authorization_webhook_cache_authorized_ttl,
                denied_ttl: args.authorization_webhook_cache_unauthorized_ttl,
            },
            reviews,
        );
        Self {
            authenticator: Authenticator::new(trust, Some(tokens)),
            authorizer,
        }
    }

    /// The serving TLS configuration, now requesting (not requiring) client certificates.
    pub fn tls(&self, tls: ServerTls) -> crate::tls::Result<ServerTls> {
        let verifier = verifier::RequestClientCert::new(tls.provider());
        tls.with_client_verifier(verifier)
    }

    /// `router` behind authentication and authorization; handlers find the [`UserInfo`] in
    /// the request extensions.
    pub fn protect(self: &Arc<Self>, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(self.clone(), guard))
    }

    /// Authenticate and authorize one request: the user, or the response refusing it.
    pub async fn check(
        &self,
        peer: &PeerCertificates,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
    ) -> Result<UserInfo, Response> {
        let info = RequestInfo::parse(method, uri);
        let authenticated = match self.authenticator.authenticate(peer, headers).await {
            Ok(authenticated) => authenticated,
            Err(refusal) => {
                let response = ApiError::unauthorized(format!("Unauthorized: {}", refusal.message));
                return Err(refused(response.into_response(), refusal.on(&info.path)));
            }
        };
        let user = authenticated.user;
        match self.authorizer.authorize(&user, &info).await {
            Ok(Decision::Allow) => Ok(user),
            Ok(Decision::Deny(reason)) => {
                let refusal = Refusal::new(
                    RefusalReason::Forbidden,
                    info.forbidden_message(&user, &reason),
                )
                .of_user(&user.name)
                .on(&info.path);
                Err(refused(forbidden(&info, &user, &reason), refusal))
            }
            Err(e) => {
                let refusal = Refusal::new(
                    RefusalReason::AuthorizationError,
                    format!("authorization failed: {e}"),
                )
                .of_user(&user.name)
                .on(&info.path);
                Err(refused(ApiError::internal(e).into_response(), refusal))
            }
        }
    }
}

/// `response` carrying `refusal`, for the request metrics to count and log
/// ([`crate::api::instrument`]).
fn refused(mut response: Response, refusal: Refusal) -> Response {
    response.extensions_mut().insert(refusal);
    response
}

async fn guard(State(auth): State<Arc<Delegated>>, mut request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<PeerCertificates>()
        .cloned()
        .unwrap_or_default();
    let user = match auth
        .check(&peer, request.method(), request.uri(), request.headers())
        .await
    {
        Ok(user) => user,
        Err(response) => return response,
    };
    let trust = auth.authenticator.trust().current();
    clear_identity_headers(request.headers_mut(), trust.request_header.as_ref());
    request.extensions_mut().insert(user);
    next.run(request).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        auth: AuthArgs,
    }

    #[test]
    fn flags_parse_with_k8s_names_and_defaults() {
        let cli = Cli::try_parse_from(["augur"]).unwrap();
        let defaults = AuthArgs::default();
        assert_eq!(
            cli.auth.authorization_always_allow_paths,
            defaults.authorization_always_allow_paths
        );
        assert_eq!(
            cli.auth.requestheader_username_headers,
            defaults.requestheader_username_headers
        );
        assert_eq!(
            cli.auth.requestheader_uid_headers,
            defaults.requestheader_uid_headers
        );
        assert_eq!(
            cli.auth.requestheader_group_headers,
            defaults.requestheader_group_headers
        );
        assert_eq!(
            cli.auth.requestheader_extra_headers_prefix,
            defaults.requestheader_extra_headers_prefix
        );
        assert_eq!(
            cli.auth.authentication_token_webhook_cache_ttl,
            Duration::from_secs(10)
        );
        assert!(!cli.auth.authentication_skip_lookup);

        let cli = Cli::try_parse_from([
            "augur",
            "--authentication-mode=delegated",
            "--authentication-skip-lookup",
            "--authentication-tolerate-lookup-failure=true",
            "--requestheader-allowed-names=front-proxy-client,aggregator",
            "--authorization-always-allow-paths=/healthz,/metrics",
            "--authorization-webhook-cache-unauthorized-ttl=30s",
        ])
        .unwrap();
        assert_eq!(cli.auth.authentication_mode, Mode::Delegated);
        assert!(cli.auth.authentication_skip_lookup);
        assert!(cli.auth.authentication_tolerate_lookup_failure);
        assert_eq!(
            cli.auth.requestheader_allowed_names,
            ["front-proxy-client", "aggregator"]
        );
        assert_eq!(
            cli.auth.authorization_always_allow_paths,
            ["/healthz", "/metrics"]
        );
        assert_eq!(
            cli.auth.authorization_webhook_cache_unauthorized_ttl,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn auto_mode_follows_cluster_configuration() {
        let mut args = AuthArgs::default();
        assert!(!delegated(&args, None, false));
        assert!(delegated(&args, None, true));
        assert!(delegated(&args, Some(Path::new("kc")), false));
        args.authorization_kubeconfig = Some("kc".into());
        assert!(delegated(&args, None, false));
        args.authentication_mode = Mode::Off;
        assert!(!delegated(&args, None, true));
        args.authentication_mode = Mode::Delegated;
        args.authorization_kubeconfig = None;
        assert!(delegated(&args, None, false));
    }

    #[test]
    fn client_sources_prefer_the_specific_flag_then_the_pod() {
        let lister = Some(Path::new("lister"));
        assert_eq!(
            client_source("--x", Some(Path::new("own")), lister, true).unwrap(),
            Some(PathBuf::from("own"))
        );
        assert_eq!(client_source("--x", None, lister, true).unwrap(), None);
        assert_eq!(
            client_source("--x", None, lister, false).unwrap(),
            Some(PathBuf::from("lister"))
        );
        assert_eq!(
            client_source("--authentication-kubeconfig", None, None, false)
                .unwrap_err()
                .to_string(),
            "authentication setup: delegated authentication needs --authentication-kubeconfig (or --lister-kubeconfig, or running in a pod)"
        );
    }

    #[tokio::test]
    async fn forbidden_body_is_a_kube_status_with_details() {
        use http_body_util::BodyExt as _;
        let info = RequestInfo::parse(
            &http::Method::GET,
            &"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m"
                .parse()
                .unwrap(),
        );
        let response = forbidden(&info, &UserInfo::anonymous(), "");
        assert_eq!(response.status(), http::StatusCode::FORBIDDEN);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"apiVersion":"v1","kind":"Status","code":403,"details":{"group":"custom.metrics.k8s.io","kind":"pods","name":"*"},"message":"pods.custom.metrics.k8s.io \"*\" is forbidden: User \"system:anonymous\" cannot get resource \"pods/m\" in API group \"custom.metrics.k8s.io\" in the namespace \"ns\"","metadata":{},"reason":"Forbidden","status":"Failure"}"#
        );
    }
}
