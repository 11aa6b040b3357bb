//! k8s.io/apiserver's serving flags that shape the TLS listener: `--tls-cipher-suites` and
//! `--tls-min-version` with Go's names, turned into a rustls crypto provider, and
//! `--permit-port-sharing` for the listening socket.
//!
//! Go semantics are kept: the cipher-suite list restricts TLS 1.2 only (Go always offers its
//! three TLS 1.3 suites, whatever the list says), and the names are Go's IANA names. rustls
//! implements the six ECDHE AEAD suites of TLS 1.2; the others Go knows (CBC, static RSA key
//! exchange, RC4, 3DES) are dropped with one warning, and only a list left with no suite augur
//! can serve is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use clap::{ArgAction, Args};
use rustls::ProtocolVersion;
use rustls::crypto::CryptoProvider;
use tokio::net::{TcpListener, TcpSocket};

/// Go's cipher-suite names (`tls.CipherSuites()`, `tls.InsecureCipherSuites()` and the two
/// legacy CHACHA20 spellings k8s.io/component-base keeps) with their IANA numbers.
const GO_CIPHER_SUITES: &[(&str, u16)] = &[
    ("TLS_RSA_WITH_RC4_128_SHA", 0x0005),
    ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x000a),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", 0x002f),
    ("TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035),
    ("TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003c),
    ("TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009c),
    ("TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009d),
    ("TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", 0xc007),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xc009),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xc00a),
    ("TLS_ECDHE_RSA_WITH_RC4_128_SHA", 0xc011),
    ("TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xc012),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xc013),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xc014),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xc023),
    ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xc027),
    ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xc02b),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xc02c),
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f),
    ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca8),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", 0xcca8),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca9),
    ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", 0xcca9),
    ("TLS_AES_128_GCM_SHA256", 0x1301),
    ("TLS_AES_256_GCM_SHA384", 0x1302),
    ("TLS_CHACHA20_POLY1305_SHA256", 0x1303),
];

/// Go's `--tls-min-version` names.
const GO_VERSIONS: [&str; 4] = [
    "VersionTLS10",
    "VersionTLS11",
    "VersionTLS12",
    "VersionTLS13",
];

/// The serving flags of k8s.io/apiserver's SecureServingOptions augur implements beyond the
/// certificate and address.
#[derive(Debug, Clone, Default, Args)]
pub struct ServingArgs {
    /// TLS 1.2 cipher suites, Go's IANA names, comma-separated (e.g.
    /// TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256). Names rustls does not implement (CBC, static
    /// RSA key exchange) are dropped with a warning; TLS 1.3 suites are always on, as in Go.
    #[arg(long, value_delimiter = ',')]
    pub tls_cipher_suites: Vec<String>,
    /// Lowest TLS version: VersionTLS12 (default) or VersionTLS13. VersionTLS10 and
    /// VersionTLS11 serve TLS 1.2 and up, with a warning.
    #[arg(long)]
    pub tls_min_version: Option<String>,
    /// Set SO_REUSEPORT on the serving socket, so several processes can bind the same port.
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, default_value = "false", default_missing_value = "true")]
    pub permit_port_sharing: bool,
    /// Most HTTPS connections open at once (0: the open-file limit less 64 and an eighth,
    /// at most 4096). At the cap the connection idle longest is closed to make room.
    #[arg(long, default_value_t = 0)]
    pub max_connections: usize,
}

/// What the TLS flags make: a provider with the allowed suites, and what to warn about.
#[derive(Debug, Clone)]
pub struct TlsPolicy {
    /// ring, restricted to the suites the flags allow.
    pub provider: Arc<CryptoProvider>,
    /// Warnings to log once (suites dropped, version raised).
    pub warnings: Vec<String>,
}

impl ServingArgs {
    /// The accept loop's bounds these flags give (`--max-connections`).
    pub fn limits(&self) -> super::ServeLimits {
        let mut limits = super::ServeLimits::default();
        if self.max_connections > 0 {
            limits.max_connections = self.max_connections;
        }
        limits
    }

