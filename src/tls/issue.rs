//! Issuing certificates with rcgen: a CA, and serving certificates signed by it or by themselves.
//!
//! `augur certs` (a CA and a serving certificate for augur's Service) and the self-signed
//! fallback in `--cert-dir` both build their certificates here, so key usages, validity
//! windows and serial numbers follow one rule. Tests issue their client certificates here
//! too (`test-util`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SerialNumber,
};

/// When certificates are valid: from an hour before `now` (clock skew between the machines
/// that check them) until `lifetime` after it. Serial numbers derive from `now` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    since_epoch: Duration,
    lifetime: Duration,
}

impl Validity {
    /// Valid from an hour before `now` until `lifetime` after it.
    pub fn new(now: SystemTime, lifetime: Duration) -> Self {
        Self {
            since_epoch: now.duration_since(UNIX_EPOCH).unwrap_or_default(),
            lifetime,
        }
    }

    /// `now`, as time since the Unix epoch.
    pub fn since_epoch(&self) -> Duration {
        self.since_epoch
    }

    /// Sets the window and a serial number: `now` in nanoseconds plus `offset`, so a CA and
    /// the certificate it signs in the same run never share one.
    fn apply(&self, params: &mut CertificateParams, offset: u128) {
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + self.since_epoch.saturating_sub(Duration::from_secs(3600));
        params.not_after = epoch + self.since_epoch + self.lifetime;
        let serial = self.since_epoch.as_nanos() + offset;
        params.serial_number = Some(SerialNumber::from(serial.to_be_bytes().to_vec()));
    }
}

/// A certificate and its private key, both PEM (the key PKCS#8).
#[derive(Debug, Clone)]
pub struct PemPair {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

fn named(common_name: String) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

/// An end-entity certificate for `names` (DNS names or IP addresses) with `usage`.
fn leaf_params(
    names: &[String],
    subject: DistinguishedName,
    usage: ExtendedKeyUsagePurpose,
    validity: Validity,
    serial_offset: u128,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name = subject;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    validity.apply(&mut params, serial_offset);
    Ok(params)
}

/// A self-signed serving certificate for `names`, its own trust anchor.
pub fn self_signed_serving(
    names: &[String],
    common_name: String,
    validity: Validity,
) -> Result<PemPair, rcgen::Error> {
    let key = KeyPair::generate()?;
    let params = leaf_params(
        names,
        named(common_name),
        ExtendedKeyUsagePurpose::ServerAuth,
        validity,
        1,
    )?;
    let cert = params.self_signed(&key)?;
    Ok(PemPair {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A CA that signs serving certificates; its private key lives only as long as this value
/// and is never written anywhere.
#[derive(Debug)]
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    name: String,
    validity: Validity,
    /// Certificates signed so far: each gets the next serial number.
    issued: AtomicU64,
}

impl Ca {
    /// A new CA named `common_name` that may sign end-entity certificates only (path length 0).
    pub fn new(common_name: String, validity: Validity) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = named(common_name.clone());
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity.apply(&mut params, 0);
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, key)?,
            name: common_name,
            validity,
            issued: AtomicU64::new(0),
        })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA's common name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A serving certificate for `names` (the first one its common name), signed by this CA
    /// and valid as long as the CA.
    pub fn issue_serving(&self, names: &[String]) -> Result<PemPair, rcgen::Error> {
        let common_name = names.first().cloned().unwrap_or_default();
        self.sign(
            names,
            named(common_name),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate for the user `common_name` in the groups `organizations` (one
    /// `O` each, as Kubernetes reads them), signed by this CA and valid as long as the CA.
    #[cfg(any(test, feature = "test-util"))]
    pub fn issue_client(
        &self,
        common_name: &str,
        organizations: &[&str],
    ) -> Result<PemPair, rcgen::Error> {
        let mut subject = named(common_name.to_owned());
        for organization in organizations {
            subject.push(DnType::OrganizationName, *organization);
        }
        self.sign(&[], subject, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// An end-entity certificate signed by this CA, with the next serial number.
    fn sign(
        &self,
        names: &[String],
        subject: DistinguishedName,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<PemPair, rcgen::Error> {
        let offset = 1 + u128::from(self.issued.fetch_add(1, Ordering::Relaxed));
        let params = leaf_params(names, subject, usage, self.validity, offset)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(PemPair {
            cert: cert.pem(),
            key: key.serialize_pem(),
        })
    }
}
