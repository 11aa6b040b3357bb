//! The tests' certificate authority: the product's CA ([`crate::tls::issue::Ca`]) with a
//! day's validity, issuing client certificates (user and groups) and serving certificates.

use std::time::{Duration, SystemTime};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::tls::issue::{Ca, PemPair, Validity};

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
}

impl Identity {
    /// The certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(self.cert.as_bytes()).expect("issued certificate")
    }
}

impl From<PemPair> for Identity {
    fn from(pair: PemPair) -> Self {
        Self {
            cert: pair.cert,
            key: pair.key,
        }
    }
}

/// A CA valid for a day from now, whose key lives as long as this value.
pub struct TestCa {
    ca: Ca,
    /// The CA certificate, PEM.
    pub pem: String,
}

impl TestCa {
    /// A new CA whose subject is `CN=<common_name>`.
    pub fn new(common_name: &str) -> Self {
        let validity = Validity::new(SystemTime::now(), Duration::from_secs(86_400));
        let ca = Ca::new(common_name.to_owned(), validity).expect("test CA");
        let pem = ca.pem();
        Self { ca, pem }
    }

    /// A client certificate for `CN=<common_name>` with one `O=` per organization (group).
    pub fn client(&self, common_name: &str, organizations: &[&str]) -> Identity {
        self.ca
            .issue_client(common_name, organizations)
            .expect("client certificate")
            .into()
    }

    /// A server certificate for `names` (DNS names or IP addresses), the first one its CN.
    pub fn server(&self, names: &[&str]) -> Identity {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        self.ca
            .issue_serving(&names)
            .expect("server certificate")
            .into()
    }
}
