//! Authentication in k8s.io/apiserver's delegated order: front-proxy request headers, x509
//! client certificate, bearer token through a cached TokenReview, then anonymous.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use percent_encoding::percent_decode_str;

use super::cache::TtlCache;
use super::review::Reviews;
use super::trust::{RequestHeaderTrust, TrustStore};
use super::user::UserInfo;
use super::x509;
use crate::telemetry::{Refusal, RefusalReason};
use crate::tls::PeerCertificates;

/// Entries the token cache holds at most.
const TOKEN_CACHE_CAPACITY: usize = 4096;

/// Which authenticator accepted a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Front-proxy client certificate plus `X-Remote-*` headers.
    RequestHeader,
    /// x509 client certificate signed by the client CA.
    ClientCertificate,
    /// Bearer token, by TokenReview.
    Token,
    /// Nothing presented.
    Anonymous,
}

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who.
    pub user: UserInfo,
    /// How.
    pub method: Method,
}

/// An authenticator's answer: `Ok(None)` = "not mine, ask the next one".
type Outcome = Result<Option<UserInfo>, Refusal>;

/// Bearer tokens through TokenReview, with allow and deny answers cached for a TTL
/// (transport errors are not cached).
pub struct TokenAuthenticator {
    reviews: Arc<dyn Reviews>,
    cache: TtlCache<String, Result<UserInfo, Refusal>>,
    ttl: Duration,
}

impl std::fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthenticator")
            .field("ttl", &self.ttl)
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

impl TokenAuthenticator {
    /// Reviews tokens through `reviews`, caching answers for `ttl`.
    pub fn new(reviews: Arc<dyn Reviews>, ttl: Duration) -> Self {
        Self {
            reviews,
            cache: TtlCache::new(TOKEN_CACHE_CAPACITY),
            ttl,
        }
    }

    /// The user a token belongs to, or why it is rejected.
    pub async fn authenticate(&self, token: &str) -> Result<UserInfo, Refusal> {
        if let Some(answer) = self.cache.get(&token.to_owned()) {
            return answer;
        }
        let status = self
            .reviews
            .token_review(token)
            .await
            .map_err(|e| Refusal::new(RefusalReason::TokenReviewError, e))?;
        let answer = if status.authenticated == Some(true) {
            let info = status.user.unwrap_or_default();
            Ok(UserInfo {
                name: info.username.unwrap_or_default(),
                uid: info.uid.unwrap_or_default(),
                groups: info.groups.unwrap_or_default(),
                extra: info.extra.unwrap_or_default(),
            })
        } else {
            Err(Refusal::new(
                RefusalReason::InvalidToken,
                invalid_token_message(status.error.as_deref()),
            ))
        };
        self.cache
            .insert(token.to_owned(), answer.clone(), self.ttl);
        answer
    }
}

/// The authentication chain.
#[derive(Debug)]
pub struct Authenticator {
    trust: Arc<TrustStore>,
    tokens: Option<TokenAuthenticator>,
}

impl Authenticator {
    /// Certificates checked against `trust`; bearer tokens through `tokens` when given.
    pub fn new(trust: Arc<TrustStore>, tokens: Option<TokenAuthenticator>) -> Self {
        Self { trust, tokens }
    }

    /// The trust material in use.
    pub fn trust(&self) -> &Arc<TrustStore> {
        &self.trust
    }

    /// Authenticate a request from its connection's certificates and its headers.
    ///
    /// As k8s.io/apiserver's union authenticator: the first authenticator that accepts wins;
    /// an authenticator that finds credentials it cannot accept records an error; when none
    /// accepts and any error was recorded the request is rejected (`Err`, 401), otherwise it
    /// is anonymous. Authenticated users get the `system:authenticated` group.
    pub async fn authenticate(
        &self,
        peer: &PeerCertificates,
        headers: &HeaderMap,
    ) -> Result<Authenticated, Refusal> {
        let trust = self.trust.current();
        let mut errors = Vec::new();
        let mut accept = |outcome: Outcome, method: Method| match outcome {
            Ok(Some(user)) => Some(Authenticated {
                user: user.with_authenticated_group(),
                method,
            }),
            Ok(None) => None,
            Err(e) => {
                errors.push(e);
                None
            }
        };
        if let Some(rh) = &trust.request_header
            && let Some(done) = accept(request_header(rh, peer, headers), Method::RequestHeader)
        {
            return Ok(done);
        }
        if let Some(ca) = &trust.client_ca
            && let Some(done) = accept(client_certificate(ca, peer), Method::ClientCertificate)
        {
            return Ok(done);
        }
        if let Some(tokens) = &self.tokens
            && let Some(token) = bearer_token(headers)
        {
            let outcome = tokens.authenticate(token).await.map(Some);
            if let Some(done) = accept(outcome, Method::Token) {
                return Ok(done);
            }
        }
        if errors.is_empty() {
            Ok(Authenticated {
                user: UserInfo::anonymous(),
                method: Method::Anonymous,
            })
        } else {
            // The first authenticator's reason; every authenticator's message.
            let reason = errors
                .first()
                .map_or(RefusalReason::InvalidToken, |e: &Refusal| e.reason);
            let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
            Err(Refusal::new(reason, messages.join("; ")))
        }
    }
}

