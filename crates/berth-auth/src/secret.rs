//! Opaque secrets: `berth_<kind>_<random><checksum>`.
//!
//! The random part is 32 bytes (256 bits) from the OS CSPRNG, base62-encoded; the last six
//! characters are a checksum (the first four bytes of SHA-256 of the rest), so typos and
//! truncated copies are rejected before touching the store, and secret scanners can recognise
//! Berth secrets by prefix. Only the SHA-256 digest of the whole string is ever stored.

use crate::{random_bytes, sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 32 random bytes need at most 43 base62 digits; we always pad to this width.
const BODY_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;

/// What a secret is for; the prefix makes a leaked secret self-describing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    ApiKey,
    RefreshToken,
    Session,
    UserToken,
    ClientSecret,
    DeviceCode,
}

impl SecretKind {
    pub const ALL: [SecretKind; 6] = [
        SecretKind::ApiKey,
        SecretKind::RefreshToken,
        SecretKind::Session,
        SecretKind::UserToken,
        SecretKind::ClientSecret,
        SecretKind::DeviceCode,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::ApiKey => "berth_ak_",
            SecretKind::RefreshToken => "berth_rt_",
            SecretKind::Session => "berth_ss_",
            SecretKind::UserToken => "berth_ut_",
            SecretKind::ClientSecret => "berth_cs_",
            SecretKind::DeviceCode => "berth_dc_",
        }
    }

    /// The kind a string claims to be, judged by prefix only.
    pub fn of(s: &str) -> Option<SecretKind> {
        SecretKind::ALL
            .into_iter()
            .find(|k| s.starts_with(k.prefix()))
    }
}

/// A freshly generated secret: the plaintext (shown once) and what the store keeps.
pub struct NewSecret {
    pub plaintext: String,
    pub digest: [u8; 32],
    /// A short, non-secret prefix for lists (`berth_ak_3fQ9…`).
    pub display_prefix: String,
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSecret")
            .field("display_prefix", &self.display_prefix)
            .finish_non_exhaustive()
    }
}

pub fn generate(kind: SecretKind) -> NewSecret {
    let body = base62(&random_bytes::<32>(), BODY_LEN);
    let checksum = checksum(&body);
    let plaintext = format!("{}{}{}", kind.prefix(), body, checksum);
    NewSecret {
        digest: sha256(plaintext.as_bytes()),
        display_prefix: format!("{}{}", kind.prefix(), &body[..8]),
        plaintext,
    }
}

/// Checks the shape and checksum of a presented secret of the expected kind and returns the
/// digest to look it up by. `None` means it cannot be a secret Berth issued.
pub fn parse(kind: SecretKind, presented: &str) -> Option<[u8; 32]> {
    let rest = presented.strip_prefix(kind.prefix())?;
    if rest.len() != BODY_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let (body, sum) = rest.split_at(BODY_LEN);
    if !crate::ct_eq(checksum(body).as_bytes(), sum.as_bytes()) {
        return None;
    }
    Some(sha256(presented.as_bytes()))
}

fn checksum(body: &str) -> String {
    base62(&sha256(body.as_bytes())[..4], CHECKSUM_LEN)
}

/// Big-endian base62 of `bytes`, left-padded with '0' to `width`.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut digits = Vec::with_capacity(width);
    let mut num: Vec<u8> = bytes.to_vec();
    while num.iter().any(|&b| b != 0) {
        let mut rem = 0u32;
        for b in num.iter_mut() {
            let acc = (rem << 8) | u32::from(*b);
            *b = (acc / 62) as u8;
            rem = acc % 62;
        }
        digits.push(ALPHABET[rem as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).expect("alphabet is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_have_full_entropy_width() {
        for kind in SecretKind::ALL {
            let s = generate(kind);
            assert!(s.plaintext.starts_with(kind.prefix()));
            assert_eq!(
                s.plaintext.len(),
                kind.prefix().len() + BODY_LEN + CHECKSUM_LEN
            );
            assert_eq!(parse(kind, &s.plaintext), Some(s.digest));
            assert_eq!(SecretKind::of(&s.plaintext), Some(kind));
        }
    }

    #[test]
    fn tampered_or_foreign_secrets_are_rejected() {
        let s = generate(SecretKind::ApiKey).plaintext;
        let mut chars: Vec<char> = s.chars().collect();
        let i = SecretKind::ApiKey.prefix().len() + 5;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let tampered: String = chars.into_iter().collect();
        assert_eq!(parse(SecretKind::ApiKey, &tampered), None);
        assert_eq!(parse(SecretKind::RefreshToken, &s), None);
        assert_eq!(parse(SecretKind::ApiKey, &s[..s.len() - 1]), None);
        assert_eq!(parse(SecretKind::ApiKey, "berth_ak_"), None);
    }

    #[test]
    fn base62_pads_and_encodes_big_endian() {
        assert_eq!(base62(&[0, 0], 3), "000");
        assert_eq!(base62(&[61], 1), "z");
        assert_eq!(base62(&[62], 2), "10");
    }
}
