//! JWT access tokens (RFC 9068 profile), signed with Ed25519 (`alg: EdDSA`).
//!
//! Berth only ever issues and accepts one algorithm, so this is a small, strict JWS compact
//! implementation rather than a general JOSE library: the header must say `EdDSA`, the `kid`
//! must name a key we publish, and claims are checked by [`AccessClaims::validate`].

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, Verifier};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::random_bytes;

pub const ALG: &str = "EdDSA";
pub const TYP: &str = "at+jwt";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is not a well-formed JWT")]
    Malformed,
    #[error("token is signed with an unsupported algorithm")]
    Algorithm,
    #[error("token was signed by an unknown key")]
    UnknownKey,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token was issued by another issuer or for another audience")]
    WrongIssuerOrAudience,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub kid: Option<String>,
}

/// The claims of a Berth access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    /// The user id.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// Space-separated permission names this token carries.
    pub scope: String,
    /// The grant (token family or browser session) the token was issued from; revoking the
    /// grant invalidates the token at once.
    pub sid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `client_credentials` when the token was issued to an API client itself, in which case
    /// `sid` is the client's id rather than a grant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gty: Option<String>,
    /// The one project this token is limited to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
}

impl AccessClaims {
    /// Checks time bounds (with `leeway` seconds of clock skew), issuer and audience.
    pub fn validate(
        &self,
        now: i64,
        issuer: &str,
        audience: &str,
        leeway: i64,
    ) -> Result<(), JwtError> {
        if self.iss != issuer || self.aud != audience {
            return Err(JwtError::WrongIssuerOrAudience);
        }
        if now >= self.exp + leeway {
            return Err(JwtError::Expired);
        }
        if now + leeway < self.nbf {
            return Err(JwtError::NotYetValid);
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn generate(kid: String) -> Self {
        Self::from_seed(kid, random_bytes::<32>())
    }

    pub fn from_seed(kid: String, seed: [u8; 32]) -> Self {
        SigningKey {
            kid,
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        }
    }

    /// The private seed, to be sealed before it is stored.
    pub fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey {
            kid: self.kid.clone(),
            key: self.key.verifying_key(),
        }
    }

    pub fn sign<C: Serialize>(&self, claims: &C) -> String {
        let header = Header {
            alg: ALG.into(),
            typ: Some(TYP.into()),
            kid: Some(self.kid.clone()),
        };
        let mut token = String::with_capacity(512);
        token.push_str(&B64.encode(serde_json::to_vec(&header).expect("header serializes")));
        token.push('.');
        token.push_str(&B64.encode(serde_json::to_vec(claims).expect("claims serialize")));
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        token.push_str(&B64.encode(signature.to_bytes()));
        token
    }
}

#[derive(Clone, Debug)]
pub struct VerifyingKey {
    pub kid: String,
    key: ed25519_dalek::VerifyingKey,
}

impl VerifyingKey {
    pub fn from_bytes(kid: String, public: &[u8]) -> Option<Self> {
        let bytes: [u8; 32] = public.try_into().ok()?;
        Some(VerifyingKey {
            kid,
            key: ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()?,
        })
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The RFC 8037 JWK for this key, as published in the JWKS.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": B64.encode(self.key.to_bytes()),
            "kid": self.kid,
            "alg": ALG,
            "use": "sig",
        })
    }
}

/// Splits a compact JWS and decodes its header, without checking anything else.
pub fn decode_header(token: &str) -> Result<Header, JwtError> {
    let (header, _) = token.split_once('.').ok_or(JwtError::Malformed)?;
    let bytes = B64.decode(header).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| JwtError::Malformed)
}

/// Decodes the claims WITHOUT checking the signature: only for tokens already verified, or to
/// read `iss` before choosing how to verify.
pub fn claims_unverified<C: DeserializeOwned>(token: &str) -> Result<C, JwtError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let payload = B64.decode(payload).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
}

/// Verifies the signature with `key` (which the caller chose by the header's `kid`) and
/// decodes the claims. Time, issuer and audience are the caller's to check.
pub fn verify<C: DeserializeOwned>(token: &str, key: &VerifyingKey) -> Result<C, JwtError> {
    let header = decode_header(token)?;
    if header.alg != ALG {
        return Err(JwtError::Algorithm);
    }
    if header.kid.as_deref() != Some(key.kid.as_str()) {
        return Err(JwtError::UnknownKey);
    }
    let (signed, signature) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
    let (_, payload) = signed.split_once('.').ok_or(JwtError::Malformed)?;
    let signature = B64.decode(signature).map_err(|_| JwtError::Malformed)?;
    let signature =
        ed25519_dalek::Signature::from_slice(&signature).map_err(|_| JwtError::Malformed)?;
    key.key
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| JwtError::Signature)?;
    let payload = B64.decode(payload).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://berth.test".into(),
            sub: "u1".into(),
            aud: "https://berth.test/api".into(),
            exp,
            iat: 100,
            nbf: 100,
            jti: "j1".into(),
            scope: "projects:read".into(),
            sid: "s1".into(),
            client_id: None,
            gty: None,
            project_id: None,
        }
    }

    #[test]
    fn sign_verify_round_trip() {
        let key = SigningKey::generate("k1".into());
        let token = key.sign(&claims(200));
        let got: AccessClaims = verify(&token, &key.verifying_key()).unwrap();
        assert_eq!(got, claims(200));
        assert!(got
            .validate(150, "https://berth.test", "https://berth.test/api", 0)
            .is_ok());
        assert_eq!(
            got.validate(200, "https://berth.test", "https://berth.test/api", 0),
            Err(JwtError::Expired)
        );
        assert_eq!(
            got.validate(150, "https://other", "https://berth.test/api", 0),
            Err(JwtError::WrongIssuerOrAudience)
        );
    }

    #[test]
    fn rejects_foreign_keys_tampering_and_alg_confusion() {
        let key = SigningKey::generate("k1".into());
        let token = key.sign(&claims(200));
        let foreign = SigningKey::generate("k1".into());
        assert_eq!(
            verify::<AccessClaims>(&token, &foreign.verifying_key()),
            Err(JwtError::Signature)
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_payload = B64.encode(serde_json::to_vec(&claims(9_999_999)).unwrap());
        parts[1] = &forged_payload;
        assert_eq!(
            verify::<AccessClaims>(&parts.join("."), &key.verifying_key()),
            Err(JwtError::Signature)
        );
        let none_header = B64.encode(br#"{"alg":"none","kid":"k1"}"#);
        let none_token = format!("{none_header}.{}.", parts[1]);
        assert_eq!(
            verify::<AccessClaims>(&none_token, &key.verifying_key()),
            Err(JwtError::Algorithm)
        );
        assert_eq!(
            verify::<AccessClaims>("garbage", &key.verifying_key()),
            Err(JwtError::Malformed)
        );
    }
}
