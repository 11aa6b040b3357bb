//! `augur certs verify`: checks a running server's certificate against a `caBundle` as
//! kube-aggregator does when it proxies a request, and says what is wrong.
//!
//! kube-aggregator's availability check does not verify the serving certificate, so a wrong
//! `caBundle` or a certificate for the wrong name leaves the APIService `Available=True`,
//! while every proxied request fails its TLS check: clients see `ServiceUnavailable: the
//! server is currently unable to handle the request` and the x509 reason is only in
//! kube-apiserver's log. This command makes the same check from anywhere the Service can be
//! reached (a port-forward is enough), for the name kube-aggregator uses,
//! `<service>.<namespace>.svc`.

use std::fmt;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use clap::Args;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use crate::prometheus::auth::SkipVerification;
use crate::units::positive_duration;

/// Flags of `augur certs verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The server: https://HOST[:PORT], e.g. https://localhost:8443 after
    /// `kubectl -n augur port-forward svc/augur 8443:443`.
    #[arg(long)]
    pub url: String,
    /// The caBundle: a PEM file (certs/ca.crt), or the base64 of an APIService's
    /// spec.caBundle as `kubectl get apiservice … -o jsonpath='{.spec.caBundle}'` prints it.
    #[arg(long)]
    pub ca_bundle: String,
    /// The name the certificate must be valid for (default: the URL's host). kube-aggregator
    /// checks <service>.<namespace>.svc, e.g. augur.augur.svc.
    #[arg(long)]
    pub server_name: Option<String>,
    /// Bound of the connection and the TLS handshake.
    #[arg(long, default_value = "10s", value_parser = positive_duration)]
    pub timeout: Duration,
}

/// What the server presented and whether the caBundle trusts it for the name.
#[derive(Debug)]
pub struct Report {
    /// The URL checked.
    pub url: String,
    /// The name checked.
    pub server_name: String,
    /// Negotiated protocol version and cipher suite.
    pub protocol: String,
    /// Certificates the server sent, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Where the caBundle came from and how many certificates it holds.
    pub bundle: String,
    /// `Ok`, or webpki's reason the certificate is not trusted for the name.
    pub verdict: Result<(), rustls::Error>,
}

impl Report {
    /// Whether kube-aggregator would accept the certificate.
    pub fn ok(&self) -> bool {
        self.verdict.is_ok()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "server:      {} ({})", self.url, self.protocol)?;
        writeln!(f, "checked as:  {}", self.server_name)?;
        let leaf = self
            .chain
            .first()
            .and_then(|c| crate::auth::x509::subject(c.as_ref()))
            .map(|s| s.common_name)
            .unwrap_or_default();
        writeln!(
            f,
            "certificate: CN={leaf:?}, {} in the chain",
            self.chain.len()
        )?;
        writeln!(f, "caBundle:    {}", self.bundle)?;
        match &self.verdict {
            Ok(()) => writeln!(
                f,
                "result:      OK: kube-aggregator trusts this certificate for {}",
                self.server_name
            ),
            Err(e) => {
                writeln!(f, "result:      FAIL: {e}")?;
                writeln!(f, "why:         {}", hint(e))?;
                writeln!(
                    f,
                    "effect:      every request kube-aggregator proxies here fails this check: kubectl and the HPA get \"ServiceUnavailable: the server is currently unable to handle the request\", kube-apiserver logs the x509 error, and the APIService still shows Available=True (its availability check does not verify the certificate)"
                )
            }
        }
    }
}

/// What usually causes a verification error, and the fix.
fn hint(error: &rustls::Error) -> &'static str {
    match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the caBundle does not hold the CA that signed this certificate: the APIService's caBundle comes from another `augur certs` run than the Secret the pods mount, or augur serves its self-signed certificate because --tls-cert-file is not given (Secret not mounted). Re-run `augur certs` and apply the Secret and caBundle together"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "the certificate is for other names: kube-aggregator connects to <service>.<namespace>.svc; issue it with `augur certs --service <service> --namespace <namespace>`"
        }
        rustls::Error::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => "the certificate has expired: rotate it with `augur certs --force`",
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => "the certificate is not valid yet: check the clocks of this machine and the node",
        _ => "the certificate chain does not verify against the caBundle",
    }
}

