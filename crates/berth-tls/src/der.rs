//! Just enough X.509 parsing to reload a CA certificate: its subject (to name it as the issuer
//! of new certificates, byte for byte), public key (to check the private key belongs to it),
//! expiry, and the basicConstraints and subjectKeyIdentifier extensions.
//!
//! rcgen can only parse certificates through `x509-parser`, which would pull a dozen crates into
//! the build; `yasna`, which rcgen uses to write DER anyway, is enough for these few fields.
//! Parsing is strict DER and every failure is an error, never a panic.

use rcgen::string::{BmpString, Ia5String, PrintableString, TeletexString, UniversalString};
use rcgen::{DistinguishedName, DnType, DnValue};
use time::OffsetDateTime;
use yasna::models::TaggedDerValue;
use yasna::tags::{
    TAG_BMPSTRING, TAG_IA5STRING, TAG_PRINTABLESTRING, TAG_TELETEXSTRING, TAG_UNIVERSALSTRING,
    TAG_UTCTIME, TAG_UTF8STRING,
};
use yasna::{ASN1Result, BERReader, BERReaderSeq, Tag};

use crate::TlsError;

const OID_SUBJECT_KEY_IDENTIFIER: &[u64] = &[2, 5, 29, 14];
const OID_BASIC_CONSTRAINTS: &[u64] = &[2, 5, 29, 19];

/// The parts of a certificate this crate needs.
#[derive(Debug)]
pub(crate) struct ParsedCert {
    /// The issuer Name, DER-encoded.
    #[cfg_attr(not(test), allow(dead_code))]
    pub issuer_der: Vec<u8>,
    /// The subject Name, DER-encoded.
    pub subject_der: Vec<u8>,
    /// Each RelativeDistinguishedName of the subject as its single (type, value) pair, in order;
    /// `None` for a multi-valued RDN, which rcgen cannot reproduce.
    subject_entries: Vec<Option<(Vec<u64>, TaggedDerValue)>>,
    /// The subjectPublicKey BIT STRING contents (for EC keys, the encoded point).
    pub public_key: Vec<u8>,
    pub not_after: OffsetDateTime,
    pub extensions: Vec<Extension>,
}

#[derive(Debug)]
pub(crate) struct Extension {
    pub oid: Vec<u64>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub critical: bool,
    /// The contents of extnValue's OCTET STRING.
    pub value: Vec<u8>,
}

impl ParsedCert {
    pub fn parse(der: &[u8]) -> Result<ParsedCert, TlsError> {
        yasna::parse_der(der, |r| {
            r.read_sequence(|r| {
                let cert = r.next().read_sequence(read_tbs)?;
                r.next().read_der()?; // signatureAlgorithm
                r.next().read_der()?; // signatureValue
                Ok(cert)
            })
        })
        .map_err(|e| TlsError::InvalidCertificate(format!("malformed DER: {e}")))
    }

    fn extension(&self, oid: &[u64]) -> Option<&Extension> {
        self.extensions.iter().find(|e| e.oid == oid)
    }

    /// Whether basicConstraints says this is a CA certificate.
    pub fn is_ca(&self) -> Result<bool, TlsError> {
        let Some(ext) = self.extension(OID_BASIC_CONSTRAINTS) else {
            return Ok(false);
        };
        yasna::parse_der(&ext.value, |r| {
            r.read_sequence(|r| {
                let ca = r.read_default(false, |r| r.read_bool())?;
                r.read_optional(|r| r.read_u64())?; // pathLenConstraint
                Ok(ca)
            })
        })
        .map_err(|e| TlsError::InvalidCertificate(format!("malformed basicConstraints: {e}")))
    }

    /// The subjectKeyIdentifier, if present.
    pub fn subject_key_id(&self) -> Result<Option<Vec<u8>>, TlsError> {
        let Some(ext) = self.extension(OID_SUBJECT_KEY_IDENTIFIER) else {
            return Ok(None);
        };
        yasna::parse_der(&ext.value, |r| r.read_bytes())
            .map(Some)
            .map_err(|e| {
                TlsError::InvalidCertificate(format!("malformed subjectKeyIdentifier: {e}"))
            })
    }

