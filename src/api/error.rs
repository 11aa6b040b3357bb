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

    /// An error with the code of a response some other layer made (an extractor's
    /// rejection, a 405 from the router): the reason kube-apiserver gives that code, and
    /// `message`, or the code's own phrase when it is empty.
    pub fn from_code(code: StatusCode, message: &str) -> Self {
        if code == StatusCode::METHOD_NOT_ALLOWED && message.is_empty() {
            return Self::method_not_allowed();
        }
        let reason = match code.as_u16() {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            406 => "NotAcceptable",
            408 | 504 => "Timeout",
            409 => "Conflict",
            410 => "Gone",
            413 => "RequestEntityTooLarge",
            415 => "UnsupportedMediaType",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            500 => "InternalError",
            _ => "Unknown",
        };
        let message = match message.trim() {
            "" => code.canonical_reason().unwrap_or("error").to_owned(),
            text => text.to_owned(),
        };
        Self::new(code, reason, message)
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

/// Middleware: an error response that is not already JSON (axum's 405 with no body, an
/// extractor's plain-text rejection) becomes a `Status` with the same code and its text as
/// the message, so that kubectl and kube-aggregator show why.
pub async fn status_bodies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let code = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(code.is_client_error() || code.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    // Our own error texts are short; a longer one is cut, not buffered whole.
    let text = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let mut status = ApiError::from_code(code, &text).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            status.headers_mut().insert(name, value.clone());
        }
    }
    status
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

    #[test]
    fn errors_of_other_layers_get_the_reason_of_their_code() {
        let cases = [
            (
                405,
                "",
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            ),
            (400, "Invalid URL", "BadRequest", "Invalid URL"),
            (406, "", "NotAcceptable", "Not Acceptable"),
            (408, " slow \n", "Timeout", "slow"),
            (413, "", "RequestEntityTooLarge", "Payload Too Large"),
            (502, "", "Unknown", "Bad Gateway"),
        ];
        for (code, text, reason, message) in cases {
            let err = ApiError::from_code(StatusCode::from_u16(code).unwrap(), text);
            assert_eq!(
                (err.code().as_u16(), err.reason(), err.message()),
                (code, reason, message)
            );
        }
    }
}
