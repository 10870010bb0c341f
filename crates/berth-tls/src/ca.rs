//! Berth's certificate authority: one self-signed ECDSA P-256 CA per installation, and the
//! server certificates it issues to PostgreSQL instances.
//!
//! The CA is deliberately minimal: CA:true with path length 0 (it signs leaf certificates only),
//! keyCertSign and cRLSign, ten years. Server certificates carry serverAuth, the given DNS names
//! and IP addresses as subjectAltNames (libpq's `verify-full` checks those), and never outlive the
//! CA. Every certificate gets a fresh key and a random serial, and is backdated an hour so a
//! client whose clock runs a little behind still accepts it.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SanType, SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::OffsetDateTime;

use crate::der::ParsedCert;
use crate::{random_bytes, TlsError};

/// How long a server certificate is valid unless told otherwise: about a year.
pub const DEFAULT_SERVER_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Ten years, counting leap days.
const CA_VALIDITY: Duration = Duration::from_secs(3653 * 24 * 60 * 60);
/// Certificates start to be valid this long before they are made, for clients with slow clocks.
const BACKDATE: Duration = Duration::from_secs(60 * 60);
/// X.520 upper bound for a common name.
const MAX_COMMON_NAME_CHARS: usize = 64;

/// A certificate authority: its PEM certificate and its private key (PKCS#8 DER, to be sealed by
/// the caller before storing).
pub struct CertificateAuthority {
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    not_after: OffsetDateTime,
}

