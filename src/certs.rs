//! `augur certs`: creates a CA and the serving certificate for augur's Service, and prints
//! the `caBundle` for the APIService objects.
//!
//! kube-aggregator connects to `https://<service>.<namespace>.svc:443` and checks the
//! serving certificate against the APIService's `caBundle` for exactly that name. This
//! command writes, into `--out`:
//!
//! - `ca.crt`: the CA bundle: a new CA, followed by the first CA of the `ca.crt` it
//!   replaces (with `--force`), so the previous serving certificate stays trusted while the
//!   new one rolls out;
//! - `tls.crt`: the serving certificate, signed by the new CA, for `<service>`,
//!   `<service>.<namespace>`, `<service>.<namespace>.svc` and
//!   `<service>.<namespace>.svc.cluster.local`;
//! - `tls.key`: its private key (mode 0600).
//!
//! The CA's private key is never written: it signs this one certificate and is dropped, so
//! the bundle trusts nothing else. The files go to the repository's top-level `certs/` by
//! default, where the kustomize component `certs/kustomization.yaml` (used by `manifests/`)
//! makes them a `kubernetes.io/tls` Secret and the APIServices' `caBundle` (base64 of
//! `ca.crt`). `augur certs verify` checks a running server against a `caBundle`.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::tls::issue::{Ca, Validity};

/// File name of the CA bundle.
pub const CA_FILE: &str = "ca.crt";
/// File name of the serving certificate.
pub const CERT_FILE: &str = "tls.crt";
/// File name of the serving key.
pub const KEY_FILE: &str = "tls.key";

pub mod verify;

/// Flags of `augur certs` (and its `verify` subcommand).
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CertsArgs {
    /// `verify`; without it, create the certificates.
    #[command(subcommand)]
    pub action: Option<CertsAction>,
    /// Namespace augur's Service lives in.
    #[arg(long, default_value = "augur")]
    pub namespace: String,
    /// Name of augur's Service.
    #[arg(long, default_value = "augur")]
    pub service: String,
    /// Directory for ca.crt, tls.crt and tls.key; the default, the repository's certs/, is
    /// where `kubectl apply -k manifests/` reads them.
    #[arg(long, default_value = "certs")]
    pub out: PathBuf,
    /// Validity of the CA and the serving certificate, in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Replace existing files (the CA being replaced stays in the new ca.crt bundle).
    #[arg(long)]
    pub force: bool,
}

/// What `augur certs` does besides creating certificates.
#[derive(Debug, Clone, Subcommand)]
pub enum CertsAction {
    /// Check a running server's certificate against a caBundle, as kube-aggregator does.
    Verify(verify::VerifyArgs),
}

/// Why `augur certs` failed; messages name the file or the flag.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `--service` or `--namespace` is not a DNS label.
    #[error(
        "--{flag} {value:?} is not a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
    )]
    NotDnsLabel {
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
    },
    /// Files exist and `--force` was not given.
    #[error("{} already exist{}; pass --force to replace {} (the CA being replaced stays trusted in the new {CA_FILE})", list(.0), if .0.len() == 1 { "s" } else { "" }, if .0.len() == 1 { "it" } else { "them" })]
    Exists(Vec<PathBuf>),
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// rcgen failed.
    #[error("generating the certificates: {0}")]
    Generate(#[from] rcgen::Error),
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Result alias of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The DNS names of the serving certificate, the one kube-aggregator checks first.
pub fn dns_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        format!("{service}.{namespace}.svc"),
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// A freshly issued CA and serving key pair, all PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The CA certificate (alone; see [`write`] for the bundle).
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's private key (PKCS#8).
    pub key_pem: String,
    /// The CA's common name (`augur-ca@<unix seconds>.<nanoseconds>`).
    pub ca_name: String,
}

/// Issue a CA and a serving certificate for `dns_names`, both valid from an hour before
/// `now` until `validity` after it. The CA key is dropped on return.
pub fn issue(dns_names: &[String], validity: Duration, now: SystemTime) -> Result<Issued> {
    let validity = Validity::new(now, validity);
    let since_epoch = validity.since_epoch();
    // Unique per run, so that two CAs in one bundle never share a subject.
    let ca_name = format!(
        "augur-ca@{}.{:09}",
        since_epoch.as_secs(),
        since_epoch.subsec_nanos()
    );
    let ca = Ca::new(ca_name, validity)?;
    let serving = ca.issue_serving(dns_names)?;
    Ok(Issued {
        ca_pem: ca.pem(),
        cert_pem: serving.cert,
        key_pem: serving.key,
        ca_name: ca.name().to_owned(),
    })
}

