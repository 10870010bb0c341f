//! The one error type of this crate.

/// Why a certificate could not be generated, issued or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A common name that is empty, longer than 64 characters or holds control characters.
    #[error("invalid common name {0:?}: must be 1 to 64 characters without control characters")]
    InvalidCommonName(String),
    /// A DNS name that cannot go into a certificate's subjectAltName.
    #[error("invalid DNS name {0:?}: expected a host name such as db.example.com")]
    InvalidDnsName(String),
    /// A server certificate request without any DNS name or IP address.
    #[error("a server certificate needs at least one DNS name or IP address")]
    NoSubjectAltNames,
    /// A validity that is zero or does not fit in a certificate.
    #[error("invalid certificate validity")]
    InvalidValidity,
    /// The CA certificate given to [`crate::CertificateAuthority::from_parts`] is unusable.
    #[error("invalid CA certificate: {0}")]
    InvalidCertificate(String),
    /// The CA private key given to [`crate::CertificateAuthority::from_parts`] is unusable.
    #[error("invalid CA private key: {0}")]
    InvalidKey(String),
    /// The CA private key does not belong to the CA certificate.
    #[error("the CA private key does not match the CA certificate")]
    KeyMismatch,
    /// The CA certificate expired, so nothing it signs would be trusted.
    #[error("the CA certificate has expired")]
    CaExpired,
    /// Key generation or signing failed inside the certificate library.
    #[error("certificate generation failed: {0}")]
    Generation(String),
}