/// A server certificate and its private key, both PEM, ready to write as PostgreSQL's
/// `ssl_cert_file` and `ssl_key_file` (the key file must be mode 0600 and owned by the server's
/// user).
#[derive(Clone)]
pub struct IssuedCert {
    pub cert_pem: String,
    /// PKCS#8 `PRIVATE KEY` PEM.
    pub key_pem: String,
    /// When the certificate expires; re-issue before then.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("not_after", &self.not_after)
            .field("key_pem", &"[elided]")
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Issuer's Debug shows the name and elides the key.
        f.debug_struct("CertificateAuthority")
            .field("issuer", &self.issuer)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new CA named `common_name`: ECDSA P-256, valid ten years, CA:true with path length 0,
    /// keyCertSign and cRLSign.
    pub fn generate(common_name: &str) -> Result<Self, TlsError> {
        let name = distinguished_name(common_name)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generation)?;
        let now = now();
        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial());
        params.not_before = add(now, BACKDATE, false)?;
        params.not_after = add(now, CA_VALIDITY, true)?;
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key).map_err(generation)?;
        // Name issued certificates' authorityKeyIdentifier after the subjectKeyIdentifier
        // written above, exactly as `from_parts` reads it back.
        params.key_identifier_method = KeyIdMethod::PreSpecified(params.key_identifier(&key));
        let not_after = params.not_after;
        Ok(CertificateAuthority {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            not_after,
        })
    }

    /// Reloads a CA from what [`cert_pem`](Self::cert_pem) and
    /// [`key_pkcs8_der`](Self::key_pkcs8_der) returned. Refuses a certificate that is not a CA,
    /// a key that does not belong to it, and subject names rcgen could not reproduce byte for
    /// byte as the issuer of new certificates (which would break chain building).
    pub fn from_parts(cert_pem: &str, key_pkcs8_der: &[u8]) -> Result<Self, TlsError> {
        let pem = pem::parse(cert_pem)
            .map_err(|e| TlsError::InvalidCertificate(format!("not PEM: {e}")))?;
        if pem.tag() != "CERTIFICATE" {
            return Err(TlsError::InvalidCertificate(format!(
                "expected a CERTIFICATE PEM block, found {:?}",
                pem.tag()
            )));
        }
        let parsed = ParsedCert::parse(pem.contents())?;
        if !parsed.is_ca()? {
            return Err(TlsError::InvalidCertificate(
                "not a CA certificate (basicConstraints cA is not set)".into(),
            ));
        }
        let key =
            KeyPair::try_from(key_pkcs8_der).map_err(|e| TlsError::InvalidKey(e.to_string()))?;
        if key.public_key_raw() != parsed.public_key.as_slice() {
            return Err(TlsError::KeyMismatch);
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = parsed.subject_name()?;
        params.key_identifier_method = match parsed.subject_key_id()? {
            Some(id) => KeyIdMethod::PreSpecified(id),
            None => KeyIdMethod::Sha256,
        };
        // Prove the rebuilt name encodes exactly as the CA's subject: sign a throwaway
        // certificate with it and compare (one ECDSA signature; this runs once at start-up).
        let probe = ParsedCert::parse(params.self_signed(&key).map_err(generation)?.der())?;
        if probe.subject_der != parsed.subject_der {
            return Err(TlsError::InvalidCertificate(
                "unsupported subject name encoding".into(),
            ));
        }
        let pem_config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
        Ok(CertificateAuthority {
            cert_pem: pem::encode_config(&pem, pem_config),
            issuer: Issuer::new(params, key),
            not_after: parsed.not_after,
        })
    }

    /// The CA certificate, PEM: what `GET /api/v1/ca.pem` serves and clients pass as
    /// `sslrootcert`.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key, PKCS#8 DER. Seal it before storing.
    pub fn key_pkcs8_der(&self) -> &[u8] {
        self.issuer.key().serialized_der()
    }

    /// When the CA certificate expires.
    pub fn not_after(&self) -> SystemTime {
        system_time(self.not_after)
    }

    /// A server certificate for `common_name`, valid about a year (never past the CA's own
    /// expiry), for the given DNS names and IP addresses. A DNS name that is an IP address
    /// literal (a public host configured as `203.0.113.7`) becomes an IP address SAN, where
    /// libpq looks for it. Duplicates are dropped.
    pub fn issue_server_cert(
        &self,
        common_name: &str,
        dns_names: &[String],
        ips: &[IpAddr],
    ) -> Result<IssuedCert, TlsError> {
        self.issue_server_cert_valid_for(common_name, dns_names, ips, DEFAULT_SERVER_CERT_VALIDITY)
    }

    /// [`issue_server_cert`](Self::issue_server_cert) with a chosen validity.
    pub fn issue_server_cert_valid_for(
        &self,
        common_name: &str,
        dns_names: &[String],
        ips: &[IpAddr],
        validity: Duration,
    ) -> Result<IssuedCert, TlsError> {
        let name = distinguished_name(common_name)?;
        let sans = subject_alt_names(dns_names, ips)?;
        if validity.is_zero() {
            return Err(TlsError::InvalidValidity);
        }
        let now = now();
        if now >= self.not_after {
            return Err(TlsError::CaExpired);
        }
        // A certificate cannot outlive the CA that vouches for it.
        let not_after = add(now, validity, true).map_or(self.not_after, |t| t.min(self.not_after));

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(generation)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name;
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = add(now, BACKDATE, false)?;
        params.not_after = not_after;
        let cert = params.signed_by(&key, &self.issuer).map_err(generation)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_after: system_time(not_after),
        })
    }
}

fn generation(e: rcgen::Error) -> TlsError {
    TlsError::Generation(e.to_string())
}

fn distinguished_name(common_name: &str) -> Result<DistinguishedName, TlsError> {
    let chars = common_name.chars().count();
    if chars == 0 || chars > MAX_COMMON_NAME_CHARS || common_name.chars().any(char::is_control) {
        return Err(TlsError::InvalidCommonName(common_name.to_string()));
    }
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    Ok(name)
}

fn subject_alt_names(dns_names: &[String], ips: &[IpAddr]) -> Result<Vec<SanType>, TlsError> {
    let mut sans = Vec::with_capacity(dns_names.len() + ips.len());
    for name in dns_names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) if is_dns_name(name) => SanType::DnsName(
                Ia5String::try_from(name.as_str())
                    .map_err(|_| TlsError::InvalidDnsName(name.clone()))?,
            ),
            Err(_) => return Err(TlsError::InvalidDnsName(name.clone())),
        };
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    for ip in ips {
        let san = SanType::IpAddress(*ip);
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    if sans.is_empty() {
        return Err(TlsError::NoSubjectAltNames);
    }
    Ok(sans)
}

