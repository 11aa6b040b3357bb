//! The two calls delegated auth makes to kube-apiserver — TokenReview and
//! SubjectAccessReview — behind a trait, plus a kube-rs client built from a kubeconfig or
//! the in-cluster service account.

use std::path::Path;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::authorization::v1::{
    SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use kube::api::{Api, PostParams};

/// How long connecting to kube-apiserver may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Asks kube-apiserver who a token belongs to and whether a user may do something.
pub trait Reviews: Send + Sync {
    /// `POST /apis/authentication.k8s.io/v1/tokenreviews` for `token`.
    fn token_review(&self, token: &str) -> BoxFuture<'_, Result<TokenReviewStatus, String>>;
    /// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews` for `spec`.
    fn access_review(
        &self,
        spec: SubjectAccessReviewSpec,
    ) -> BoxFuture<'_, Result<SubjectAccessReviewStatus, String>>;
}

/// [`Reviews`] through kube-rs; every call is bounded by `timeout`.
#[derive(Clone)]
pub struct KubeReviews {
    authentication: kube::Client,
    authorization: kube::Client,
    timeout: Duration,
}

impl std::fmt::Debug for KubeReviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeReviews")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl KubeReviews {
    /// TokenReviews through `authentication`, SubjectAccessReviews through `authorization`.
    pub fn new(
        authentication: kube::Client,
        authorization: kube::Client,
        timeout: Duration,
    ) -> Self {
        Self {
            authentication,
            authorization,
            timeout,
        }
    }
}

/// A kube-rs error in one line: for an API answer its code, reason and message.
pub fn describe_kube_error(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} {}: {}", status.code, status.reason, status.message)
        }
        other => other.to_string(),
    }
}

async fn bounded<T>(
    what: &str,
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what} failed: {}", describe_kube_error(&e))),
        Err(_) => Err(format!(
            "{what} got no answer within {}",
            humantime::format_duration(timeout)
        )),
    }
}

impl Reviews for KubeReviews {
    fn token_review(&self, token: &str) -> BoxFuture<'_, Result<TokenReviewStatus, String>> {
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: None,
            },
            ..TokenReview::default()
        };
        async move {
            let api: Api<TokenReview> = Api::all(self.authentication.clone());
            let answer = bounded(
                "TokenReview",
                self.timeout,
                api.create(&PostParams::default(), &review),
            )
            .await?;
            answer
                .status
                .ok_or_else(|| "TokenReview answer has no status".to_owned())
        }
        .boxed()
    }

    fn access_review(
        &self,
        spec: SubjectAccessReviewSpec,
    ) -> BoxFuture<'_, Result<SubjectAccessReviewStatus, String>> {
        let review = SubjectAccessReview {
            spec,
            ..SubjectAccessReview::default()
        };
        async move {
            let api: Api<SubjectAccessReview> = Api::all(self.authorization.clone());
            let answer = bounded(
                "SubjectAccessReview",
                self.timeout,
                api.create(&PostParams::default(), &review),
            )
            .await?;
            answer
                .status
                .ok_or_else(|| "SubjectAccessReview answer has no status".to_owned())
        }
        .boxed()
    }
}

/// A kube-rs client for `kubeconfig`, or for the pod's service account when `None`.
/// Connecting is bounded by [`CONNECT_TIMEOUT`]; responses are not (watches stay open),
/// so single calls bound themselves.
///
/// Merge note: cluster mode has its own constructor (`cluster::connect`); this one can be
/// replaced by it once both exist on main.
pub async fn connect(kubeconfig: Option<&Path>) -> Result<kube::Client, String> {
    let mut config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| format!("reading kubeconfig {}: {e}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?
        }
        None => kube::Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    kube::Client::try_from(config).map_err(|e| format!("building the Kubernetes client: {e}"))
}
