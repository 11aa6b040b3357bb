//! Client certificates: verify a presented chain against a CA bundle (webpki through rustls)
//! and read the subject's common name and organizations from the DER.

use std::fmt;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, UnixTime};

/// A set of trusted CA certificates for client certificates, e.g. `client-ca-file`.
#[derive(Clone)]
pub struct CaBundle {
    /// Where it came from, for logs and errors (`--client-ca-file /x`, `configmap key ...`).
    origin: String,
    /// The PEM it was built from; equal PEM means an unchanged bundle.
    pem: String,
    verifier: Arc<dyn ClientCertVerifier>,
    count: usize,
}

impl fmt::Debug for CaBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaBundle")
            .field("origin", &self.origin)
            .field("certificates", &self.count)
            .finish()
    }
}

impl CaBundle {
    /// Parse a PEM bundle (one or more CERTIFICATE blocks); `origin` names its source.
    pub fn from_pem(
        pem: &str,
        origin: &str,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, String> {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{origin}: invalid PEM: {e}"))?;
        if certs.is_empty() {
            return Err(format!("{origin}: no CERTIFICATE block found"));
        }
        let count = certs.len();
        let mut roots = RootCertStore::empty();
        for (index, cert) in certs.into_iter().enumerate() {
            roots
                .add(cert)
                .map_err(|e| format!("{origin}: certificate #{}: {e}", index + 1))?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("{origin}: {e}"))?;
        Ok(Self {
            origin: origin.to_owned(),
            pem: pem.to_owned(),
            verifier,
            count,
        })
    }

    /// Where the bundle came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The PEM text.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// How many CA certificates it holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds no certificate (never true for a built bundle).
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Verify a presented chain (leaf first) for client authentication now: signature chain
    /// to one of the CAs, validity period, and the clientAuth extended key usage.
    pub fn verify(&self, chain: &[CertificateDer<'static>]) -> Result<(), String> {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Err("no client certificate".to_owned());
        };
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// The parts of a certificate subject Kubernetes uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// The common name (the last CN attribute, as Go's crypto/x509 keeps).
    pub common_name: String,
    /// Every O attribute, in order.
    pub organizations: Vec<String>,
}

const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_ORGANIZATION: &[u8] = &[0x55, 0x04, 0x0a];

/// One DER element: tag, content, and what follows it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let len = rest[..octets]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[octets..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = element(input)?;
    (found == tag).then_some((content, rest))
}

/// Decode an X.520 directory string the way Go's encoding/asn1 does for the common types.
fn directory_string(tag: u8, content: &[u8]) -> Option<String> {
    match tag {
        // UTF8String, PrintableString, IA5String, NumericString
        0x0c | 0x13 | 0x16 | 0x12 => String::from_utf8(content.to_vec()).ok(),
        // T61String: Go treats it as ISO 8859-1.
        0x14 => Some(content.iter().map(|b| char::from(*b)).collect()),
        // BMPString: UTF-16BE.
        0x1e => {
            if !content.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = content
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// The subject of a DER certificate; `None` when it is not a well-formed certificate.
pub fn subject(der: &[u8]) -> Option<Subject> {
    let (certificate, _) = expect(der, 0x30)?;
    let (tbs, _) = expect(certificate, 0x30)?;
    let mut rest = tbs;
    // Optional [0] EXPLICIT version.
    if let Some((0xa0, _, after)) = element(rest) {
        rest = after;
    }
    let (_serial, rest) = expect(rest, 0x02)?;
    let (_signature, rest) = expect(rest, 0x30)?;
    let (_issuer, rest) = expect(rest, 0x30)?;
    let (_validity, rest) = expect(rest, 0x30)?;
    let (mut rdns, _) = expect(rest, 0x30)?;
    let mut subject = Subject::default();
    while !rdns.is_empty() {
        let (set, after) = expect(rdns, 0x31)?;
        rdns = after;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, after) = expect(attributes, 0x30)?;
            attributes = after;
            let (oid, value) = expect(attribute, 0x06)?;
            let (tag, content, _) = element(value)?;
            if oid == OID_COMMON_NAME {
                subject.common_name = directory_string(tag, content)?;
            } else if oid == OID_ORGANIZATION {
                subject.organizations.push(directory_string(tag, content)?);
            }
        }
    }
    Some(subject)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::testing::TestCa;

    fn ring() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn subject_reads_common_name_and_organizations() {
        let ca = TestCa::new("test-ca");
        let cert = ca.client("jane", &["system:masters"]).der();
        assert_eq!(
            subject(&cert).unwrap(),
            Subject {
                common_name: "jane".to_owned(),
                organizations: vec!["system:masters".to_owned()],
            }
        );
    }

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    fn attribute(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        tlv(
            0x31,
            &tlv(0x30, &[tlv(0x06, oid), tlv(tag, value)].concat()),
        )
    }

    /// rcgen keeps one value per attribute type; Go's x509 keeps every O and the last CN.
    #[test]
    fn subject_keeps_every_organization_and_the_last_common_name() {
        let long = "g".repeat(200);
        let rdns = [
            attribute(OID_ORGANIZATION, 0x0c, b"system:masters"),
            attribute(OID_COMMON_NAME, 0x13, b"first"),
            attribute(OID_ORGANIZATION, 0x13, long.as_bytes()),
            attribute(OID_ORGANIZATION, 0x14, b"caf\xe9"),
            attribute(OID_COMMON_NAME, 0x1e, &[0, b'j', 0, b'o']),
        ]
        .concat();
        let tbs = [
            tlv(0xa0, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            tlv(0x30, &[]),
            tlv(0x30, &[]),
            tlv(0x30, &[]),
            tlv(0x30, &rdns),
        ]
        .concat();
        let der = tlv(0x30, &[tlv(0x30, &tbs), tlv(0x30, &[])].concat());
        assert_eq!(
            subject(&der).unwrap(),
            Subject {
                common_name: "jo".to_owned(),
                organizations: vec!["system:masters".to_owned(), long, "café".to_owned()],
            }
        );
    }

    #[test]
    fn subject_of_garbage_is_none() {
        assert_eq!(subject(b"\x30\x03\x02\x01"), None);
        assert_eq!(subject(b""), None);
    }

    #[test]
    fn bundle_verifies_its_own_clients_only() {
        let ours = TestCa::new("ours");
        let theirs = TestCa::new("theirs");
        let bundle = CaBundle::from_pem(&ours.pem, "--client-ca-file ca.crt", ring()).unwrap();
        assert_eq!(bundle.len(), 1);
        assert_eq!(bundle.verify(&[ours.client("a", &[]).der()]), Ok(()));
        let err = bundle.verify(&[theirs.client("a", &[]).der()]).unwrap_err();
        assert_eq!(err, "invalid peer certificate: UnknownIssuer");
        let err = bundle.verify(&[ours.server(&["a"]).der()]).unwrap_err();
        assert_eq!(
            err,
            "invalid peer certificate: certificate does not allow extended key usage for client authentication, allows server authentication"
        );
        assert_eq!(bundle.verify(&[]).unwrap_err(), "no client certificate");
    }

    #[test]
    fn bundle_errors_name_the_origin() {
        let err =
            CaBundle::from_pem("not pem", "configmap key client-ca-file", ring()).unwrap_err();
        assert_eq!(
            err,
            "configmap key client-ca-file: no CERTIFICATE block found"
        );
    }
}