/// Standard base64 (RFC 4648, with padding): how Kubernetes writes `[]byte` fields such as
/// `caBundle` and Secret `data`.
pub fn base64(bytes: &[u8]) -> String {
    use ::base64::Engine as _;
    ::base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What [`write`] did.
#[derive(Debug, Clone)]
pub struct Written {
    /// The flags it ran with.
    pub args: CertsArgs,
    /// The DNS names of the serving certificate.
    pub names: Vec<String>,
    /// The new CA's common name.
    pub ca_name: String,
    /// Whether a previous CA was kept in the bundle.
    pub kept_previous_ca: bool,
    /// The bundle as written to `ca.crt`.
    pub ca_bundle_pem: String,
}

impl Written {
    /// Path of a file in the output directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.args.out.join(name)
    }

    /// `caBundle` for the APIService objects: base64 of `ca.crt`.
    pub fn ca_bundle(&self) -> String {
        base64(self.ca_bundle_pem.as_bytes())
    }

    /// The Secret the Deployment mounts.
    pub fn secret_name(&self) -> String {
        format!("{}-tls", self.args.service)
    }
}

impl fmt::Display for Written {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ca = self.path(CA_FILE);
        let cert = self.path(CERT_FILE);
        let key = self.path(KEY_FILE);
        writeln!(
            f,
            "wrote {}: CA {:?}{}, valid {} days",
            ca.display(),
            self.ca_name,
            if self.kept_previous_ca {
                ", followed by the CA it replaces"
            } else {
                ""
            },
            self.args.days
        )?;
        writeln!(
            f,
            "wrote {}: serving certificate for {}",
            cert.display(),
            self.names.join(", ")
        )?;
        writeln!(f, "wrote {}: its private key (mode 0600)", key.display())?;
        writeln!(f)?;
        writeln!(
            f,
            "caBundle for the APIService objects (base64 of {}):",
            ca.display()
        )?;
        writeln!(f, "{}", self.ca_bundle())?;
        writeln!(f)?;
        writeln!(
            f,
            "From certs/ (the default --out), `kubectl apply -k manifests/` creates the Secret and sets every caBundle from these files. By hand:"
        )?;
        writeln!(
            f,
            "  kubectl -n {} create secret tls {} --cert={} --key={}",
            self.args.namespace,
            self.secret_name(),
            cert.display(),
            key.display()
        )?;
        writeln!(
            f,
            "  for v in v1beta1.custom.metrics.k8s.io v1beta2.custom.metrics.k8s.io v1beta1.external.metrics.k8s.io; do kubectl patch apiservice \"$v\" --type=merge -p \"{{\\\"spec\\\":{{\\\"caBundle\\\":\\\"$(base64 -w0 {})\\\"}}}}\"; done",
            ca.display()
        )
    }
}

fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.first().is_some_and(edge)
        && bytes.last().is_some_and(edge)
        && bytes.iter().all(|b| edge(b) || *b == b'-')
}

/// Issue and write the files, refusing to replace existing ones without `--force`.
pub fn write(args: &CertsArgs) -> Result<Written> {
    for (flag, value) in [("service", &args.service), ("namespace", &args.namespace)] {
        if !is_dns_label(value) {
            return Err(Error::NotDnsLabel {
                flag,
                value: value.clone(),
            });
        }
    }
    let paths = [CA_FILE, CERT_FILE, KEY_FILE].map(|name| args.out.join(name));
    let existing: Vec<PathBuf> = paths.iter().filter(|p| p.exists()).cloned().collect();
    if !existing.is_empty() && !args.force {
        return Err(Error::Exists(existing));
    }
    let [ca_path, cert_path, key_path] = paths;
    // The first certificate of the bundle being replaced (its current CA), if readable.
    let previous_ca = fs::read(&ca_path).ok().and_then(|pem| {
        CertificateDer::pem_slice_iter(&pem)
            .next()
            .and_then(|c| c.ok())
            .map(|der| pem_encode("CERTIFICATE", der.as_ref()))
    });

    let names = dns_names(&args.service, &args.namespace);
    let validity = Duration::from_secs(u64::from(args.days) * 24 * 3600);
    let issued = issue(&names, validity, SystemTime::now())?;
    let mut bundle = issued.ca_pem.clone();
    if let Some(previous) = &previous_ca {
        bundle.push_str(previous);
    }

    fs::create_dir_all(&args.out).map_err(|source| Error::Io {
        path: args.out.clone(),
        source,
    })?;
    write_atomically(&key_path, issued.key_pem.as_bytes(), 0o600)?;
    write_atomically(&cert_path, issued.cert_pem.as_bytes(), 0o644)?;
    write_atomically(&ca_path, bundle.as_bytes(), 0o644)?;
    Ok(Written {
        args: args.clone(),
        names,
        ca_name: issued.ca_name,
        kept_previous_ca: previous_ca.is_some(),
        ca_bundle_pem: bundle,
    })
}