    /// The crypto provider `--tls-cipher-suites` and `--tls-min-version` describe. An unknown
    /// name, or a list with no suite augur can serve, is an error naming the flag.
    pub fn tls_policy(&self) -> Result<TlsPolicy, String> {
        let mut provider = rustls::crypto::ring::default_provider();
        let mut warnings = Vec::new();
        let names: Vec<&str> = self
            .tls_cipher_suites
            .iter()
            .map(|n| n.trim())
            .filter(|n| !n.is_empty())
            .collect();
        if !names.is_empty() {
            let mut allowed = Vec::new();
            let mut dropped = Vec::new();
            for name in &names {
                let Some(&(_, id)) = GO_CIPHER_SUITES.iter().find(|(n, _)| n == name) else {
                    return Err(format!(
                        "--tls-cipher-suites: cipher suite {name} not supported or doesn't exist (Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
                    ));
                };
                if provider
                    .cipher_suites
                    .iter()
                    .any(|s| u16::from(s.suite()) == id)
                {
                    allowed.push(id);
                } else {
                    dropped.push(format!("{name} ({})", why_unsupported(name)));
                }
            }
            if allowed.is_empty() {
                return Err(format!(
                    "--tls-cipher-suites: none of the listed suites can be served by augur (rustls): {}; list at least one of {}",
                    dropped.join(", "),
                    served_names().join(", ")
                ));
            }
            // Go ignores the list for TLS 1.3: its suites stay on.
            provider.cipher_suites.retain(|s| {
                s.version().version == ProtocolVersion::TLSv1_3
                    || allowed.contains(&u16::from(s.suite()))
            });
            if !dropped.is_empty() {
                warnings.push(format!(
                    "--tls-cipher-suites: augur (rustls) does not implement {}; serving the other {} listed",
                    dropped.join(", "),
                    allowed.len()
                ));
            }
        }
        match self.tls_min_version.as_deref().map(str::trim) {
            None | Some("") | Some("VersionTLS12") => {}
            Some("VersionTLS13") => provider
                .cipher_suites
                .retain(|s| s.version().version == ProtocolVersion::TLSv1_3),
            Some(old @ ("VersionTLS10" | "VersionTLS11")) => warnings.push(format!(
                "--tls-min-version={old}: augur serves TLS 1.2 and 1.3 only (TLS 1.0 and 1.1 are deprecated, RFC 8996), so the minimum is TLS 1.2"
            )),
            Some(other) => {
                return Err(format!(
                    "--tls-min-version: unknown tls version {other:?}; expected one of {}",
                    GO_VERSIONS.join(", ")
                ));
            }
        }
        Ok(TlsPolicy {
            provider: Arc::new(provider),
            warnings,
        })
    }

    /// Binds the serving socket (SO_REUSEADDR as Go sets it, SO_REUSEPORT with
    /// `--permit-port-sharing`) and listens.
    pub fn bind(&self, addr: SocketAddr) -> std::io::Result<TcpListener> {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        if self.permit_port_sharing {
            socket.set_reuseport(true)?;
        }
        socket.bind(addr)?;
        socket.listen(1024)
    }
}

/// Why rustls has no such suite.
fn why_unsupported(name: &str) -> &'static str {
    if name.contains("RC4") {
        "RC4"
    } else if name.contains("3DES") {
        "3DES"
    } else if name.starts_with("TLS_RSA_") {
        "static RSA key exchange"
    } else if name.contains("_CBC_") {
        "CBC mode"
    } else {
        "not in rustls"
    }
}

