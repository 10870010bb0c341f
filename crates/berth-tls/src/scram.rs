//! The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 5802 and RFC 7677), so Berth
//! can set a role's password with `ALTER ROLE … PASSWORD '<verifier>'`: PostgreSQL recognises
//! the format and stores it as is, and the plaintext never reaches its logs, its catalog or
//! Berth's store.
//!
//! The password is first normalised with SASLprep where that succeeds, as PostgreSQL and libpq
//! both do; otherwise its raw bytes are used (again like both of them), so any password a client
//! can type authenticates.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::random_bytes;

/// PBKDF2 iterations, PostgreSQL's default (`scram_iterations`).
pub const SCRAM_ITERATIONS: u32 = 4096;
const SALT_LEN: usize = 16;

/// The PostgreSQL SCRAM-SHA-256 verifier for `password`:
/// `SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>`, with
/// [`SCRAM_ITERATIONS`] iterations and a fresh 16-byte random salt. It contains only base64
/// characters, `$` and `:`, so it can be quoted in SQL as is.
pub fn scram_sha256_verifier(password: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    random_bytes(&mut salt);
    verifier_with_salt(password, &salt, SCRAM_ITERATIONS)
}

pub(crate) fn verifier_with_salt(password: &str, salt: &[u8], iterations: u32) -> String {
    let keys = ScramKeys::derive(password, salt, iterations);
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(keys.stored_key),
        STANDARD.encode(keys.server_key)
    )
}

pub(crate) struct ScramKeys {
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

impl ScramKeys {
    pub fn derive(password: &str, salt: &[u8], iterations: u32) -> ScramKeys {
        let prepared = stringprep::saslprep(password);
        let password = match &prepared {
            Ok(p) => p.as_bytes(),
            Err(_) => password.as_bytes(),
        };
        let salted: [u8; 32] =
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations.max(1));
        let client_key = hmac_sha256(&salted, b"Client Key");
        ScramKeys {
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }
}

pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 7677 section 3 (user "user", password "pencil"): a server
    /// holding our StoredKey and ServerKey accepts the client's proof and produces the same
    /// server signature.
    #[test]
    fn matches_rfc_7677() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt");
        let keys = ScramKeys::derive("pencil", &salt, 4096);
        let auth_message = "n=user,r=rOprNGfwEbeRWgbNEkqO,\
            r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,\
            c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_signature = hmac_sha256(&keys.server_key, auth_message.as_bytes());
        assert_eq!(
            STANDARD.encode(server_signature),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let proof = STANDARD
            .decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .expect("proof");
        let client_signature = hmac_sha256(&keys.stored_key, auth_message.as_bytes());
        let client_key: Vec<u8> = proof
            .iter()
            .zip(client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        assert_eq!(Sha256::digest(&client_key).as_slice(), keys.stored_key);

        assert_eq!(
            verifier_with_salt("pencil", &salt, 4096),
            format!(
                "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==${}:{}",
                STANDARD.encode(keys.stored_key),
                STANDARD.encode(keys.server_key)
            )
        );
    }

    #[test]
    fn verifier_has_postgres_format_and_fresh_salt() {
        let a = scram_sha256_verifier("secret");
        let b = scram_sha256_verifier("secret");
        assert_ne!(a, b, "a fresh salt each time");
        for v in [&a, &b] {
            let rest = v.strip_prefix("SCRAM-SHA-256$4096:").expect("prefix");
            let (salt, keys) = rest.split_once('$').expect("$");
            let (stored, server) = keys.split_once(':').expect(":");
            assert_eq!(STANDARD.decode(salt).expect("salt").len(), 16);
            assert_eq!(STANDARD.decode(stored).expect("stored").len(), 32);
            assert_eq!(STANDARD.decode(server).expect("server").len(), 32);
            assert!(v
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+/=$:-".contains(&c)));
        }
    }

    #[test]
    fn saslprep_normalises_like_postgres() {
        let salt = [7u8; 16];
        let v = |p: &str| verifier_with_salt(p, &salt, 16);
        // Non-ASCII spaces map to a space, soft hyphens to nothing, NFKC folds ligatures.
        assert_eq!(v("a\u{00A0}b"), v("a b"));
        assert_eq!(v("pa\u{00AD}ss"), v("pass"));
        assert_eq!(v("\u{FB01}sh"), v("fish"));
        // Prohibited characters: the raw bytes are used, as PostgreSQL does.
        assert_ne!(v("a\u{7}b"), v("ab"));
        assert_eq!(v(""), v(""));
    }
}