/// A host name: dot-separated labels of ASCII letters, digits, `-` and `_` (no leading or
/// trailing `-`), at most 63 characters each and 253 in all, optionally below a leading `*.`.
fn is_dns_name(name: &str) -> bool {
    let host = name.strip_prefix("*.").unwrap_or(name);
    !host.is_empty()
        && name.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// 16 random bytes, positive as a DER INTEGER.
fn random_serial() -> SerialNumber {
    let mut serial = [0u8; 16];
    random_bytes(&mut serial);
    serial[0] &= 0x7f;
    SerialNumber::from_slice(&serial)
}

/// Now, to the second (certificates have no finer precision).
fn now() -> OffsetDateTime {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `t + d` (or `t - d`), or `InvalidValidity` when that leaves the representable range.
fn add(t: OffsetDateTime, d: Duration, forward: bool) -> Result<OffsetDateTime, TlsError> {
    let d = time::Duration::try_from(d).map_err(|_| TlsError::InvalidValidity)?;
    let t = if forward {
        t.checked_add(d)
    } else {
        t.checked_sub(d)
    };
    // Certificates encode years as four digits at most.
    t.filter(|t| (1..=9999).contains(&t.year()))
        .ok_or(TlsError::InvalidValidity)
}

fn system_time(t: OffsetDateTime) -> SystemTime {
    let secs = t.unix_timestamp();
    let offset = Duration::from_secs(secs.unsigned_abs());
    let result = if secs >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    };
    result.unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use yasna::Tag;

    use super::*;
    use crate::der::Extension;

    const OID_KEY_USAGE: &[u64] = &[2, 5, 29, 15];
    const OID_SUBJECT_ALT_NAME: &[u64] = &[2, 5, 29, 17];
    const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];
    const OID_EXT_KEY_USAGE: &[u64] = &[2, 5, 29, 37];
    const OID_AUTHORITY_KEY_ID: &[u64] = &[2, 5, 29, 35];
    const OID_SERVER_AUTH: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 3, 1];

    fn der_of(pem_text: &str) -> Vec<u8> {
        let pem = pem::parse(pem_text).expect("PEM");
        pem.contents().to_vec()
    }

    fn ext<'a>(cert: &'a ParsedCert, oid: &[u64]) -> &'a Extension {
        cert.extensions
            .iter()
            .find(|e| e.oid == oid)
            .unwrap_or_else(|| panic!("extension {oid:?} missing"))
    }

    /// (tbsCertificate DER, signature) of a certificate.
    fn tbs_and_signature(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        yasna::parse_der(der, |r| {
            r.read_sequence(|r| {
                let tbs = r.next().read_der()?;
                r.next().read_der()?;
                let sig = r.next().read_bitvec_bytes()?.0;
                Ok((tbs, sig))
            })
        })
        .expect("certificate")
    }

    /// Checks that `leaf_pem` is signed by `ca_pem`'s key and names it as issuer.
    fn assert_chains(leaf_pem: &str, ca_pem: &str) {
        let leaf_der = der_of(leaf_pem);
        let leaf = ParsedCert::parse(&leaf_der).expect("leaf parses");
        let ca = ParsedCert::parse(&der_of(ca_pem)).expect("CA parses");
        assert_eq!(
            leaf.issuer_der, ca.subject_der,
            "issuer is the CA's subject"
        );
        let (tbs, sig) = tbs_and_signature(&leaf_der);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &ca.public_key,
        )
        .verify(&tbs, &sig)
        .expect("signed by the CA key");
        // authorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier, … }
        let aki = yasna::parse_der(&ext(&leaf, OID_AUTHORITY_KEY_ID).value, |r| {
            r.read_sequence(|r| {
                r.next()
                    .read_tagged_implicit(Tag::context(0), |r| r.read_bytes())
            })
        })
        .expect("AKI");
        assert_eq!(Some(aki), ca.subject_key_id().expect("SKI"));
        assert!(leaf.not_after <= ca.not_after);
    }

    /// (DNS names, IP addresses) in the subjectAltName extension.
    fn sans(cert: &ParsedCert) -> (Vec<String>, Vec<IpAddr>) {
        let names = yasna::parse_der(&ext(cert, OID_SUBJECT_ALT_NAME).value, |r| {
            r.collect_sequence_of(|r| r.read_tagged_der())
        })
        .expect("SAN");
        let (mut dns, mut ips) = (Vec::new(), Vec::new());
        for name in names {
            let v = name.value();
            if name.tag() == Tag::context(2) {
                dns.push(String::from_utf8(v.to_vec()).expect("ASCII"));
            } else if name.tag() == Tag::context(7) {
                ips.push(match v.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(v).expect("4")),
                    16 => IpAddr::from(<[u8; 16]>::try_from(v).expect("16")),
                    n => panic!("IP SAN of {n} bytes"),
                });
            } else {
                panic!("unexpected SAN {:?}", name.tag());
            }
        }
        (dns, ips)
    }

    fn days_from_now(t: SystemTime) -> f64 {
        let now = SystemTime::now();
        match t.duration_since(now) {
            Ok(d) => d.as_secs_f64() / 86400.0,
            Err(e) => -e.duration().as_secs_f64() / 86400.0,
        }
    }

    fn localhost_names() -> Vec<String> {
        vec!["localhost".into(), "db.example.com".into()]
    }

    #[test]
    fn generated_ca_is_a_ten_year_p256_ca() {
        let ca = CertificateAuthority::generate("Berth CA").expect("CA");
        assert!(ca.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
        let parsed = ParsedCert::parse(&der_of(ca.cert_pem())).expect("parses");
        assert!(parsed.is_ca().expect("basicConstraints"));
        assert!(ext(&parsed, OID_BASIC_CONSTRAINTS).critical);
        let path_len = yasna::parse_der(&ext(&parsed, OID_BASIC_CONSTRAINTS).value, |r| {
            r.read_sequence(|r| {
                r.next().read_bool()?;
                r.next().read_u8()
            })
        });
        assert_eq!(path_len, Ok(0));
        // keyUsage: keyCertSign (bit 5) and cRLSign (bit 6) only.
        let (bits, _) = yasna::parse_der(&ext(&parsed, OID_KEY_USAGE).value, |r| {
            r.read_bitvec_bytes()
        })
        .expect("keyUsage");
        assert_eq!(bits, vec![0b0000_0110]);
        assert_eq!(parsed.public_key.len(), 65, "uncompressed P-256 point");
        assert_eq!(parsed.subject_name().expect("name").iter().count(), 1);
        let days = days_from_now(ca.not_after());
        assert!((3650.0..3654.0).contains(&days), "{days}");
        // A self-signed root: its own issuer.
        assert_eq!(parsed.issuer_der, parsed.subject_der);
        let der = der_of(ca.cert_pem());
        let (tbs, sig) = tbs_and_signature(&der);
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &parsed.public_key,
        )
        .verify(&tbs, &sig)
        .expect("self-signed");
        assert!(!format!("{ca:?}").contains("PRIVATE"));
    }

    #[test]
    fn round_trips_through_from_parts_and_keeps_issuing() {
        let ca = CertificateAuthority::generate("Berth CA ünïcode").expect("CA");
        let again =
            CertificateAuthority::from_parts(ca.cert_pem(), ca.key_pkcs8_der()).expect("reloads");
        assert_eq!(again.cert_pem(), ca.cert_pem());
        assert_eq!(again.key_pkcs8_der(), ca.key_pkcs8_der());
        assert_eq!(again.not_after(), ca.not_after());
        // Certificates from the reloaded CA chain to the original certificate.
        let leaf = again
            .issue_server_cert("instance", &localhost_names(), &[])
            .expect("issues");
        assert_chains(&leaf.cert_pem, ca.cert_pem());
        // CRLF line endings and surrounding text are tolerated.
        let crlf = format!("junk\r\n{}", ca.cert_pem().replace('\n', "\r\n"));
        let third = CertificateAuthority::from_parts(&crlf, ca.key_pkcs8_der()).expect("CRLF");
        assert_eq!(third.cert_pem(), ca.cert_pem());
    }

    #[test]
    fn issued_certificate_chains_and_carries_the_sans() {
        let ca = CertificateAuthority::generate("Berth CA").expect("CA");
        let ips = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ];
        let names = vec![
            "localhost".to_string(),
            "db.example.com".to_string(),
            "203.0.113.7".to_string(),
            "localhost".to_string(),
            "*.pg.example.net".to_string(),
        ];
        let issued = ca
            .issue_server_cert("inst-1.berth", &names, &ips)
            .expect("issues");
        assert!(issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(issued.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert!(!format!("{issued:?}").contains("PRIVATE"));
        assert_chains(&issued.cert_pem, ca.cert_pem());

        let leaf = ParsedCert::parse(&der_of(&issued.cert_pem)).expect("parses");
        let (dns, got_ips) = sans(&leaf);
        assert_eq!(dns, ["localhost", "db.example.com", "*.pg.example.net"]);
        assert_eq!(
            got_ips,
            [
                "203.0.113.7".parse::<IpAddr>().expect("ip"),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ]
        );
        assert!(!leaf.is_ca().expect("basicConstraints"));
        let ekus = yasna::parse_der(&ext(&leaf, OID_EXT_KEY_USAGE).value, |r| {
            r.collect_sequence_of(|r| Ok(r.read_oid()?.components().clone()))
        })
        .expect("EKU");
        assert_eq!(ekus, [OID_SERVER_AUTH.to_vec()]);
        let (bits, _) =
            yasna::parse_der(&ext(&leaf, OID_KEY_USAGE).value, |r| r.read_bitvec_bytes())
                .expect("keyUsage");
        assert_eq!(bits, vec![0b1000_0000], "digitalSignature only");
        let days = days_from_now(issued.not_after);
        assert!((364.9..365.1).contains(&days), "{days}");
        assert_eq!(leaf.subject_name().expect("name").iter().count(), 1);

        // The key in key_pem is the certificate's key.
        let key = KeyPair::from_pem(&issued.key_pem).expect("key parses");
        assert_eq!(key.public_key_raw(), leaf.public_key.as_slice());

        // Every certificate gets its own key and serial.
        let other = ca
            .issue_server_cert("inst-1.berth", &names, &ips)
            .expect("issues");
        assert_ne!(other.key_pem, issued.key_pem);
        assert_ne!(other.cert_pem, issued.cert_pem);
    }

    #[test]
    fn validity_is_chosen_and_capped_by_the_ca() {
        let ca = CertificateAuthority::generate("Berth CA").expect("CA");
        let day = ca
            .issue_server_cert_valid_for("x", &localhost_names(), &[], Duration::from_secs(86400))
            .expect("one day");
        let days = days_from_now(day.not_after);
        assert!((0.99..1.01).contains(&days), "{days}");
        for long in [Duration::from_secs(100 * 365 * 86400), Duration::MAX] {
            let capped = ca
                .issue_server_cert_valid_for("x", &localhost_names(), &[], long)
                .expect("capped");
            assert_eq!(capped.not_after, ca.not_after());
            assert_chains(&capped.cert_pem, ca.cert_pem());
        }
        assert!(matches!(
            ca.issue_server_cert_valid_for("x", &localhost_names(), &[], Duration::ZERO),
            Err(TlsError::InvalidValidity)
        ));
    }

    #[test]
    fn rejects_bad_names() {
        let ca = CertificateAuthority::generate("Berth CA").expect("CA");
        for cn in ["", "a\nb", "\u{0}", &"x".repeat(65)] {
            assert!(
                matches!(
                    CertificateAuthority::generate(cn),
                    Err(TlsError::InvalidCommonName(_))
                ),
                "{cn:?}"
            );
            assert!(matches!(
                ca.issue_server_cert(cn, &localhost_names(), &[]),
                Err(TlsError::InvalidCommonName(_))
            ));
        }
        assert!(CertificateAuthority::generate(&"é".repeat(64)).is_ok());
        for dns in [
            "",
            "has space",
            "-lead.example.com",
            "trail-.example.com",
            "a..b",
            "dot.",
            ".dot",
            "é.example.com",
            "a/b",
            "*",
            "*.",
            "a.*.b",
            "x\0y",
            &"a".repeat(64),
            &format!("{}.com", vec!["a".repeat(60); 5].join(".")),
        ] {
            assert!(
                matches!(
                    ca.issue_server_cert("x", &[dns.to_string()], &[]),
                    Err(TlsError::InvalidDnsName(_))
                ),
                "{dns:?}"
            );
        }
        assert!(matches!(
            ca.issue_server_cert("x", &[], &[]),
            Err(TlsError::NoSubjectAltNames)
        ));
        assert!(ca
            .issue_server_cert("x", &[], &[IpAddr::V4(Ipv4Addr::LOCALHOST)])
            .is_ok());
        assert!(ca
            .issue_server_cert("x", &["under_score.example".into()], &[])
            .is_ok());
    }

    #[test]
    fn from_parts_rejects_bad_input_without_panicking() {
        let ca = CertificateAuthority::generate("Berth CA").expect("CA");
        let other = CertificateAuthority::generate("Other CA").expect("CA");
        let pem = ca.cert_pem();
        let key = ca.key_pkcs8_der();

        let err = |cert: &str, key: &[u8]| CertificateAuthority::from_parts(cert, key).unwrap_err();
        assert!(matches!(err("", key), TlsError::InvalidCertificate(_)));
        assert!(matches!(
            err("not pem", key),
            TlsError::InvalidCertificate(_)
        ));
        let key_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", key.to_vec()));
        assert!(matches!(
            err(&key_pem, key),
            TlsError::InvalidCertificate(_)
        ));
        assert!(matches!(err(pem, b""), TlsError::InvalidKey(_)));
        assert!(matches!(err(pem, b"garbage"), TlsError::InvalidKey(_)));
        assert!(matches!(
            err(pem, other.key_pkcs8_der()),
            TlsError::KeyMismatch
        ));
        // A server certificate is not a CA, even with its own key.
        let leaf = ca
            .issue_server_cert("x", &localhost_names(), &[])
            .expect("leaf");
        let leaf_key = KeyPair::from_pem(&leaf.key_pem).expect("key");
        assert!(matches!(
            err(&leaf.cert_pem, leaf_key.serialized_der()),
            TlsError::InvalidCertificate(_)
        ));

        // Truncated and corrupted certificates and keys: errors, never panics.
        let der = der_of(pem);
        let as_pem = |bytes: Vec<u8>| pem::encode(&pem::Pem::new("CERTIFICATE", bytes));
        for len in 0..der.len() {
            assert!(CertificateAuthority::from_parts(&as_pem(der[..len].to_vec()), key).is_err());
        }
        for i in 0..der.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = der.clone();
                bad[i] ^= bit;
                // Flips inside the serial, validity or signature still parse (the signature is
                // not checked): fine, as long as nothing panics.
                let _ = CertificateAuthority::from_parts(&as_pem(bad), key);
            }
        }
        for len in 0..key.len() {
            assert!(CertificateAuthority::from_parts(pem, &key[..len]).is_err());
        }
    }

    /// Not a benchmark (tests never assert timings); shows the cost on the create path.
    #[test]
    fn timings() {
        let ca = CertificateAuthority::generate("Berth CA").expect("CA");
        let names = localhost_names();
        let ips = [IpAddr::V4(Ipv4Addr::LOCALHOST)];
        let mut issue = Vec::new();
        let mut scram = Vec::new();
        for _ in 0..20 {
            let t = std::time::Instant::now();
            ca.issue_server_cert("instance", &names, &ips)
                .expect("issues");
            issue.push(t.elapsed());
            let t = std::time::Instant::now();
            crate::scram_sha256_verifier(&crate::generate_password());
            scram.push(t.elapsed());
        }
        let t = std::time::Instant::now();
        CertificateAuthority::generate("Berth CA").expect("CA");
        let generate = t.elapsed();
        let t = std::time::Instant::now();
        CertificateAuthority::from_parts(ca.cert_pem(), ca.key_pkcs8_der()).expect("reloads");
        let reload = t.elapsed();
        issue.sort();
        scram.sort();
        println!(
            "berth-tls timings ({} build): issue_server_cert median {:?} max {:?}; \
             scram_sha256_verifier median {:?} max {:?}; CA generate {:?}; from_parts {:?}",
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            issue[10],
            issue[19],
            scram[10],
            scram[19],
            generate,
            reload,
        );
    }
}
