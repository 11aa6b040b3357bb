//! ApiError: every failure a client sees, rendered as a Kubernetes metav1.Status body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Status, StatusDetails};

/// A failure answered to a client as a `metav1.Status` JSON body.
///
/// Handlers build one with the constructor matching the Kubernetes status reason; internal
/// details belong in logs, not in `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    code: StatusCode,
    reason: &'static str,
    message: String,
    details: Option<Box<StatusDetails>>,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: String) -> Self {
        Self {
            code,
            reason,
            message,
            details: None,
        }
    }

    /// The same error with `details` (which object it is about), as kube-apiserver sends
    /// with `Forbidden`.
    pub fn with_details(mut self, details: StatusDetails) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// 404 `NotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message.into())
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message.into())
    }

    /// 500 `InternalError`; the message is prefixed with `Internal error occurred: ` as
    /// k8s.io/apimachinery's `NewInternalError` does.
    pub fn internal(message: impl AsRef<str>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("Internal error occurred: {}", message.as_ref()),
        )
    }

    /// 503 `ServiceUnavailable`.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            message.into(),
        )
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message.into())
    }

    /// 403 `Forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message.into())
    }

    /// 405 `MethodNotAllowed`, with the message the Kubernetes API server uses.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_owned(),
        )
    }

    /// The HTTP status code.
    pub fn code(&self) -> StatusCode {
        self.code
    }

    /// The `metav1.StatusReason`, e.g. `NotFound`.
    pub fn reason(&self) -> &'static str {
        self.reason
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Status {
        Status {
            code: Some(i32::from(self.code.as_u16())),
            details: self.details.as_deref().cloned(),
            message: Some(self.message.clone()),
            metadata: Default::default(),
            reason: Some(self.reason.to_owned()),
            status: Some("Failure".to_owned()),
        }
    }

    /// The `metav1.Status` body as JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing strings, integers and an empty map cannot fail.
        serde_json::to_vec(&self.status()).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.reason,
            self.code.as_u16(),
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.code, self.to_json()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn render(err: ApiError) -> (StatusCode, String, String) {
        let response = err.into_response();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    #[tokio::test]
    async fn not_found_renders_status() {
        let (status, content_type, body) = render(ApiError::not_found(
            "the server could not find the metric m for pods",
        ))
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(content_type, "application/json");
        assert_eq!(
            body,
            r#"{"apiVersion":"v1","kind":"Status","code":404,"message":"the server could not find the metric m for pods","metadata":{},"reason":"NotFound","status":"Failure"}"#
        );
    }

    #[tokio::test]
    async fn internal_is_prefixed() {
        let (status, _, body) = render(ApiError::internal("unable to fetch metrics")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            r#"{"apiVersion":"v1","kind":"Status","code":500,"message":"Internal error occurred: unable to fetch metrics","metadata":{},"reason":"InternalError","status":"Failure"}"#
        );
    }

    #[tokio::test]
    async fn message_is_escaped() {
        let (_, _, body) = render(ApiError::bad_request("invalid \"path\"\n")).await;
        assert_eq!(
            body,
            r#"{"apiVersion":"v1","kind":"Status","code":400,"message":"invalid \"path\"\n","metadata":{},"reason":"BadRequest","status":"Failure"}"#
        );
    }

    #[test]
    fn reasons_and_codes() {
        let cases = [
            (ApiError::bad_request("x"), 400, "BadRequest"),
            (ApiError::unauthorized("x"), 401, "Unauthorized"),
            (ApiError::forbidden("x"), 403, "Forbidden"),
            (ApiError::not_found("x"), 404, "NotFound"),
            (ApiError::method_not_allowed(), 405, "MethodNotAllowed"),
            (ApiError::internal("x"), 500, "InternalError"),
            (
                ApiError::service_unavailable("x"),
                503,
                "ServiceUnavailable",
            ),
        ];
        for (err, code, reason) in cases {
            assert_eq!(err.code().as_u16(), code);
            assert_eq!(err.reason(), reason);
            let value: serde_json::Value = serde_json::from_slice(&err.to_json()).unwrap();
            assert_eq!(value["code"], code);
            assert_eq!(value["reason"], reason);
            assert_eq!(value["message"], err.message());
        }
        assert_eq!(ApiError::forbidden("no").to_string(), "Forbidden (403): no");
    }
}
