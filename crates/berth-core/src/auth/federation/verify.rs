//! Checking an external token against its issuer's keys and configuration, with no I/O: the
//! JWS header (algorithm allow-list, no critical extensions), the key it names, the signature,
//! then the claims (`exp` required, `nbf`/`iat` with leeway, `iss`, `aud`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::keys::{accepted_algorithm, PublicKey};
use super::{normalize_issuer, FederationError};
use crate::settings::TrustedIssuer;

/// Clock skew tolerated between Berth and an issuer, in seconds.
pub(crate) const LEEWAY_SECS: i64 = 60;

/// A token's claims once its signature and standard claims have been checked.
pub(crate) type Claims = Map<String, Value>;

/// A compact JWS split into its parts, with the header checked.
pub(crate) struct Jws<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    signing_input: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl<'a> Jws<'a> {
    pub fn parse(token: &'a str) -> Result<Jws<'a>, FederationError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            // Five parts would be an encrypted token (JWE): not supported either.
            return Err(FederationError::Malformed);
        };
        let signing_input = &token[..header.len() + 1 + payload.len()];
        let header: Map<String, Value> = B64
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(FederationError::Malformed)?;
        let alg = match header.get("alg") {
            Some(Value::String(name)) => accepted_algorithm(name)
                .ok_or_else(|| FederationError::Algorithm(name.chars().take(32).collect()))?,
            _ => return Err(FederationError::Malformed),
        };
        // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
        if header.contains_key("crit") {
            return Err(FederationError::Critical);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.clone()),
            Some(_) => return Err(FederationError::Malformed),
        };
        Ok(Jws {
            alg,
            kid,
            signing_input,
            payload,
            signature,
        })
    }

    /// The keys of `keys` this token says signed it: those with its `kid`, or, when it names
    /// none, every key that fits its algorithm. Empty means "unknown key" (worth a refetch).
    pub fn candidates<'k>(&self, keys: &'k [PublicKey]) -> Vec<&'k PublicKey> {
        match &self.kid {
            Some(kid) => keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
                .collect(),
            None => keys.iter().filter(|k| k.accepts(self.alg)).collect(),
        }
    }

    /// Verifies the signature with one of `keys` and returns the (not yet checked) claims.
    pub fn verify(&self, keys: &[PublicKey]) -> Result<Claims, FederationError> {
        let candidates = self.candidates(keys);
        if candidates.is_empty() {
            return Err(FederationError::UnknownKey);
        }
        let fitting: Vec<&PublicKey> = candidates
            .into_iter()
            .filter(|k| k.accepts(self.alg))
            .collect();
        if fitting.is_empty() {
            return Err(FederationError::KeyAlgorithm(format!("{:?}", self.alg)));
        }
        let valid = fitting.iter().any(|key| {
            jsonwebtoken::crypto::verify(
                self.signature,
                self.signing_input.as_bytes(),
                &key.decoding,
                self.alg,
            )
            .unwrap_or(false)
        });
        if !valid {
            return Err(FederationError::Signature);
        }
        B64.decode(self.payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(FederationError::Malformed)
    }
}

/// The whole check: header, key, signature, then claims, at time `now` (Unix seconds).
pub(crate) fn verify_token(
    token: &str,
    keys: &[PublicKey],
    trusted: &TrustedIssuer,
    now: i64,
) -> Result<Claims, FederationError> {
    let claims = Jws::parse(token)?.verify(keys)?;
    check_claims(&claims, trusted, now)?;
    Ok(claims)
}

/// The standard claims of a signed token: it must be current, from this issuer, and for this
/// audience.
pub(crate) fn check_claims(
    claims: &Claims,
    trusted: &TrustedIssuer,
    now: i64,
) -> Result<(), FederationError> {
    let exp = time_claim(claims, "exp")?.ok_or(FederationError::MissingClaim("exp"))?;
    if now >= exp + LEEWAY_SECS {
        return Err(FederationError::Expired);
    }
    if let Some(nbf) = time_claim(claims, "nbf")? {
        if now + LEEWAY_SECS < nbf {
            return Err(FederationError::NotYetValid);
        }
    }
    if let Some(iat) = time_claim(claims, "iat")? {
        if now + LEEWAY_SECS < iat {
            return Err(FederationError::NotYetValid);
        }
    }
    match claims.get("iss") {
        None => return Err(FederationError::MissingClaim("iss")),
        Some(Value::String(iss)) => {
            if normalize_issuer(iss) != normalize_issuer(&trusted.issuer) {
                return Err(FederationError::WrongIssuer(
                    iss.chars().take(256).collect(),
                ));
            }
        }
        Some(_) => return Err(FederationError::BadClaim("iss".into())),
    }
    let intended = match claims.get("aud") {
        None => return Err(FederationError::MissingClaim("aud")),
        Some(Value::String(aud)) => aud == &trusted.audience,
        Some(Value::Array(auds)) => {
            if !auds.iter().all(Value::is_string) {
                return Err(FederationError::BadClaim("aud".into()));
            }
            auds.iter()
                .any(|a| a.as_str() == Some(trusted.audience.as_str()))
        }
        Some(_) => return Err(FederationError::BadClaim("aud".into())),
    };
    if !intended {
        return Err(FederationError::WrongAudience(trusted.audience.clone()));
    }
    Ok(())
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional), if present.
fn time_claim(claims: &Claims, name: &'static str) -> Result<Option<i64>, FederationError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                _ => Err(FederationError::BadClaim(name.into())),
            }
        }
        Some(_) => Err(FederationError::BadClaim(name.into())),
    }
}

