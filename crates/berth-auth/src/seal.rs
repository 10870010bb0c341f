//! Sealing small secrets at rest (the JWT signing keys' private halves) with AES-256-GCM under
//! a master key that lives outside the database: a 0600 file in the data directory, or
//! `BERTH_MASTER_KEY` when several replicas share one store.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

use crate::random_bytes;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is malformed or was sealed under a different master key")]
    Open,
    #[error("master key must be 32 bytes, base64-encoded")]
    BadMasterKey,
}

#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn generate_encoded() -> String {
        base64::engine::general_purpose::STANDARD.encode(random_bytes::<32>())
    }

    pub fn from_encoded(encoded: &str) -> Result<Self, SealError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| SealError::BadMasterKey)?;
        let key: [u8; 32] = raw.try_into().map_err(|_| SealError::BadMasterKey)?;
        Ok(MasterKey(Aes256Gcm::new(&key.into())))
    }

    /// `nonce || ciphertext`, bound to `context` (e.g. the key id) so sealed values cannot be
    /// swapped between rows.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<12>();
        let ct = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context,
                },
            )
            .expect("AES-GCM encryption of a small buffer cannot fail");
        [nonce.as_slice(), &ct].concat()
    }

    pub fn open(&self, sealed: &[u8], context: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < 12 + 16 {
            return Err(SealError::Open);
        }
        let (nonce, ct) = sealed.split_at(12);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: context,
                },
            )
            .map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_context_binding() {
        let k = MasterKey::from_encoded(&MasterKey::generate_encoded()).unwrap();
        let sealed = k.seal(b"secret", b"kid-1");
        assert_eq!(k.open(&sealed, b"kid-1").unwrap(), b"secret");
        assert!(k.open(&sealed, b"kid-2").is_err());
        let other = MasterKey::from_encoded(&MasterKey::generate_encoded()).unwrap();
        assert!(other.open(&sealed, b"kid-1").is_err());
        assert!(MasterKey::from_encoded("c2hvcnQ=").is_err());
    }
}
