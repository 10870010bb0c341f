//! Berth's certificate authority and PostgreSQL credential helpers.
//!
//! Every instance Berth runs listens for TLS only, with a server certificate signed by Berth's
//! own certificate authority, and authenticates its owner role with scram-sha-256. This crate
//! holds the pure parts of that: generating and reloading the CA ([`CertificateAuthority`]),
//! issuing server certificates ([`IssuedCert`]), generating database passwords
//! ([`generate_password`]) and computing the SCRAM verifier PostgreSQL stores
//! ([`scram_sha256_verifier`]), so the plaintext password never reaches PostgreSQL or Berth's
//! store. No I/O happens here: callers seal the CA key, write files and run SQL.

mod ca;
mod der;
mod error;
mod password;
mod scram;

pub use ca::{CertificateAuthority, IssuedCert, DEFAULT_SERVER_CERT_VALIDITY};
pub use error::TlsError;
pub use password::generate_password;
pub use scram::{scram_sha256_verifier, SCRAM_ITERATIONS};

/// Fills `buf` from the operating system's random number generator.
///
/// Panics only if the OS generator fails, as elsewhere in Berth: there is no sensible way to
/// continue without randomness, and it does not happen on a working Linux system.
fn random_bytes(buf: &mut [u8]) {
    getrandom::getrandom(buf).expect("operating system random number generator failed");
}
