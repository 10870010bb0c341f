//! Berth's credential primitives, free of storage and HTTP: password hashing on a bounded
//! blocking pool, opaque secrets (API keys, refresh tokens, …), EdDSA-signed JWT access tokens,
//! and sealing of private keys at rest.

pub mod jwt;
pub mod password;
pub mod seal;
pub mod secret;

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS RNG failing is not something a server can recover from.
    getrandom::getrandom(&mut buf).expect("operating system random number generator failed");
    buf
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Constant-time equality for secrets and digests.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