#[cfg(test)]
mod tests {
    use berth_auth::jwt::SigningKey;
    use serde_json::json;

    use super::super::keys::parse_jwk;
    use super::*;
    use crate::settings::MatchBy;

    const ISS: &str = "https://idp.example";
    const AUD: &str = "berth";
    const NOW: i64 = 1_700_000_000;

    fn trusted() -> TrustedIssuer {
        TrustedIssuer {
            issuer: format!("{ISS}/"),
            audience: AUD.into(),
            user_claim: "email".into(),
            match_by: MatchBy::Email,
            create_users: false,
        }
    }

    fn claims(v: Value) -> Claims {
        v.as_object().unwrap().clone()
    }

    fn good() -> Value {
        json!({"iss": ISS, "aud": AUD, "exp": NOW + 300, "iat": NOW, "nbf": NOW, "sub": "s1"})
    }

    fn with(key: &str, value: Value) -> Claims {
        let mut c = good();
        c[key] = value;
        claims(c)
    }

    fn without(key: &str) -> Claims {
        let mut c = claims(good());
        c.remove(key);
        c
    }

    #[test]
    fn good_claims_pass() {
        check_claims(&claims(good()), &trusted(), NOW).unwrap();
        // The configured issuer has a trailing slash, the token's has none: the same issuer.
        check_claims(&with("iss", json!(format!("{ISS}/"))), &trusted(), NOW).unwrap();
        check_claims(&with("aud", json!(["other", AUD])), &trusted(), NOW).unwrap();
        check_claims(
            &with("exp", json!((NOW + 300) as f64 + 0.5)),
            &trusted(),
            NOW,
        )
        .unwrap();
        check_claims(&without("nbf"), &trusted(), NOW).unwrap();
        check_claims(&without("iat"), &trusted(), NOW).unwrap();
    }

    #[test]
    fn time_bounds_allow_sixty_seconds_of_skew() {
        let t = trusted();
        assert!(check_claims(&with("exp", json!(NOW - 59)), &t, NOW).is_ok());
        assert_eq!(
            check_claims(&with("exp", json!(NOW - 60)), &t, NOW),
            Err(FederationError::Expired)
        );
        assert!(check_claims(&with("nbf", json!(NOW + 60)), &t, NOW).is_ok());
        assert_eq!(
            check_claims(&with("nbf", json!(NOW + 61)), &t, NOW),
            Err(FederationError::NotYetValid)
        );
        assert!(check_claims(&with("iat", json!(NOW + 60)), &t, NOW).is_ok());
        assert_eq!(
            check_claims(&with("iat", json!(NOW + 61)), &t, NOW),
            Err(FederationError::NotYetValid)
        );
    }

    #[test]
    fn missing_or_malformed_claims_fail() {
        let t = trusted();
        assert_eq!(
            check_claims(&without("exp"), &t, NOW),
            Err(FederationError::MissingClaim("exp"))
        );
        assert_eq!(
            check_claims(&without("aud"), &t, NOW),
            Err(FederationError::MissingClaim("aud"))
        );
        assert_eq!(
            check_claims(&without("iss"), &t, NOW),
            Err(FederationError::MissingClaim("iss"))
        );
        for (k, v) in [
            ("exp", json!("soon")),
            ("exp", json!(null)),
            ("nbf", json!("now")),
            ("iat", json!([1])),
            ("exp", json!(1e300)),
            ("iss", json!([ISS])),
            ("aud", json!(7)),
            ("aud", json!([AUD, 7])),
        ] {
            assert!(
                matches!(
                    check_claims(&with(k, v.clone()), &t, NOW),
                    Err(FederationError::BadClaim(_))
                ),
                "{k}: {v}"
            );
        }
    }

    #[test]
    fn issuer_and_audience_must_match() {
        let t = trusted();
        for iss in [
            "https://evil.example",
            "https://idp.example//",
            "https://idp.example/x",
            "http://idp.example",
        ] {
            assert!(
                matches!(
                    check_claims(&with("iss", json!(iss)), &t, NOW),
                    Err(FederationError::WrongIssuer(_))
                ),
                "{iss}"
            );
        }
        for aud in [
            json!("Berth"),
            json!("berth2"),
            json!([]),
            json!(["a", "b"]),
        ] {
            assert_eq!(
                check_claims(&with("aud", aud.clone()), &t, NOW),
                Err(FederationError::WrongAudience(AUD.into())),
                "{aud}"
            );
        }
    }

    fn b64json(v: Value) -> String {
        B64.encode(serde_json::to_vec(&v).unwrap())
    }

