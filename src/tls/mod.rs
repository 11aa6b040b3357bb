//! Serving HTTPS: rustls server config, self-signed fallback certificate, certificate reload, HTTP/1.1 and HTTP/2.
//!
//! [`TlsOptions::load`] resolves the serving key pair (given files, or a self-signed
//! certificate for `localhost` kept in `--cert-dir` like k8s.io/apiserver does) into a
//! [`ServerTls`]; [`serve`] runs the accept loop. The key pair is re-read when the files'
//! modification time or size changes (checked at most once per second, on handshake), so
//! rotated certificates apply to new connections while existing ones keep theirs. Each
//! request carries the connection's [`PeerCertificates`] and `ConnectInfo<SocketAddr>` as
//! extensions, for front-proxy authentication.
//!
//! - `config`: options, ALPN, the rustls server configuration;
//! - `key_pair`: reading a PEM chain and its key;
//! - `reload`: the resolver that re-reads changed files;
//! - `self_signed`: the `--cert-dir` fallback;
//! - `issue`: the one rcgen certificate builder (also behind `augur certs`);
//! - `files`: atomic writes of key and certificate files;
//! - `accept`: the accept loop and shutdown;
//! - `connection`: one connection's handshake and HTTP serving;
//! - `limits`: the connection cap, idle and first-request timeouts;
//! - `plain_http`: the 400 answer to plain HTTP on the HTTPS port;
//! - `trim`: giving the memory of closed connections back to the system;
//! - `policy`: `--tls-cipher-suites`, `--tls-min-version`, `--permit-port-sharing`.

mod accept;
mod config;
mod connection;
mod files;
pub mod issue;
mod key_pair;
mod limits;
#[cfg(test)]
mod misbehaving;
mod plain_http;
pub mod policy;
mod reload;
mod self_signed;
#[cfg(test)]
mod tests;
mod trim;

use std::io;
use std::path::PathBuf;

pub use self::accept::{serve, serve_with};
pub use self::config::{ServerTls, TlsOptions, alpn_protocols, server_config};
pub use self::connection::PeerCertificates;
pub use self::files::write_file_atomically;
pub use self::key_pair::{KeyPairFiles, load_key_pair};
pub use self::limits::{
    KEEP_ALIVE_TIMEOUT, MAX_CONNECTIONS_CEILING, ServeLimits, default_max_connections,
    open_file_limit,
};
pub use self::plain_http::MESSAGE as PLAIN_HTTP_MESSAGE;
pub use self::reload::ReloadingCertResolver;
pub use self::self_signed::{
    SELF_SIGNED_CERT_FILE, SELF_SIGNED_KEY_FILE, SELF_SIGNED_NAMES, SELF_SIGNED_VALIDITY,
    ensure_self_signed, generate_self_signed,
};

/// Installs ring as the process-wide rustls provider, for serving and for every client
/// (idempotent).
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Errors of this module; messages name the file and the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Only one of certificate and key file was given.
    #[error("--tls-cert-file and --tls-private-key-file must be given together")]
    Incomplete,
    /// A file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file or directory could not be written.
    #[error("writing {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("parsing PEM in {}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rustls_pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    #[error("no certificate found in {}", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key is unusable or does not match the certificate.
    #[error("key pair {} / {} is unusable: {source}", cert.display(), key.display())]
    KeyPair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// The cause.
        source: rustls::Error,
    },
    /// rcgen failed to create the self-signed certificate.
    #[error("generating a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls rejected the server configuration.
    #[error("building the TLS server configuration: {0}")]
    Config(rustls::Error),
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;