    /// The subject as rcgen's [`DistinguishedName`], which rcgen writes back as the same bytes
    /// (checked by the caller against `subject_der`'s shape: one attribute per RDN, no repeated
    /// attribute types, string types rcgen knows).
    pub fn subject_name(&self) -> Result<DistinguishedName, TlsError> {
        let unsupported =
            |what: &str| TlsError::InvalidCertificate(format!("unsupported subject name: {what}"));
        let mut dn = DistinguishedName::new();
        for entry in &self.subject_entries {
            let Some((oid, value)) = entry else {
                return Err(unsupported("multi-valued relative distinguished name"));
            };
            let ty = DnType::from_oid(oid);
            if dn.get(&ty).is_some() {
                return Err(unsupported("repeated attribute type"));
            }
            dn.push(
                ty,
                dn_value(value).ok_or_else(|| unsupported("string type"))?,
            );
        }
        Ok(dn)
    }
}

fn dn_value(value: &TaggedDerValue) -> Option<DnValue> {
    let bytes = value.value().to_vec();
    let text = || String::from_utf8(value.value().to_vec()).ok();
    Some(match value.tag() {
        TAG_UTF8STRING => DnValue::Utf8String(text()?),
        TAG_PRINTABLESTRING => DnValue::PrintableString(PrintableString::try_from(text()?).ok()?),
        TAG_IA5STRING => DnValue::Ia5String(Ia5String::try_from(text()?).ok()?),
        TAG_TELETEXSTRING => DnValue::TeletexString(TeletexString::try_from(text()?).ok()?),
        TAG_BMPSTRING => DnValue::BmpString(BmpString::from_utf16be(bytes).ok()?),
        TAG_UNIVERSALSTRING => DnValue::UniversalString(UniversalString::from_utf32be(bytes).ok()?),
        _ => return None,
    })
}

fn read_tbs(r: &mut BERReaderSeq<'_, '_>) -> ASN1Result<ParsedCert> {
    r.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_u8()))?; // version
    r.next().read_der()?; // serialNumber
    r.next().read_der()?; // signature
    let issuer_der = r.next().read_der()?;
    let not_after = r.next().read_sequence(|r| {
        read_time(r.next())?;
        read_time(r.next())
    })?;
    let (subject_entries, subject_der) = r.next().read_with_buffer(read_name)?;
    let subject_der = subject_der.to_vec();
    let public_key = r.next().read_sequence(|r| {
        r.next().read_der()?; // algorithm
        Ok(r.next().read_bitvec_bytes()?.0)
    })?;
    let mut extensions = Vec::new();
    // issuerUniqueID [1], subjectUniqueID [2] and extensions [3], each optional.
    while let Some(field) = r.read_optional(|r| r.read_tagged_der())? {
        if field.tag() == Tag::context(3) {
            extensions = yasna::parse_der(field.value(), |r| {
                r.collect_sequence_of(|r| {
                    r.read_sequence(|r| {
                        let oid = r.next().read_oid()?.components().clone();
                        let critical = r.read_default(false, |r| r.read_bool())?;
                        let value = r.next().read_bytes()?;
                        Ok(Extension {
                            oid,
                            critical,
                            value,
                        })
                    })
                })
            })?;
        }
    }
    Ok(ParsedCert {
        issuer_der,
        subject_der,
        subject_entries,
        public_key,
        not_after,
        extensions,
    })
}

type NameEntries = Vec<Option<(Vec<u64>, TaggedDerValue)>>;

fn read_name(r: BERReader<'_, '_>) -> ASN1Result<NameEntries> {
    r.collect_sequence_of(|r| {
        let mut atvs = r.collect_set_of(|r| {
            r.read_sequence(|r| {
                let oid = r.next().read_oid()?.components().clone();
                let value = r.next().read_tagged_der()?;
                Ok((oid, value))
            })
        })?;
        Ok(if atvs.len() == 1 { atvs.pop() } else { None })
    })
}

fn read_time(r: BERReader<'_, '_>) -> ASN1Result<OffsetDateTime> {
    if r.lookahead_tag()? == TAG_UTCTIME {
        Ok(*r.read_utctime()?.datetime())
    } else {
        Ok(*r.read_generalized_time()?.datetime())
    }
}
