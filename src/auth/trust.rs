//! Trust material for client certificates: the client CA and the front-proxy (request
//! header) CA with its allowed names and header names, from flags or from the
//! `kube-system/extension-apiserver-authentication` ConfigMap, swapped atomically when the
//! ConfigMap changes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use rustls::crypto::CryptoProvider;

use super::x509::CaBundle;

/// Namespace of the ConfigMap kube-apiserver publishes its authentication settings in.
pub const CONFIGMAP_NAMESPACE: &str = "kube-system";
/// Name of that ConfigMap.
pub const CONFIGMAP_NAME: &str = "extension-apiserver-authentication";

/// ConfigMap key: CA bundle for x509 client certificates.
pub const KEY_CLIENT_CA: &str = "client-ca-file";
/// ConfigMap key: CA bundle for the front-proxy client certificate.
pub const KEY_REQUESTHEADER_CA: &str = "requestheader-client-ca-file";
/// ConfigMap key: JSON list of front-proxy certificate common names (empty = any).
pub const KEY_ALLOWED_NAMES: &str = "requestheader-allowed-names";
/// ConfigMap key: JSON list of user name headers.
pub const KEY_USERNAME_HEADERS: &str = "requestheader-username-headers";
/// ConfigMap key: JSON list of uid headers.
pub const KEY_UID_HEADERS: &str = "requestheader-uid-headers";
/// ConfigMap key: JSON list of group headers.
pub const KEY_GROUP_HEADERS: &str = "requestheader-group-headers";
/// ConfigMap key: JSON list of extra-attribute header prefixes.
pub const KEY_EXTRA_PREFIXES: &str = "requestheader-extra-headers-prefix";

/// Front-proxy (request header) authentication settings.
#[derive(Debug, Clone)]
pub struct RequestHeaderTrust {
    /// CA that signs the front-proxy client certificate.
    pub ca: CaBundle,
    /// Common names accepted; empty accepts any certificate the CA signed.
    pub allowed_names: Vec<String>,
    /// Headers holding the user name (the first non-empty one wins).
    pub username_headers: Vec<String>,
    /// Headers holding the user's uid.
    pub uid_headers: Vec<String>,
    /// Headers holding groups (every value of every header).
    pub group_headers: Vec<String>,
    /// Prefixes of headers holding extra attributes.
    pub extra_prefixes: Vec<String>,
}

/// The trust material requests are authenticated with.
#[derive(Debug, Clone, Default)]
pub struct TrustMaterial {
    /// CA for x509 client certificate users; `None` disables that authenticator.
    pub client_ca: Option<CaBundle>,
    /// Front-proxy settings; `None` disables request header authentication.
    pub request_header: Option<RequestHeaderTrust>,
}

impl TrustMaterial {
    /// One line for logs: what is trusted.
    pub fn describe(&self) -> String {
        let client = match &self.client_ca {
            Some(ca) => format!("client CA {} ({} certificates)", ca.origin(), ca.len()),
            None => "no client CA (x509 client certificate users off)".to_owned(),
        };
        let front = match &self.request_header {
            Some(rh) => format!(
                "front-proxy CA {} ({} certificates), allowed names {:?}, user headers {:?}, group headers {:?}, extra prefixes {:?}",
                rh.ca.origin(),
                rh.ca.len(),
                rh.allowed_names,
                rh.username_headers,
                rh.group_headers,
                rh.extra_prefixes
            ),
            None => "no front-proxy CA (request header authentication off)".to_owned(),
        };
        format!("{client}; {front}")
    }
}

fn json_list(data: &BTreeMap<String, String>, key: &str) -> Result<Vec<String>, String> {
    match data.get(key).map(|v| v.trim()) {
        None | Some("") => Ok(Vec::new()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            format!(
                "configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} key {key}: expected a JSON list of strings: {e}"
            )
        }),
    }
}

