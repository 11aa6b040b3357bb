//! Plain HTTP sent to the HTTPS port: answered with a 400 `Status` saying so, as
//! kube-apiserver answers "Client sent an HTTP request to an HTTPS server.", instead of TLS
//! alert bytes (which kubectl printed as `malformed HTTP response "\x15\x03..."`).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// kube-apiserver's (Go's) words.
pub const MESSAGE: &str = "Client sent an HTTP request to an HTTPS server.";

/// Whether the first byte of a connection starts plain HTTP rather than TLS: a TLS record
/// of the handshake starts with 0x16, an HTTP request with its method in capitals.
pub(super) fn looks_like_http(first: u8) -> bool {
    first.is_ascii_uppercase()
}

/// The whole answer: HTTP/1.1 400 with a `Status` body, and the connection closed.
pub(super) fn response() -> Vec<u8> {
    let status = Status {
        code: Some(400),
        message: Some(MESSAGE.to_owned()),
        reason: Some("BadRequest".to_owned()),
        status: Some("Failure".to_owned()),
        ..Status::default()
    };
    // Serialising strings and an integer cannot fail.
    let body = serde_json::to_vec(&status).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Reads the request head (at most 8 KiB, within `timeout`) so that closing does not reset
/// the connection before the client reads the answer, writes the answer and closes.
pub(super) async fn answer(mut stream: TcpStream, timeout: Duration) {
    let mut head = Vec::with_capacity(1024);
    let _ = tokio::time::timeout(timeout, async {
        let mut buf = [0u8; 1024];
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let _ = tokio::time::timeout(timeout, async {
        stream.write_all(&response()).await?;
        stream.shutdown().await
    })
    .await;
}