/// Reads `--ca-bundle`: a PEM file, else base64 of PEM.
fn read_bundle(arg: &str) -> anyhow::Result<(Vec<CertificateDer<'static>>, String)> {
    let (pem, origin) = if Path::new(arg).is_file() {
        let pem = std::fs::read(arg).with_context(|| format!("--ca-bundle {arg}"))?;
        (pem, format!("file {arg}"))
    } else {
        let compact: String = arg.chars().filter(|c| !c.is_whitespace()).collect();
        let pem = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| {
                anyhow!("--ca-bundle: not a readable file, and not base64 of a PEM bundle ({e})")
            })?;
        (pem, "base64 caBundle".to_owned())
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("--ca-bundle ({origin}): {e}"))?;
    if certs.is_empty() {
        bail!("--ca-bundle ({origin}): no PEM certificate in it");
    }
    let summary = format!("{} certificate(s), {origin}", certs.len());
    Ok((certs, summary))
}

/// Connects, completes a TLS handshake accepting any certificate (as a first look), then
/// verifies what was presented against the caBundle for the name, the way kube-aggregator's
/// proxy does.
pub fn check(args: &VerifyArgs) -> anyhow::Result<Report> {
    let url = reqwest::Url::parse(&args.url).with_context(|| format!("--url {:?}", args.url))?;
    if url.scheme() != "https" {
        bail!("--url {:?}: must be https://HOST[:PORT]", args.url);
    }
    let host = url
        .host_str()
        .ok_or_else(|| anyhow!("--url {:?}: no host", args.url))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port().unwrap_or(443);
    let name = args.server_name.clone().unwrap_or_else(|| host.clone());
    let server_name =
        ServerName::try_from(name.clone()).map_err(|e| anyhow!("--server-name {name:?}: {e}"))?;
    let (roots, bundle) = read_bundle(&args.ca_bundle)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(SkipVerification::new(&provider))
        .with_no_client_auth();
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}"))?
        .next()
        .ok_or_else(|| anyhow!("{host} resolves to no address"))?;
    let mut tcp = TcpStream::connect_timeout(&addr, args.timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    tcp.set_read_timeout(Some(args.timeout))?;
    tcp.set_write_timeout(Some(args.timeout))?;
    let mut tls = ClientConnection::new(Arc::new(config), server_name.clone())?;
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp)
            .with_context(|| format!("TLS handshake with {addr}"))?;
    }
    let chain: Vec<CertificateDer<'static>> = tls
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    let protocol = format!(
        "{:?}, {:?}",
        tls.protocol_version()
            .map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
        tls.negotiated_cipher_suite()
            .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite()))
    )
    .replace('"', "");
    // Close politely; nothing is read back.
    tls.send_close_notify();
    let _ = tls.write_tls(&mut tcp);
    let _ = tcp.flush();

    let mut store = RootCertStore::empty();
    for cert in roots {
        store
            .add(cert)
            .map_err(|e| anyhow!("--ca-bundle ({bundle}): {e}"))?;
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
            .build()?;
    let verdict = match chain.split_first() {
        Some((leaf, intermediates)) => verifier
            .verify_server_cert(leaf, intermediates, &server_name, &[], UnixTime::now())
            .map(drop),
        None => Err(rustls::Error::NoCertificatesPresented),
    };
    Ok(Report {
        url: args.url.clone(),
        server_name: name,
        protocol,
        chain,
        bundle,
        verdict,
    })
}

/// Runs `augur certs verify`: prints the report; a certificate that fails is an error.
pub fn run(args: &VerifyArgs) -> anyhow::Result<()> {
    let report = check(args)?;
    print!("{report}");
    match &report.verdict {
        Ok(()) => Ok(()),
        Err(e) => bail!(
            "{} does not verify against the caBundle for {}: {e}",
            args.url,
            report.server_name
        ),
    }
}
