//! An issuer's JWKS (RFC 7517), reduced to the signature keys Berth will verify with. Keys Berth
//! cannot or must not use (encryption keys, symmetric keys, small RSA moduli, unknown types)
//! are skipped rather than failing the whole set, as identity providers often publish them
//! side by side.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// The algorithms an external token may be signed with: asymmetric ones only. Never `none`, and
/// never HMAC, whose "public" key would let anyone who read the JWKS forge tokens.
pub(crate) const ACCEPTED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Keys considered per set; real issuers publish a handful.
const MAX_KEYS: usize = 100;
const MIN_RSA_BITS: usize = 2048;

/// The accepted algorithm called `name` (case-sensitive, as RFC 7518 registers them).
pub(crate) fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    let alg: Algorithm = name.parse().ok()?;
    ACCEPTED_ALGORITHMS.contains(&alg).then_some(alg)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl KeyType {
    /// Whether a key of this type can verify `alg` signatures.
    pub fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyType::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyType::P256 => alg == Algorithm::ES256,
            KeyType::P384 => alg == Algorithm::ES384,
            KeyType::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

/// One usable signature key.
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it names one: tokens it verifies must use exactly that.
    pub alg: Option<Algorithm>,
    pub key_type: KeyType,
    pub decoding: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key_type", &self.key_type)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Whether this key may verify a token whose header says `alg`.
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.key_type.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

/// The usable keys of a JWKS document. An error when it is not a key set at all or holds no
/// key Berth can verify with — both mean the issuer is misconfigured (or is not the issuer).
pub(crate) fn parse_jwks(doc: &Value) -> Result<Vec<PublicKey>, String> {
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the key set has no `keys` array")?;
    let mut usable = Vec::new();
    for (i, jwk) in keys.iter().take(MAX_KEYS).enumerate() {
        match parse_jwk(jwk) {
            Ok(key) => usable.push(key),
            Err(why) => tracing::debug!(index = i, kid = ?jwk.get("kid"), %why, "skipping JWK"),
        }
    }
    if usable.is_empty() {
        return Err("the key set holds no usable signature keys".into());
    }
    Ok(usable)
}

/// One JWK as a verification key, or why it is not one.
pub(crate) fn parse_jwk(jwk: &Value) -> Result<PublicKey, String> {
    let obj = jwk.as_object().ok_or("not an object")?;
    let text = |name: &str| -> Result<Option<&str>, String> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(format!("`{name}` is not a string")),
        }
    };
    if let Some(usage) = text("use")? {
        if usage != "sig" {
            return Err(format!("intended for `{usage}`, not signatures"));
        }
    }
    if let Some(ops) = obj.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|o| o.as_str() == Some("verify")));
        if !verifies {
            return Err("`key_ops` does not include `verify`".into());
        }
    }
    let alg = match text("alg")? {
        Some(name) => Some(
            accepted_algorithm(name)
                .ok_or_else(|| format!("algorithm `{name}` is not accepted"))?,
        ),
        None => None,
    };
    let kid = text("kid")?.map(str::to_owned);
    let component = |name: &str| -> Result<Vec<u8>, String> {
        let value = text(name)?.ok_or_else(|| format!("`{name}` is missing"))?;
        B64.decode(value.trim_end_matches('='))
            .map_err(|_| format!("`{name}` is not base64url"))
    };
    let kty = text("kty")?.ok_or("`kty` is missing")?;
    let (key_type, decoding) = match kty {
        "RSA" => {
            let n = component("n")?;
            let e = component("e")?;
            let n_trimmed = &n[n.iter().take_while(|b| **b == 0).count()..];
            let bits =
                n_trimmed.len() * 8 - n_trimmed.first().map_or(0, |b| b.leading_zeros() as usize);
            if bits < MIN_RSA_BITS {
                return Err(format!("RSA modulus of {bits} bits is too small"));
            }
            if e.is_empty() || e.len() > 8 {
                return Err("RSA exponent is malformed".into());
            }
            (KeyType::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            let (key_type, len) = match text("crv")? {
                Some("P-256") => (KeyType::P256, 32),
                Some("P-384") => (KeyType::P384, 48),
                other => return Err(format!("EC curve {other:?} is not accepted")),
            };
            let x = component("x")?;
            let y = component("y")?;
            if x.len() != len || y.len() != len {
                return Err("EC coordinates have the wrong length".into());
            }
            // An uncompressed SEC1 point, the form `from_ec_components` builds too.
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (key_type, DecodingKey::from_ec_der(&point))
        }
        "OKP" => {
            if text("crv")? != Some("Ed25519") {
                return Err("OKP curve is not Ed25519".into());
            }
            let x = component("x")?;
            if x.len() != 32 {
                return Err("Ed25519 key has the wrong length".into());
            }
            (KeyType::Ed25519, DecodingKey::from_ed_der(&x))
        }
        other => return Err(format!("key type `{other}` is not accepted")),
    };
    if let Some(alg) = alg {
        if !key_type.fits(alg) {
            return Err(format!("a {key_type:?} key cannot be used with {alg:?}"));
        }
    }
    Ok(PublicKey {
        kid,
        alg,
        key_type,
        decoding,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ed_jwk() -> Value {
        berth_auth::jwt::SigningKey::generate("k1".into())
            .verifying_key()
            .jwk()
    }

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        for name in [
            "none", "None", "HS256", "HS384", "HS512", "rs256", "", "RSA-OAEP",
        ] {
            assert_eq!(accepted_algorithm(name), None, "{name}");
        }
        for name in [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ] {
            assert!(accepted_algorithm(name).is_some(), "{name}");
        }
    }

    #[test]
    fn ed25519_jwk_parses() {
        let key = parse_jwk(&ed_jwk()).unwrap();
        assert_eq!(key.kid.as_deref(), Some("k1"));
        assert_eq!(key.alg, Some(Algorithm::EdDSA));
        assert!(key.accepts(Algorithm::EdDSA));
        assert!(!key.accepts(Algorithm::RS256));
    }

    #[test]
    fn jwk_alg_binds_the_key() {
        let mut rsa =
            json!({"kty": "RSA", "kid": "r", "n": B64.encode([0xc1u8; 256]), "e": "AQAB"});
        let key = parse_jwk(&rsa).unwrap();
        assert!(key.accepts(Algorithm::RS256) && key.accepts(Algorithm::PS512));
        assert!(!key.accepts(Algorithm::ES256) && !key.accepts(Algorithm::EdDSA));
        rsa["alg"] = json!("RS256");
        let key = parse_jwk(&rsa).unwrap();
        assert!(key.accepts(Algorithm::RS256));
        assert!(!key.accepts(Algorithm::RS384) && !key.accepts(Algorithm::PS256));
        rsa["alg"] = json!("ES256");
        assert!(
            parse_jwk(&rsa).is_err(),
            "alg that does not fit the key type"
        );
    }

    #[test]
    fn unusable_keys_are_refused() {
        let n = B64.encode([0xc1u8; 256]);
        let cases = [
            json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            json!({"kty": "RSA", "n": n, "e": "AQAB", "use": "enc"}),
            json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RSA-OAEP"}),
            json!({"kty": "RSA", "n": n, "e": "AQAB", "key_ops": ["encrypt"]}),
            json!({"kty": "RSA", "n": B64.encode([0xc1u8; 128]), "e": "AQAB"}),
            json!({"kty": "RSA", "n": n}),
            json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
            json!({"kty": "EC", "crv": "P-256", "x": B64.encode([1u8; 31]), "y": B64.encode([1u8; 32])}),
            json!({"kty": "OKP", "crv": "X25519", "x": B64.encode([1u8; 32])}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode([1u8; 31])}),
            json!({"kty": 7}),
            json!("RSA"),
        ];
        for jwk in cases {
            assert!(parse_jwk(&jwk).is_err(), "{jwk}");
        }
    }

    #[test]
    fn key_sets_skip_what_they_cannot_use() {
        let set = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}, ed_jwk(), {"kty": "RSA", "use": "enc"}]});
        let keys = parse_jwks(&set).unwrap();
        assert_eq!(keys.len(), 1);
        assert!(parse_jwks(&json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).is_err());
        assert!(parse_jwks(&json!({"keys": []})).is_err());
        assert!(parse_jwks(&json!({"issuer": "x"})).is_err());
    }
}