/// PEM with 64-character lines, as rcgen writes it.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// [`crate::tls::write_file_atomically`], with the path in the error.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<()> {
    crate::tls::write_file_atomically(path, contents, mode).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// Runs `augur certs`.
pub fn run(args: &CertsArgs) -> anyhow::Result<()> {
    if let Some(CertsAction::Verify(verify)) = &args.action {
        return verify::run(verify);
    }
    let written = write(args)?;
    print!("{written}");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier as _;
    use rustls_pki_types::{ServerName, UnixTime};

    use super::*;

    fn args(dir: &Path) -> CertsArgs {
        CertsArgs {
            action: None,
            namespace: "monitoring".into(),
            service: "augur".into(),
            out: dir.join("out"),
            days: 30,
            force: false,
        }
    }

    fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Verifies `cert_pem` as a server certificate for `name` against `roots_pem` at `at`.
    fn verify(
        roots_pem: &str,
        cert_pem: &str,
        name: &str,
        at: SystemTime,
    ) -> Result<(), rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for root in certs(roots_pem) {
            roots.add(root).unwrap();
        }
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let leaf = certs(cert_pem).remove(0);
        verifier
            .verify_server_cert(
                &leaf,
                &[],
                &ServerName::try_from(name.to_owned()).unwrap(),
                &[],
                UnixTime::since_unix_epoch(at.duration_since(std::time::UNIX_EPOCH).unwrap()),
            )
            .map(|_| ())
    }

    #[test]
    fn names_cover_every_way_the_service_is_addressed() {
        assert_eq!(
            dns_names("augur", "monitoring"),
            [
                "augur.monitoring.svc",
                "augur",
                "augur.monitoring",
                "augur.monitoring.svc.cluster.local"
            ]
        );
    }

    #[test]
    fn serving_certificate_is_signed_by_the_ca_for_exactly_its_names() {
        let now = SystemTime::now();
        let names = dns_names("augur", "monitoring");
        let issued = issue(&names, Duration::from_secs(30 * 86400), now).unwrap();
        for name in &names {
            verify(&issued.ca_pem, &issued.cert_pem, name, now)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // Other names, another CA, and times outside the validity are rejected.
        for name in ["augur.other.svc", "other.monitoring.svc", "localhost"] {
            let err = verify(&issued.ca_pem, &issued.cert_pem, name, now).unwrap_err();
            assert!(
                matches!(
                    err,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
                        | rustls::Error::InvalidCertificate(
                            rustls::CertificateError::NotValidForNameContext { .. }
                        )
                ),
                "{name}: {err:?}"
            );
        }
        // Another CA (issued a second later, so its name differs) does not vouch for it.
        let other = issue(
            &names,
            Duration::from_secs(86400),
            now + Duration::from_secs(1),
        )
        .unwrap();
        let err = verify(&other.ca_pem, &issued.cert_pem, &names[0], now).unwrap_err();
        assert!(
            matches!(
                err,
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)
            ),
            "{err:?}"
        );
        let late = now + Duration::from_secs(31 * 86400);
        assert!(verify(&issued.ca_pem, &issued.cert_pem, &names[0], late).is_err());
        let early = now - Duration::from_secs(2 * 3600);
        assert!(verify(&issued.ca_pem, &issued.cert_pem, &names[0], early).is_err());
        // The key belongs to the certificate.
        let provider = rustls::crypto::ring::default_provider();
        let key =
            rustls_pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
        rustls::sign::CertifiedKey::from_der(certs(&issued.cert_pem), key, &provider).unwrap();
        assert!(
            issued.ca_name.starts_with("augur-ca@"),
            "{}",
            issued.ca_name
        );
    }

    #[test]
    fn base64_matches_rfc_4648_and_k8s_byte_strings() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
        // Every byte value, checked against k8s-openapi's encoding of []byte fields.
        let bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for len in [510, 511, 512] {
            let json =
                serde_json::to_value(k8s_openapi::ByteString(bytes[..len].to_vec())).unwrap();
            assert_eq!(json, serde_json::Value::String(base64(&bytes[..len])));
        }
    }

    #[test]
    fn writes_files_with_modes_and_a_ca_bundle_matching_ca_crt() {
        let dir = tempfile::tempdir().unwrap();
        let args = args(dir.path());
        let written = write(&args).unwrap();
        let ca = fs::read_to_string(args.out.join("ca.crt")).unwrap();
        let cert = fs::read_to_string(args.out.join("tls.crt")).unwrap();
        assert_eq!(ca, written.ca_bundle_pem);
        assert_eq!(written.ca_bundle(), base64(ca.as_bytes()));
        assert_eq!(
            serde_json::to_value(k8s_openapi::ByteString(ca.clone().into_bytes())).unwrap(),
            serde_json::Value::String(written.ca_bundle())
        );
        assert_eq!(certs(&ca).len(), 1);
        assert!(!written.kept_previous_ca);
        verify(&ca, &cert, "augur.monitoring.svc", SystemTime::now()).unwrap();
        let mode = |name: &str| {
            fs::metadata(args.out.join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("tls.key"), 0o600);
        assert_eq!(mode("tls.crt"), 0o644);
        assert_eq!(mode("ca.crt"), 0o644);
        let mut files: Vec<String> = fs::read_dir(&args.out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files, ["ca.crt", "tls.crt", "tls.key"]);

        let report = written.to_string();
        let out = args.out.display();
        assert!(
            report.contains(&format!(
                "wrote {out}/tls.crt: serving certificate for augur.monitoring.svc, augur, augur.monitoring, augur.monitoring.svc.cluster.local\n"
            )),
            "{report}"
        );
        assert!(
            report.contains(&format!("\n{}\n", written.ca_bundle())),
            "{report}"
        );
        assert!(
            report.contains(&format!(
                "  kubectl -n monitoring create secret tls augur-tls --cert={out}/tls.crt --key={out}/tls.key\n"
            )),
            "{report}"
        );
    }

    #[test]
    fn refuses_to_overwrite_without_force_and_keeps_the_replaced_ca() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args(dir.path());
        write(&args).unwrap();
        let old_ca = fs::read_to_string(args.out.join("ca.crt")).unwrap();
        let old_cert = fs::read_to_string(args.out.join("tls.crt")).unwrap();
        let old_key = fs::read_to_string(args.out.join("tls.key")).unwrap();

        let err = write(&args).unwrap_err().to_string();
        let out = args.out.display();
        assert_eq!(
            err,
            format!(
                "{out}/ca.crt, {out}/tls.crt, {out}/tls.key already exist; pass --force to replace them (the CA being replaced stays trusted in the new ca.crt)"
            )
        );
        // Nothing changed.
        assert_eq!(
            fs::read_to_string(args.out.join("tls.key")).unwrap(),
            old_key
        );

        fs::remove_file(args.out.join("tls.crt")).unwrap();
        fs::remove_file(args.out.join("ca.crt")).unwrap();
        let err = write(&args).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{out}/tls.key already exists; pass --force to replace it"
            )),
            "{err}"
        );
        fs::write(args.out.join("ca.crt"), &old_ca).unwrap();

        args.force = true;
        let written = write(&args).unwrap();
        assert!(written.kept_previous_ca);
        let bundle = fs::read_to_string(args.out.join("ca.crt")).unwrap();
        let new_cert = fs::read_to_string(args.out.join("tls.crt")).unwrap();
        assert_ne!(new_cert, old_cert);
        let bundle_certs = certs(&bundle);
        assert_eq!(bundle_certs.len(), 2);
        // The second certificate is the replaced CA, byte for byte.
        assert_eq!(bundle_certs[1], certs(&old_ca)[0]);
        assert!(bundle.ends_with(&old_ca), "{bundle}");
        // Both the new and the old serving certificate verify against the new bundle.
        let now = SystemTime::now();
        verify(&bundle, &new_cert, "augur.monitoring.svc", now).unwrap();
        verify(&bundle, &old_cert, "augur.monitoring.svc", now).unwrap();
        // The new certificate is not signed by the old CA.
        assert!(verify(&old_ca, &new_cert, "augur.monitoring.svc", now).is_err());

        // A third run keeps only the CA it replaces, not the whole chain of old ones.
        write(&args).unwrap();
        let third = fs::read_to_string(args.out.join("ca.crt")).unwrap();
        assert_eq!(certs(&third).len(), 2);
        assert_eq!(certs(&third)[1], bundle_certs[0]);
    }

    #[test]
    fn service_and_namespace_must_be_dns_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = args(dir.path());
        args.namespace = "Monitoring".into();
        assert_eq!(
            write(&args).unwrap_err().to_string(),
            "--namespace \"Monitoring\" is not a DNS label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)"
        );
        args.namespace = "ok".into();
        for bad in ["", "-a", "a-", "a.b", &"a".repeat(64)] {
            args.service = bad.into();
            assert!(
                write(&args)
                    .unwrap_err()
                    .to_string()
                    .starts_with("--service "),
                "{bad:?}"
            );
        }
        assert!(!args.out.exists());
    }
}