/// Go names of the TLS 1.2 suites augur serves.
fn served_names() -> Vec<&'static str> {
    let provider = rustls::crypto::ring::default_provider();
    GO_CIPHER_SUITES
        .iter()
        .filter(|(name, id)| {
            !name.ends_with("_POLY1305")
                && !name.starts_with("TLS_AES")
                && !name.starts_with("TLS_CHACHA")
                && provider
                    .cipher_suites
                    .iter()
                    .any(|s| u16::from(s.suite()) == *id)
        })
        .map(|(name, _)| *name)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn args(suites: &str, min: Option<&str>) -> ServingArgs {
        ServingArgs {
            tls_cipher_suites: suites.split(',').map(str::to_owned).collect(),
            tls_min_version: min.map(str::to_owned),
            ..ServingArgs::default()
        }
    }

    fn suites(policy: &TlsPolicy) -> Vec<String> {
        policy
            .provider
            .cipher_suites
            .iter()
            .map(|s| format!("{:?}", s.suite()))
            .collect()
    }

    #[test]
    fn go_names_match_iana_numbers() {
        // Every suite rustls has a name for is named the same (modulo TLS13_ and the legacy
        // CHACHA20 spellings); the few it leaves unnamed print as their number.
        let mut named = 0;
        for (name, id) in GO_CIPHER_SUITES {
            let rustls_name = format!("{:?}", rustls::CipherSuite::from(*id));
            if rustls_name == format!("CipherSuite({id:#x})") {
                continue;
            }
            let expected = name
                .replace("TLS_AES_", "TLS13_AES_")
                .replace("TLS_CHACHA20", "TLS13_CHACHA20");
            let expected = if expected.ends_with("_POLY1305") {
                format!("{expected}_SHA256")
            } else {
                expected
            };
            assert_eq!(rustls_name, expected, "{name}");
            named += 1;
        }
        assert_eq!(named, 17, "names checked");
    }

    #[test]
    fn kube_prometheus_list_keeps_the_aead_suites_and_warns_about_the_rest() {
        // kube-prometheus manifests/prometheusAdapter-deployment.yaml.
        let list = "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,TLS_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_256_GCM_SHA384,TLS_RSA_WITH_AES_128_CBC_SHA,TLS_RSA_WITH_AES_256_CBC_SHA";
        let policy = args(list, None).tls_policy().unwrap();
        assert_eq!(suites(&policy).len(), 9, "3 TLS 1.3 + 6 TLS 1.2");
        assert_eq!(
            policy.warnings,
            [
                "--tls-cipher-suites: augur (rustls) does not implement TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA (CBC mode), TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (CBC mode), TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA (CBC mode), TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA (CBC mode), TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA (CBC mode), TLS_RSA_WITH_AES_128_GCM_SHA256 (static RSA key exchange), TLS_RSA_WITH_AES_256_GCM_SHA384 (static RSA key exchange), TLS_RSA_WITH_AES_128_CBC_SHA (static RSA key exchange), TLS_RSA_WITH_AES_256_CBC_SHA (static RSA key exchange); serving the other 6 listed"
            ]
        );
    }

    #[test]
    fn a_short_list_restricts_tls12_only() {
        let policy = args("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", None)
            .tls_policy()
            .unwrap();
        assert_eq!(
            suites(&policy),
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
            ]
        );
        assert!(policy.warnings.is_empty());
        // No list: ring's defaults.
        assert_eq!(
            suites(&ServingArgs::default().tls_policy().unwrap()).len(),
            9
        );
    }

    #[test]
    fn errors_name_the_flag_and_why() {
        assert_eq!(
            args("TLS_FOO", None).tls_policy().unwrap_err(),
            "--tls-cipher-suites: cipher suite TLS_FOO not supported or doesn't exist (Go's names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)"
        );
        assert_eq!(
            args(
                "TLS_RSA_WITH_AES_128_CBC_SHA,TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
                None
            )
            .tls_policy()
            .unwrap_err(),
            "--tls-cipher-suites: none of the listed suites can be served by augur (rustls): TLS_RSA_WITH_AES_128_CBC_SHA (static RSA key exchange), TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA (3DES); list at least one of TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        );
        assert_eq!(
            ServingArgs {
                tls_min_version: Some("TLS1.2".into()),
                ..ServingArgs::default()
            }
            .tls_policy()
            .unwrap_err(),
            "--tls-min-version: unknown tls version \"TLS1.2\"; expected one of VersionTLS10, VersionTLS11, VersionTLS12, VersionTLS13"
        );
    }

    #[test]
    fn min_version() {
        let tls13 = args("", Some("VersionTLS13")).tls_policy().unwrap();
        assert_eq!(
            suites(&tls13),
            [
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_CHACHA20_POLY1305_SHA256"
            ]
        );
        let tls12 = args("", Some("VersionTLS12")).tls_policy().unwrap();
        assert_eq!(suites(&tls12).len(), 9);
        assert!(tls12.warnings.is_empty());
        let tls10 = args("", Some("VersionTLS10")).tls_policy().unwrap();
        assert_eq!(suites(&tls10).len(), 9);
        assert_eq!(
            tls10.warnings,
            [
                "--tls-min-version=VersionTLS10: augur serves TLS 1.2 and 1.3 only (TLS 1.0 and 1.1 are deprecated, RFC 8996), so the minimum is TLS 1.2"
            ]
        );
    }

    #[tokio::test]
    async fn port_sharing_lets_two_sockets_bind_one_port() {
        let shared = ServingArgs {
            permit_port_sharing: true,
            ..ServingArgs::default()
        };
        let first = shared.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        let second = shared.bind(addr).unwrap();
        assert_eq!(second.local_addr().unwrap(), addr);
        // Without the flag the port is taken.
        let err = ServingArgs::default().bind(addr).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }
}
