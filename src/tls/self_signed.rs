//! The self-signed fallback: a certificate for `localhost` kept in `--cert-dir`, as
//! k8s.io/apiserver does when no serving key pair is given.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::RootCertStore;
use rustls_pki_types::{ServerName, UnixTime};

use super::files::write_file_atomically;
use super::issue::{Validity, self_signed_serving};
use super::key_pair::{KeyPairFiles, load_key_pair};
use super::{Error, Result};

/// File name of the self-signed certificate in the certificate directory.
pub const SELF_SIGNED_CERT_FILE: &str = "apiserver.crt";
/// File name of the self-signed private key in the certificate directory.
pub const SELF_SIGNED_KEY_FILE: &str = "apiserver.key";
/// Names the self-signed certificate is valid for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];
/// How long a generated self-signed certificate is valid (k8s.io/apiserver uses a year).
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A self-signed certificate expiring sooner than this is regenerated at start.
const SELF_SIGNED_MIN_REMAINING: Duration = Duration::from_secs(24 * 3600);

/// Use the self-signed pair in `cert_dir` when it is usable (loads, valid for `localhost`
/// for at least another day), else generate a new one there.
pub fn ensure_self_signed(cert_dir: &Path) -> Result<KeyPairFiles> {
    let files = self_signed_files(cert_dir);
    if files.cert.exists() && files.key.exists() {
        match self_signed_is_usable(&files) {
            Ok(()) => {
                tracing::info!(cert = %files.cert.display(), "using existing self-signed certificate");
                return Ok(files);
            }
            Err(reason) => {
                tracing::info!(cert = %files.cert.display(), %reason, "replacing self-signed certificate");
            }
        }
    }
    generate_self_signed(cert_dir)
}

fn self_signed_files(cert_dir: &Path) -> KeyPairFiles {
    KeyPairFiles {
        cert: cert_dir.join(SELF_SIGNED_CERT_FILE),
        key: cert_dir.join(SELF_SIGNED_KEY_FILE),
    }
}

fn self_signed_is_usable(files: &KeyPairFiles) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = load_key_pair(files, &provider).map_err(|e| e.to_string())?;
    let leaf = key.end_entity_cert().map_err(|e| e.to_string())?.clone();
    let mut roots = RootCertStore::empty();
    roots.add(leaf.clone()).map_err(|e| e.to_string())?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| e.to_string())?;
    let at = SystemTime::now() + SELF_SIGNED_MIN_REMAINING;
    let at = at.duration_since(UNIX_EPOCH).map_err(|e| e.to_string())?;
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    rustls::client::danger::ServerCertVerifier::verify_server_cert(
        verifier.as_ref(),
        &leaf,
        &key.cert[1..],
        &name,
        &[],
        UnixTime::since_unix_epoch(at),
    )
    .map(|_| ())
    .map_err(|e| format!("not valid for localhost for another day: {e}"))
}

/// Generate a new self-signed pair for `localhost`, `127.0.0.1` and `::1` in `cert_dir`
/// (created if missing), replacing any existing one; the key file is mode 0600.
pub fn generate_self_signed(cert_dir: &Path) -> Result<KeyPairFiles> {
    let files = self_signed_files(cert_dir);
    let names = SELF_SIGNED_NAMES.map(str::to_owned);
    let now = SystemTime::now();
    let validity = Validity::new(now, SELF_SIGNED_VALIDITY);
    let common_name = format!("localhost@{}", validity.since_epoch().as_secs());
    let pair = self_signed_serving(&names, common_name, validity)?;
    fs::create_dir_all(cert_dir).map_err(|source| Error::Write {
        path: cert_dir.to_owned(),
        source,
    })?;
    write_atomically(&files.key, pair.key.as_bytes(), 0o600)?;
    write_atomically(&files.cert, pair.cert.as_bytes(), 0o644)?;
    tracing::info!(cert = %files.cert.display(), "generated self-signed certificate");
    Ok(files)
}

fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    write_file_atomically(path, contents, mode).map_err(|source| Error::Write {
        path: path.to_owned(),
        source,
    })
}