/// Why a token was rejected, saying "invalid bearer token" once: TokenReview's error
/// (kube-apiserver's often starts with those words already) after it when it adds something.
fn invalid_token_message(error: Option<&str>) -> String {
    const INVALID: &str = "invalid bearer token";
    match error.map(str::trim).filter(|e| !e.is_empty()) {
        None => INVALID.to_owned(),
        Some(e) if e.to_ascii_lowercase().contains(INVALID) => e.to_owned(),
        Some(e) => format!("{INVALID}: {e}"),
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn certificate_label(subject: Option<&x509::Subject>) -> String {
    match subject {
        Some(s) => format!("CN={:?}", s.common_name),
        None => "(unparsable subject)".to_owned(),
    }
}

/// Front-proxy: the certificate must chain to the request header CA and (when allowed names
/// are set) carry one of them as CN; then the user comes from the headers.
fn request_header(
    rh: &RequestHeaderTrust,
    peer: &PeerCertificates,
    headers: &HeaderMap,
) -> Outcome {
    if peer.is_empty() {
        return Ok(None);
    }
    let leaf = peer.end_entity().and_then(|c| x509::subject(c.as_ref()));
    if let Err(e) = rh.ca.verify(peer.certs()) {
        return Err(Refusal::new(
            RefusalReason::FrontProxyCertificate,
            format!(
                "client certificate {} is not signed by the front-proxy CA ({}): {e}",
                certificate_label(leaf.as_ref()),
                rh.ca.origin()
            ),
        ));
    }
    if !rh.allowed_names.is_empty() {
        let cn = leaf
            .as_ref()
            .map(|s| s.common_name.as_str())
            .unwrap_or_default();
        if !rh.allowed_names.iter().any(|name| name == cn) {
            return Err(Refusal::new(
                RefusalReason::FrontProxyCertificate,
                format!(
                    "front-proxy client certificate CN={cn:?} is not in the allowed names {:?}",
                    rh.allowed_names
                ),
            ));
        }
    }
    let Some(name) = first_value(headers, &rh.username_headers) else {
        return Ok(None);
    };
    Ok(Some(UserInfo {
        name,
        uid: first_value(headers, &rh.uid_headers).unwrap_or_default(),
        groups: all_values(headers, &rh.group_headers),
        extra: extra_values(headers, &rh.extra_prefixes),
    }))
}

/// x509: the certificate must chain to the client CA; CN is the user, O the groups. A
/// certificate without CN authenticates nobody.
fn client_certificate(ca: &x509::CaBundle, peer: &PeerCertificates) -> Outcome {
    if peer.is_empty() {
        return Ok(None);
    }
    let leaf = peer.end_entity().and_then(|c| x509::subject(c.as_ref()));
    if let Err(e) = ca.verify(peer.certs()) {
        return Err(Refusal::new(
            RefusalReason::ClientCertificate,
            format!(
                "client certificate {} is not signed by the client CA ({}): {e}",
                certificate_label(leaf.as_ref()),
                ca.origin()
            ),
        ));
    }
    match leaf {
        Some(subject) if !subject.common_name.is_empty() => Ok(Some(UserInfo::new(
            subject.common_name,
            subject.organizations,
        ))),
        _ => Ok(None),
    }
}

fn header_text(value: &http::HeaderValue) -> Option<&str> {
    value.to_str().ok().filter(|v| !v.is_empty())
}

/// The first non-empty value among `names`, in order.
fn first_value(headers: &HeaderMap, names: &[String]) -> Option<String> {
    names.iter().find_map(|name| {
        headers
            .get_all(name.as_str())
            .iter()
            .find_map(header_text)
            .map(str::to_owned)
    })
}

/// Every non-empty value of every header in `names`.
fn all_values(headers: &HeaderMap, names: &[String]) -> Vec<String> {
    names
        .iter()
        .flat_map(|name| {
            headers
                .get_all(name.as_str())
                .iter()
                .filter_map(header_text)
        })
        .map(str::to_owned)
        .collect()
}

/// Extra attributes: for a header `<prefix><key>`, the key lowercased and percent-decoded.
fn extra_values(headers: &HeaderMap, prefixes: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for prefix in prefixes {
        let prefix = prefix.to_ascii_lowercase();
        for (name, value) in headers {
            let Some(key) = name.as_str().strip_prefix(prefix.as_str()) else {
                continue;
            };
            let key = percent_decode_str(key).decode_utf8_lossy().to_lowercase();
            if let Some(value) = header_text(value) {
                extra.entry(key).or_default().push(value.to_owned());
            }
        }
    }
    extra
}

/// Remove the headers that carried the identity (k8s.io/apiserver does the same after
/// authenticating), so handlers never see client-supplied identity headers.
pub fn clear_identity_headers(headers: &mut HeaderMap, rh: Option<&RequestHeaderTrust>) {
    headers.remove(AUTHORIZATION);
    let Some(rh) = rh else {
        return;
    };
    for name in rh
        .username_headers
        .iter()
        .chain(&rh.uid_headers)
        .chain(&rh.group_headers)
    {
        headers.remove(name.as_str());
    }
    let prefixes: Vec<String> = rh
        .extra_prefixes
        .iter()
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let extra: Vec<http::HeaderName> = headers
        .keys()
        .filter(|name| {
            prefixes
                .iter()
                .any(|p| name.as_str().starts_with(p.as_str()))
        })
        .cloned()
        .collect();
    for name in extra {
        headers.remove(name);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        map
    }

    #[test]
    fn an_invalid_token_is_said_once() {
        assert_eq!(invalid_token_message(None), "invalid bearer token");
        assert_eq!(invalid_token_message(Some("")), "invalid bearer token");
        assert_eq!(
            invalid_token_message(Some("invalid bearer token")),
            "invalid bearer token"
        );
        assert_eq!(
            invalid_token_message(Some(
                "[invalid bearer token, service account token has been invalidated]"
            )),
            "[invalid bearer token, service account token has been invalidated]"
        );
        assert_eq!(
            invalid_token_message(Some("token not found")),
            "invalid bearer token: token not found"
        );
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer abc")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "bearer abc x")])),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Bearer ")])),
            None
        );
        assert_eq!(
            bearer_token(&headers(&[("authorization", "Basic abc")])),
            None
        );
        assert_eq!(bearer_token(&headers(&[])), None);
    }

    #[test]
    fn request_header_values() {
        let h = headers(&[
            ("x-remote-user", ""),
            ("x-remote-user", "jane"),
            ("x-remote-group", "dev"),
            ("x-remote-group", ""),
            ("x-remote-group", "system:masters"),
            ("x-remote-extra-scopes", "a"),
            ("x-remote-extra-scopes", "b"),
            ("X-Remote-Extra-Acme.com%2Fproject", "p1"),
            ("x-remote-uid", "u-1"),
        ]);
        assert_eq!(
            first_value(&h, &["X-Remote-User".to_owned()]).as_deref(),
            Some("jane")
        );
        assert_eq!(
            all_values(&h, &["X-Remote-Group".to_owned()]),
            ["dev", "system:masters"]
        );
        let extra = extra_values(&h, &["X-Remote-Extra-".to_owned()]);
        assert_eq!(
            extra,
            BTreeMap::from([
                ("acme.com/project".to_owned(), vec!["p1".to_owned()]),
                ("scopes".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ])
        );
        let rh_names = ["X-Remote-User", "X-Remote-Uid", "X-Remote-Group"];
        let mut cleared = h.clone();
        cleared.insert("authorization", http::HeaderValue::from_static("Bearer t"));
        cleared.insert("accept", http::HeaderValue::from_static("application/json"));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pem = crate::testing::TestCa::new("front-proxy-ca").pem;
        let rh = RequestHeaderTrust {
            ca: x509::CaBundle::from_pem(&pem, "test", provider).unwrap(),
            allowed_names: vec![],
            username_headers: vec![rh_names[0].to_owned()],
            uid_headers: vec![rh_names[1].to_owned()],
            group_headers: vec![rh_names[2].to_owned()],
            extra_prefixes: vec!["X-Remote-Extra-".to_owned()],
        };
        clear_identity_headers(&mut cleared, Some(&rh));
        assert_eq!(
            cleared.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            ["accept"]
        );
    }
}
