//! The two calls delegated auth makes to kube-apiserver — TokenReview and
//! SubjectAccessReview — behind a trait (the client comes from `cluster::connect`).

use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::authorization::v1::{
    SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use kube::api::{Api, PostParams};

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