    fn forge(header: Value, claims: Value) -> String {
        format!(
            "{}.{}.{}",
            b64json(header),
            b64json(claims),
            B64.encode([7u8; 64])
        )
    }

    #[test]
    fn headers_are_checked_before_any_key() {
        let c = good();
        for alg in ["none", "HS256", "HS512", "RSA-OAEP", "eddsa"] {
            let token = forge(json!({"alg": alg, "kid": "k1"}), c.clone());
            assert!(
                matches!(Jws::parse(&token), Err(FederationError::Algorithm(_))),
                "{alg}"
            );
        }
        // An unsigned token with an empty signature part.
        let token = format!(
            "{}.{}.",
            b64json(json!({"alg": "none"})),
            b64json(c.clone())
        );
        assert!(matches!(
            Jws::parse(&token),
            Err(FederationError::Algorithm(_))
        ));
        let token = forge(
            json!({"alg": "EdDSA", "crit": ["exp"], "exp": 1}),
            c.clone(),
        );
        assert!(matches!(Jws::parse(&token), Err(FederationError::Critical)));
        for bad in [
            "",
            "a.b",
            "a.b.c.d.e",
            "!!.e30.AA",
            &forge(json!({"kid": "k1"}), c.clone()),
        ] {
            assert!(
                matches!(Jws::parse(bad), Err(FederationError::Malformed)),
                "{bad}"
            );
        }
        let token = forge(json!({"alg": "EdDSA", "kid": 5}), c);
        assert!(matches!(
            Jws::parse(&token),
            Err(FederationError::Malformed)
        ));
    }

    #[test]
    fn signatures_verify_against_the_named_key_only() {
        let k1 = SigningKey::generate("k1".into());
        let k2 = SigningKey::generate("k2".into());
        let keys = vec![
            parse_jwk(&k1.verifying_key().jwk()).unwrap(),
            parse_jwk(&k2.verifying_key().jwk()).unwrap(),
        ];
        let t = trusted();
        let token = k1.sign(&good());
        let got = verify_token(&token, &keys, &t, NOW).unwrap();
        assert_eq!(got["sub"], "s1");

        // k1's token relabelled as k2's: the signature does not verify.
        let relabelled = {
            let (_, rest) = token.split_once('.').unwrap();
            format!("{}.{rest}", b64json(json!({"alg": "EdDSA", "kid": "k2"})))
        };
        assert_eq!(
            verify_token(&relabelled, &keys, &t, NOW),
            Err(FederationError::Signature)
        );
        // A tampered payload.
        let tampered = {
            let mut parts: Vec<&str> = token.split('.').collect();
            let evil = b64json(json!({"iss": ISS, "aud": AUD, "exp": NOW + 300, "sub": "admin"}));
            parts[1] = &evil;
            parts.join(".")
        };
        assert_eq!(
            verify_token(&tampered, &keys, &t, NOW),
            Err(FederationError::Signature)
        );
        // An unknown kid.
        let k3 = SigningKey::generate("k3".into());
        assert_eq!(
            verify_token(&k3.sign(&good()), &keys, &t, NOW),
            Err(FederationError::UnknownKey)
        );
        // A known kid, but the header claims another algorithm than the key's.
        let mismatched = forge(json!({"alg": "ES256", "kid": "k1"}), good());
        assert_eq!(
            verify_token(&mismatched, &keys, &t, NOW),
            Err(FederationError::KeyAlgorithm("ES256".into()))
        );
        // Good signature, bad claims.
        let mut late = good();
        late["exp"] = json!(NOW - 3600);
        assert_eq!(
            verify_token(&k1.sign(&late), &keys, &t, NOW),
            Err(FederationError::Expired)
        );
    }

    #[test]
    fn tokens_without_kid_try_every_fitting_key() {
        let k1 = SigningKey::generate("k1".into());
        let k2 = SigningKey::generate("k2".into());
        let mut jwk2 = k2.verifying_key().jwk();
        jwk2.as_object_mut().unwrap().remove("kid");
        let keys = vec![
            parse_jwk(&k1.verifying_key().jwk()).unwrap(),
            parse_jwk(&jwk2).unwrap(),
        ];
        let token = k2.sign(&good());
        let (_, rest) = token.split_once('.').unwrap();
        let no_kid = format!("{}.{rest}", b64json(json!({"alg": "EdDSA"})));
        // The header changed, so the signature no longer covers it...
        assert_eq!(
            verify_token(&no_kid, &keys, &trusted(), NOW),
            Err(FederationError::Signature)
        );
        // ...but a token signed without a kid verifies against the one key that signed it.
        let signed = sign_without_kid(&k2, &good());
        verify_token(&signed, &keys, &trusted(), NOW).unwrap();
    }

    /// EdDSA over `{"alg":"EdDSA"}.claims`, via jsonwebtoken with the key's PKCS#8 form.
    fn sign_without_kid(key: &SigningKey, claims: &Value) -> String {
        // RFC 8410 PKCS#8 prefix for an Ed25519 private key.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&key.seed());
        let enc = jsonwebtoken::EncodingKey::from_ed_der(&der);
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::EdDSA), claims, &enc).unwrap()
    }
}
