//! The one certificate authority of the tests: a CA that keeps its key and issues client or
//! server certificates with a chosen subject, as kube-apiserver's CAs do.

use rustls_pki_types::CertificateDer;

/// What an issued certificate is for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS client authentication (users, the front proxy).
    Client,
    /// TLS server authentication.
    Server,
}

/// A certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The certificate.
    pub cert: String,
    /// Its private key (PKCS#8).
    pub key: String,
    der: CertificateDer<'static>,
}

impl Identity {
    /// The certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }
}

/// A self-signed CA (no path length limit) that issues certificates.
pub struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    /// The CA certificate, PEM.
    pub pem: String,
}

impl TestCa {
    /// A new CA whose subject is `CN=<common_name>`.
    pub fn new(common_name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let pem = params.self_signed(&key).expect("CA certificate").pem();
        Self { params, key, pem }
    }

    /// A client certificate for `CN=<common_name>` with one `O=` per organization (group).
    pub fn client(&self, common_name: &str, organizations: &[&str]) -> Identity {
        self.issue(Usage::Client, common_name, organizations, &[])
    }

    /// A server certificate for `names` (DNS names or IP addresses), the first one its CN.
    pub fn server(&self, names: &[&str]) -> Identity {
        self.issue(
            Usage::Server,
            names.first().copied().unwrap_or_default(),
            &[],
            names,
        )
    }

    /// A certificate for `usage` with subject `CN=<common_name>` and `O=<organization>`s
    /// and subject alternative names `names`, signed by this CA.
    pub fn issue(
        &self,
        usage: Usage,
        common_name: &str,
        organizations: &[&str],
        names: &[&str],
    ) -> Identity {
        let key = rcgen::KeyPair::generate().expect("key");
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).expect("certificate parameters");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        for organization in organizations {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, *organization);
        }
        params.extended_key_usages = vec![match usage {
            Usage::Client => rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            Usage::Server => rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        }];
        let issuer = rcgen::Issuer::new(self.params.clone(), &self.key);
        let cert = params.signed_by(&key, &issuer).expect("certificate");
        Identity {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}