/// The client CA in the ConfigMap's data; `Ok(None)` when the key is absent or empty.
pub fn client_ca_from_configmap(
    data: &BTreeMap<String, String>,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<CaBundle>, String> {
    match data.get(KEY_CLIENT_CA) {
        Some(pem) if !pem.trim().is_empty() => CaBundle::from_pem(
            pem,
            &format!("configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} key {KEY_CLIENT_CA}"),
            provider.clone(),
        )
        .map(Some),
        _ => Ok(None),
    }
}

/// The front-proxy settings in the ConfigMap's data; `Ok(None)` when it has no
/// `requestheader-client-ca-file`.
pub fn request_header_from_configmap(
    data: &BTreeMap<String, String>,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<RequestHeaderTrust>, String> {
    let Some(pem) = data
        .get(KEY_REQUESTHEADER_CA)
        .filter(|p| !p.trim().is_empty())
    else {
        return Ok(None);
    };
    let ca = CaBundle::from_pem(
        pem,
        &format!("configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} key {KEY_REQUESTHEADER_CA}"),
        provider.clone(),
    )?;
    Ok(Some(RequestHeaderTrust {
        ca,
        allowed_names: json_list(data, KEY_ALLOWED_NAMES)?,
        username_headers: json_list(data, KEY_USERNAME_HEADERS)?,
        uid_headers: json_list(data, KEY_UID_HEADERS)?,
        group_headers: json_list(data, KEY_GROUP_HEADERS)?,
        extra_prefixes: json_list(data, KEY_EXTRA_PREFIXES)?,
    }))
}

/// Read a CA bundle file given by a flag.
pub fn ca_from_file(
    flag: &str,
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<CaBundle, String> {
    let origin = format!("{flag} {}", path.display());
    let pem = std::fs::read_to_string(path).map_err(|e| format!("{origin}: {e}"))?;
    CaBundle::from_pem(&pem, &origin, provider.clone())
}

/// The current trust material, shared by every request; parts that come from the ConfigMap
/// are replaced when it changes, parts given by flags never are.
#[derive(Debug)]
pub struct TrustStore {
    current: ArcSwap<TrustMaterial>,
    client_ca_from_configmap: bool,
    request_header_from_configmap: bool,
    provider: Arc<CryptoProvider>,
}

impl TrustStore {
    /// A store starting with `fixed`; the `*_from_configmap` parts follow the ConfigMap.
    pub fn new(
        fixed: TrustMaterial,
        client_ca_from_configmap: bool,
        request_header_from_configmap: bool,
        provider: Arc<CryptoProvider>,
    ) -> Self {
        Self {
            current: ArcSwap::from_pointee(fixed),
            client_ca_from_configmap,
            request_header_from_configmap,
            provider,
        }
    }

    /// The material new requests use.
    pub fn current(&self) -> Arc<TrustMaterial> {
        self.current.load_full()
    }

    /// Whether any part follows the ConfigMap.
    pub fn follows_configmap(&self) -> bool {
        self.client_ca_from_configmap || self.request_header_from_configmap
    }

    /// Replace the parts given by flags (CA files re-read) with `from_flags`' parts; the
    /// ConfigMap's parts are untouched. Returns whether anything changed.
    pub fn apply_flags(&self, from_flags: &TrustMaterial) -> bool {
        let before = self.current();
        let mut next = (*before).clone();
        if !self.client_ca_from_configmap {
            next.client_ca = from_flags.client_ca.clone();
        }
        if !self.request_header_from_configmap {
            next.request_header = from_flags.request_header.clone();
        }
        let changed = describe_key(&before) != describe_key(&next);
        if changed {
            tracing::info!(trust = %next.describe(), "authentication CA files reloaded");
            self.current.store(Arc::new(next));
        }
        changed
    }

    /// Apply the ConfigMap's data (`None`: the ConfigMap does not exist). A part that fails to
    /// parse keeps its previous value and is logged; returns whether anything changed.
    pub fn apply_configmap(&self, data: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        let data = data.unwrap_or(&empty);
        let before = self.current();
        let mut next = (*before).clone();
        if self.client_ca_from_configmap {
            match client_ca_from_configmap(data, &self.provider) {
                Ok(ca) => next.client_ca = ca,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring invalid client CA; keeping the previous one")
                }
            }
        }
        if self.request_header_from_configmap {
            match request_header_from_configmap(data, &self.provider) {
                Ok(rh) => next.request_header = rh,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring invalid front-proxy settings; keeping the previous ones")
                }
            }
        }
        let changed = describe_key(&before) != describe_key(&next);
        if changed {
            tracing::info!(trust = %next.describe(), "authentication trust material loaded from configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}");
            self.current.store(Arc::new(next));
        }
        changed
    }

    /// Follow the ConfigMap with a kube-rs watcher (list + watch of that one object, with
    /// backoff on errors) until the task is dropped.
    pub async fn watch(self: Arc<Self>, client: kube::Client) {
        let api: Api<ConfigMap> = Api::namespaced(client, CONFIGMAP_NAMESPACE);
        let config = watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP_NAME}"));
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        let mut listed = false;
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Init) => listed = false,
                Ok(Event::InitApply(cm) | Event::Apply(cm)) => {
                    listed = true;
                    self.apply_configmap(Some(&cm.data.unwrap_or_default()));
                }
                Ok(Event::InitDone) => {
                    if !listed {
                        self.apply_configmap(None);
                    }
                }
                Ok(Event::Delete(_)) => {
                    self.apply_configmap(None);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "watching configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME} failed; retrying with backoff")
                }
            }
        }
    }
}

/// What makes two materials different: the CA PEM and the request header settings.
fn describe_key(material: &TrustMaterial) -> (Option<String>, Option<[String; 6]>) {
    (
        material.client_ca.as_ref().map(|ca| ca.pem().to_owned()),
        material.request_header.as_ref().map(|rh| {
            [
                rh.ca.pem().to_owned(),
                rh.allowed_names.join("\n"),
                rh.username_headers.join("\n"),
                rh.uid_headers.join("\n"),
                rh.group_headers.join("\n"),
                rh.extra_prefixes.join("\n"),
            ]
        }),
    )
}

