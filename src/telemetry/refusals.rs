//! Refused requests (delegated authentication and authorization): the reason a refusing
//! response carries, `augur_auth_refusals_total` by reason, and the refusal log, one line
//! per reason per [`LOG_EVERY`] with how many it stands for.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::metrics::Metrics;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum RefusalReason {
    /// A client certificate not signed by the front-proxy CA, or a CN not allowed (401).
    FrontProxyCertificate,
    /// A client certificate not signed by the client CA (401).
    ClientCertificate,
    /// A bearer token TokenReview rejected (401).
    InvalidToken,
    /// TokenReview could not be asked (401).
    TokenReviewError,
    /// SubjectAccessReview (or the lack of any credentials) denied the request (403).
    Forbidden,
    /// SubjectAccessReview could not be asked (500).
    AuthorizationError,
}

impl RefusalReason {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FrontProxyCertificate => "front_proxy_certificate",
            Self::ClientCertificate => "client_certificate",
            Self::InvalidToken => "invalid_token",
            Self::TokenReviewError => "token_review_error",
            Self::Forbidden => "forbidden",
            Self::AuthorizationError => "authorization_error",
        }
    }
}

impl EncodeLabelValue for RefusalReason {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), fmt::Error> {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

/// A refusal: why, and what the client was told. Auth puts it in the refusing response's
/// extensions; the request metrics middleware counts and logs it ([`Metrics::refused`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason, as a label.
    pub reason: RefusalReason,
    /// The message (each reason once).
    pub message: String,
    /// Who was refused, when authenticated.
    pub user: Option<String>,
    /// The path requested.
    pub path: String,
}

impl Refusal {
    /// A refusal of an unauthenticated request.
    pub fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            user: None,
            path: String::new(),
        }
    }

    /// The same refusal, naming the path requested.
    #[must_use]
    pub fn on(mut self, path: &str) -> Self {
        self.path = path.to_owned();
        self
    }

    /// The same refusal, naming the user refused.
    #[must_use]
    pub fn of_user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }
}

/// Labels of `augur_auth_refusals_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    /// Why.
    pub reason: RefusalReason,
}

/// How often the refusal log repeats a reason.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(10);

/// The refusal counter and the log's last line per reason.
#[derive(Debug)]
pub(super) struct RefusalMetrics {
    refusals: Family<RefusalLabels, Counter>,
    /// Per reason: when it was last logged, and how many refusals since.
    logged: Mutex<HashMap<RefusalReason, (Option<Instant>, u64)>>,
}

impl RefusalMetrics {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "augur_auth_refusals",
            "Requests refused by delegated authentication or authorization, by reason",
            refusals.clone(),
        );
        Self {
            refusals,
            logged: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// Count one refused request, and log it unless this reason was logged less
    /// than [`LOG_EVERY`] ago (the next line says how many refusals it stands for).
    pub fn refused(&self, refusal: &Refusal) {
        self.refusals
            .refusals
            .get_or_create(&RefusalLabels {
                reason: refusal.reason,
            })
            .inc();
        let now = Instant::now();
        let refusals = {
            let mut logged = self
                .refusals
                .logged
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let entry = logged.entry(refusal.reason).or_insert((None, 0));
            entry.1 += 1;
            if entry
                .0
                .is_some_and(|last| now.duration_since(last) < LOG_EVERY)
            {
                return;
            }
            let refusals = entry.1;
            *entry = (Some(now), 0);
            refusals
        };
        tracing::warn!(
            reason = refusal.reason.as_str(),
            user = refusal.user.as_deref().unwrap_or(""),
            path = refusal.path,
            refusals,
            "request refused: {}",
            refusal.message
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_by_reason() {
        let metrics = Metrics::new();
        let token = Refusal::new(RefusalReason::InvalidToken, "invalid bearer token");
        for _ in 0..3 {
            metrics.refused(&token);
        }
        metrics.refused(
            &Refusal::new(RefusalReason::Forbidden, "forbidden")
                .of_user("jane")
                .on("/apis"),
        );
        let text = metrics.encode();
        assert!(
            text.lines()
                .any(|l| l == r#"augur_auth_refusals_total{reason="invalid_token"} 3"#),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l == r#"augur_auth_refusals_total{reason="forbidden"} 1"#),
            "{text}"
        );
        // Logged once for the first of each reason, the others wait for LOG_EVERY.
        let logged = metrics.refusals.logged.lock().unwrap();
        assert_eq!(logged[&RefusalReason::InvalidToken].1, 2);
        assert_eq!(logged[&RefusalReason::Forbidden].1, 0);
    }
}
