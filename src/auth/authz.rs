//! Authorization in k8s.io/apiserver's delegated order: always-allowed paths, the
//! `system:masters` group, then a SubjectAccessReview with allow and deny answers cached
//! for separate TTLs.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReviewSpec,
};

use super::cache::TtlCache;
use super::request_info::RequestInfo;
use super::review::Reviews;
use super::user::{MASTERS, UserInfo};

/// Entries the decision cache holds at most.
const DECISION_CACHE_CAPACITY: usize = 4096;

/// An authorization answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Serve the request.
    Allow,
    /// Refuse it (403); the reason the reviewer gave, possibly empty.
    Deny(String),
}

/// Options of the authorizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerOptions {
    /// Non-resource paths allowed for everyone: exact, or a prefix when ending in `*`.
    pub always_allow_paths: Vec<String>,
    /// How long an allow answer is reused.
    pub allowed_ttl: Duration,
    /// How long a deny answer is reused.
    pub denied_ttl: Duration,
}

/// Decides whether an authenticated user may make a request.
pub struct Authorizer {
    options: AuthorizerOptions,
    reviews: Arc<dyn Reviews>,
    cache: TtlCache<String, Decision>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("options", &self.options)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

/// `Some(value)` unless empty, as Go's `omitempty` leaves it out.
fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

/// The SubjectAccessReview spec kube-apiserver's webhook authorizer sends for a request.
pub fn access_review_spec(user: &UserInfo, info: &RequestInfo) -> SubjectAccessReviewSpec {
    let (resource_attributes, non_resource_attributes) = match &info.resource {
        Some(r) => (
            Some(ResourceAttributes {
                namespace: non_empty(&r.namespace),
                verb: non_empty(&info.verb),
                group: non_empty(&r.group),
                version: non_empty(&r.version),
                resource: non_empty(&r.resource),
                subresource: non_empty(&r.subresource),
                name: non_empty(&r.name),
                field_selector: None,
                label_selector: None,
            }),
            None,
        ),
        None => (
            None,
            Some(NonResourceAttributes {
                path: non_empty(&info.path),
                verb: non_empty(&info.verb),
            }),
        ),
    };
    SubjectAccessReviewSpec {
        user: non_empty(&user.name),
        uid: non_empty(&user.uid),
        groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
        resource_attributes,
        non_resource_attributes,
    }
}

impl Authorizer {
    /// An authorizer asking `reviews`.
    pub fn new(options: AuthorizerOptions, reviews: Arc<dyn Reviews>) -> Self {
        Self {
            options,
            reviews,
            cache: TtlCache::new(DECISION_CACHE_CAPACITY),
        }
    }

    fn path_always_allowed(&self, info: &RequestInfo) -> bool {
        info.resource.is_none()
            && self.options.always_allow_paths.iter().any(|allowed| {
                match allowed.strip_suffix('*') {
                    Some(prefix) => info.path.starts_with(prefix),
                    None => info.path == *allowed,
                }
            })
    }

    /// Allow or deny; `Err` when the SubjectAccessReview could not be made (500).
    pub async fn authorize(&self, user: &UserInfo, info: &RequestInfo) -> Result<Decision, String> {
        if self.path_always_allowed(info) || user.in_group(MASTERS) {
            return Ok(Decision::Allow);
        }
        let spec = access_review_spec(user, info);
        let key = serde_json::to_string(&spec)
            .map_err(|e| format!("encoding SubjectAccessReview: {e}"))?;
        if let Some(decision) = self.cache.get(&key) {
            return Ok(decision);
        }
        let status = self.reviews.access_review(spec).await?;
        let reason = status.reason.unwrap_or_default();
        let (decision, ttl) = if status.allowed && status.denied != Some(true) {
            (Decision::Allow, self.options.allowed_ttl)
        } else {
            (Decision::Deny(reason), self.options.denied_ttl)
        };
        self.cache.insert(key, decision.clone(), ttl);
        Ok(decision)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use futures::FutureExt as _;
    use futures::future::BoxFuture;
    use k8s_openapi::api::authentication::v1::TokenReviewStatus;
    use k8s_openapi::api::authorization::v1::SubjectAccessReviewStatus;

    use super::*;

    #[derive(Default)]
    struct Recorded {
        specs: Mutex<Vec<SubjectAccessReviewSpec>>,
    }

    impl Reviews for Recorded {
        fn token_review(&self, _: &str) -> BoxFuture<'_, Result<TokenReviewStatus, String>> {
            async { Err("not used".to_owned()) }.boxed()
        }
        fn access_review(
            &self,
            spec: SubjectAccessReviewSpec,
        ) -> BoxFuture<'_, Result<SubjectAccessReviewStatus, String>> {
            let allowed = spec.user.as_deref() == Some("jane");
            self.specs.lock().unwrap().push(spec);
            async move {
                Ok(SubjectAccessReviewStatus {
                    allowed,
                    reason: (!allowed).then(|| "no rule".to_owned()),
                    ..SubjectAccessReviewStatus::default()
                })
            }
            .boxed()
        }
    }

    fn get(path: &str) -> RequestInfo {
        RequestInfo::parse(&http::Method::GET, &path.parse().unwrap())
    }

    #[test]
    fn spec_matches_the_webhook_authorizer_json() {
        let mut user = UserInfo::new("jane", vec!["dev".to_owned()]);
        user.extra.insert("scopes".to_owned(), vec!["a".to_owned()]);
        let spec = access_review_spec(
            &user,
            &get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m"),
        );
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::json!({
                "extra": {"scopes": ["a"]},
                "groups": ["dev"],
                "resourceAttributes": {
                    "group": "custom.metrics.k8s.io",
                    "name": "*",
                    "namespace": "ns",
                    "resource": "pods",
                    "subresource": "m",
                    "verb": "get",
                    "version": "v1beta2"
                },
                "user": "jane"
            })
        );
        let spec = access_review_spec(&UserInfo::anonymous(), &get("/openapi/v2"));
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::json!({
                "groups": ["system:unauthenticated"],
                "nonResourceAttributes": {"path": "/openapi/v2", "verb": "get"},
                "user": "system:anonymous"
            })
        );
    }

    #[tokio::test]
    async fn paths_masters_and_cached_reviews() {
        let reviews = Arc::new(Recorded::default());
        let authorizer = Authorizer::new(
            AuthorizerOptions {
                always_allow_paths: vec!["/healthz".to_owned(), "/debug/*".to_owned()],
                allowed_ttl: Duration::from_secs(60),
                denied_ttl: Duration::from_secs(60),
            },
            reviews.clone(),
        );
        let anonymous = UserInfo::anonymous();
        let metric = get("/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m");
        for path in ["/healthz", "/debug/pprof"] {
            assert_eq!(
                authorizer.authorize(&anonymous, &get(path)).await,
                Ok(Decision::Allow)
            );
        }
        let masters = UserInfo::new("admin", vec![MASTERS.to_owned()]);
        assert_eq!(
            authorizer.authorize(&masters, &metric).await,
            Ok(Decision::Allow)
        );
        assert!(reviews.specs.lock().unwrap().is_empty());

        let jane = UserInfo::new("jane", vec![]);
        for _ in 0..2 {
            assert_eq!(
                authorizer.authorize(&jane, &metric).await,
                Ok(Decision::Allow)
            );
            assert_eq!(
                authorizer.authorize(&anonymous, &get("/healthz/x")).await,
                Ok(Decision::Deny("no rule".to_owned()))
            );
        }
        assert_eq!(
            reviews.specs.lock().unwrap().len(),
            2,
            "second round cached"
        );
    }
}
