//! Pieces of kube-apiserver answers for the double's routes: discovery entries, metadata
//! (`PartialObjectMetadata`) objects and lists, and WATCH streams.

use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use serde_json::{Value, json};

/// The `/api` answer (core group versions).
pub(crate) fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]})
}

/// An APIResourceList entry for a resource that can be listed and watched.
pub(crate) fn api_resource(name: &str, namespaced: bool, kind: &str) -> Value {
    json!({"name": name, "singularName": name.trim_end_matches('s'), "namespaced": namespaced, "kind": kind, "verbs": ["get", "list", "watch"]})
}

/// One object as a metadata LIST or WATCH carries it (no namespace when `namespace` is
/// empty: cluster-scoped).
pub(crate) fn partial_metadata(namespace: &str, name: &str, labels: Value) -> Value {
    let mut metadata = json!({"name": name, "resourceVersion": "10", "labels": labels});
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": metadata})
}

/// A metadata LIST body of `items` at resourceVersion 10.
pub(crate) fn metadata_list(items: Vec<Value>) -> Value {
    json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "10"}, "items": items})
}

/// A WATCH answer: a BOOKMARK, the `events`, then nothing more while the connection stays
/// open, for ever or until `ends_after` (the request's `timeoutSeconds`, as the real server
/// ends a watch).
pub(crate) fn watch_response(events: Vec<Value>, ends_after: Option<Duration>) -> Response {
    let mut lines = vec![
        json!({"type": "BOOKMARK", "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "11"}}}),
    ];
    lines.extend(events);
    let chunks: Vec<Result<bytes::Bytes, std::convert::Infallible>> = lines
        .into_iter()
        .map(|event| Ok(bytes::Bytes::from(format!("{event}\n"))))
        .collect();
    let end = futures::stream::once(async move {
        match ends_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
        Ok(bytes::Bytes::new())
    });
    let stream = futures::StreamExt::chain(futures::stream::iter(chunks), end);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap()
}