/// One GET of the ConfigMap, bounded by `timeout`; `Ok(None)` when it does not exist.
pub async fn lookup(
    client: kube::Client,
    timeout: Duration,
) -> Result<Option<BTreeMap<String, String>>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client, CONFIGMAP_NAMESPACE);
    match tokio::time::timeout(timeout, api.get_opt(CONFIGMAP_NAME)).await {
        Ok(Ok(cm)) => Ok(cm.map(|cm| cm.data.unwrap_or_default())),
        Ok(Err(e)) => Err(format!(
            "reading configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}: {}",
            super::review::describe_kube_error(&e)
        )),
        Err(_) => Err(format!(
            "reading configmap {CONFIGMAP_NAMESPACE}/{CONFIGMAP_NAME}: no answer within {}",
            humantime::format_duration(timeout)
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ca_pem(name: &str) -> String {
        crate::testing::TestCa::new(name).pem
    }

    fn ring() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn configmap_as_kube_apiserver_writes_it() {
        let client = ca_pem("client-ca");
        let front = ca_pem("front-proxy-ca");
        let data = data(&[
            (KEY_CLIENT_CA, &client),
            (KEY_REQUESTHEADER_CA, &front),
            (KEY_ALLOWED_NAMES, r#"["front-proxy-client"]"#),
            (KEY_USERNAME_HEADERS, r#"["X-Remote-User"]"#),
            (KEY_GROUP_HEADERS, r#"["X-Remote-Group"]"#),
            (KEY_EXTRA_PREFIXES, r#"["X-Remote-Extra-"]"#),
        ]);
        let ca = client_ca_from_configmap(&data, &ring()).unwrap().unwrap();
        assert_eq!(
            ca.origin(),
            "configmap kube-system/extension-apiserver-authentication key client-ca-file"
        );
        let rh = request_header_from_configmap(&data, &ring())
            .unwrap()
            .unwrap();
        assert_eq!(rh.allowed_names, ["front-proxy-client"]);
        assert_eq!(rh.username_headers, ["X-Remote-User"]);
        assert!(rh.uid_headers.is_empty());
        assert_eq!(rh.group_headers, ["X-Remote-Group"]);
        assert_eq!(rh.extra_prefixes, ["X-Remote-Extra-"]);
    }

    #[test]
    fn missing_keys_disable_parts_and_bad_json_is_named() {
        let none = data(&[]);
        assert!(client_ca_from_configmap(&none, &ring()).unwrap().is_none());
        assert!(
            request_header_from_configmap(&none, &ring())
                .unwrap()
                .is_none()
        );
        let front = ca_pem("front-proxy-ca");
        let bad = data(&[(KEY_REQUESTHEADER_CA, &front), (KEY_ALLOWED_NAMES, "front")]);
        let err = request_header_from_configmap(&bad, &ring()).unwrap_err();
        assert!(
            err.starts_with("configmap kube-system/extension-apiserver-authentication key requestheader-allowed-names: expected a JSON list of strings: "),
            "{err}"
        );
    }

    #[test]
    fn store_follows_configmap_parts_and_keeps_flag_parts() {
        let flag_ca = CaBundle::from_pem(&ca_pem("flag"), "--client-ca-file f", ring()).unwrap();
        let store = TrustStore::new(
            TrustMaterial {
                client_ca: Some(flag_ca),
                request_header: None,
            },
            false,
            true,
            ring(),
        );
        let front = ca_pem("front-proxy-ca");
        let cm = data(&[
            (KEY_CLIENT_CA, &front),
            (KEY_REQUESTHEADER_CA, &front),
            (KEY_USERNAME_HEADERS, r#"["X-Remote-User"]"#),
        ]);
        assert!(store.apply_configmap(Some(&cm)));
        assert!(!store.apply_configmap(Some(&cm)), "unchanged data");
        let now = store.current();
        assert_eq!(
            now.client_ca.as_ref().unwrap().origin(),
            "--client-ca-file f"
        );
        assert_eq!(now.request_header.as_ref().unwrap().ca.pem(), front);
        // Invalid data keeps the previous front-proxy settings.
        let broken = data(&[(KEY_REQUESTHEADER_CA, "garbage")]);
        assert!(!store.apply_configmap(Some(&broken)));
        assert!(store.current().request_header.is_some());
        // A deleted ConfigMap removes them.
        assert!(store.apply_configmap(None));
        assert!(store.current().request_header.is_none());
        assert!(store.current().client_ca.is_some());
        // A rotated flag file replaces only the flag part.
        store.apply_configmap(Some(&cm));
        let rotated = CaBundle::from_pem(&ca_pem("rotated"), "--client-ca-file f", ring()).unwrap();
        let from_flags = TrustMaterial {
            client_ca: Some(rotated.clone()),
            request_header: None,
        };
        assert!(store.apply_flags(&from_flags));
        assert!(!store.apply_flags(&from_flags));
        let now = store.current();
        assert_eq!(now.client_ca.as_ref().unwrap().pem(), rotated.pem());
        assert_eq!(now.request_header.as_ref().unwrap().ca.pem(), front);
    }
}
