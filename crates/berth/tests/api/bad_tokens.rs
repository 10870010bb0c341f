//! Missing, malformed and forged credentials get RFC 6750 challenges.

use ed25519_dalek::Signer;
use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn missing_malformed_and_forged_tokens_get_rfc6750_challenges() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "forge").await;
    let real = token_of(&api, &u).await;
    let kid = jwt_part(&real, 0)["kid"].as_str().unwrap().to_owned();
    let claims = jwt_part(&real, 1);

    // No credentials: the challenge without an error code (RFC 6750 §3.1).
    let r = send(api.get("/api/v1/auth/check")).await;
    r.expect_error(401, "unauthorized");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="berth""#)
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));

    let enc = |v: &Value| b64(v.to_string().as_bytes());
    let foreign = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let forge = |header: Value, claims: &Value, key: &ed25519_dalek::SigningKey| {
        let signed = format!("{}.{}", enc(&header), enc(claims));
        let sig = key.sign(signed.as_bytes());
        format!("{signed}.{}", b64(&sig.to_bytes()))
    };
    let eddsa = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
    let mut escalated = claims.clone();
    escalated["scope"] = json!("users:read users:write projects:read");
    let mut as_admin = claims.clone();
    let admin_id = jwt_part(&admin, 1)["sub"].clone();
    as_admin["sub"] = admin_id;
    let (real_signed, real_sig) = real.rsplit_once('.').unwrap();

    let cases: Vec<(&str, String)> = vec![
        ("garbage", "Bearer garbage".into()),
        ("bare garbage", "not-a-token".into()),
        ("three dots", "Bearer a.b.c".into()),
        ("empty bearer", "Bearer ".into()),
        (
            "foreign key, our kid",
            format!("Bearer {}", forge(eddsa.clone(), &claims, &foreign)),
        ),
        (
            "foreign key, unknown kid",
            format!(
                "Bearer {}",
                forge(json!({"alg": "EdDSA", "kid": "nope"}), &claims, &foreign)
            ),
        ),
        (
            "no kid",
            format!(
                "Bearer {}",
                forge(json!({"alg": "EdDSA"}), &claims, &foreign)
            ),
        ),
        (
            "alg none",
            format!(
                "Bearer {}.{}.",
                enc(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                enc(&claims)
            ),
        ),
        (
            "alg none, real signature",
            format!(
                "Bearer {}.{}.{real_sig}",
                enc(&json!({"alg": "none", "kid": kid})),
                enc(&claims)
            ),
        ),
        (
            "HS256 with the public key",
            format!(
                "Bearer {}.{}.{real_sig}",
                enc(&json!({"alg": "HS256", "kid": kid})),
                enc(&claims)
            ),
        ),
        (
            "claims changed under a real signature",
            format!(
                "Bearer {}.{}.{real_sig}",
                real_signed.split('.').next().unwrap(),
                enc(&escalated)
            ),
        ),
        (
            "sub changed under a real signature",
            format!(
                "Bearer {}.{}.{real_sig}",
                real_signed.split('.').next().unwrap(),
                enc(&as_admin)
            ),
        ),
        (
            "truncated signature",
            format!("Bearer {}", &real[..real.len() - 4]),
        ),
        ("signature of another token", {
            let other_sig = admin.rsplit_once('.').unwrap().1;
            format!("Bearer {real_signed}.{other_sig}")
        }),
        ("bad scheme", format!("Basic {}", b64(b"admin:password"))),
        ("refresh token as bearer", {
            let pair = token_pair(&api, &u.username, &u.password).await;
            format!("Bearer {}", pair["refresh_token"].as_str().unwrap())
        }),
        ("api-key scheme with a JWT", format!("Api-Key {real}")),
    ];
    let mut failures = Vec::new();
    for (name, value) in cases {
        let r = send(api.get("/api/v1/auth/check").header("authorization", value)).await;
        let challenge = r.header("www-authenticate").unwrap_or_default();
        if r.status != 401 {
            failures.push(format!("{name}: status {} body {}", r.status, r.text));
        } else if let Err(e) = r.check_error_body("invalid_token") {
            failures.push(format!("{name}: {e}"));
        } else if !(challenge.starts_with(r#"Bearer realm="berth""#)
            && challenge.contains(r#"error="invalid_token""#))
        {
            failures.push(format!("{name}: WWW-Authenticate {challenge:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The real token still works (nothing above poisoned it).
    send(api.get("/api/v1/auth/check").bearer_auth(&real))
        .await
        .expect(200);
}
