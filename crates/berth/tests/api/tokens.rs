//! Token pairs: the access token is a verifiable JWT with the documented claims, refresh
//! tokens rotate and a reused one revokes its whole family, logout revokes the family.

use ed25519_dalek::Verifier;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn token_pair_is_a_verifiable_jwt_with_the_documented_claims() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "tok").await;

    let r = send(api.post_json(
        "/api/v1/auth/token",
        &json!({"username": u.username, "password": u.password}),
    ))
    .await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let pair = &r.json;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 3600);
    // Computed from two clock readings, so it may be a second short.
    let refresh_in = pair["refresh_expires_in"].as_i64().unwrap();
    assert!(
        (24 * 3600 - 1..=24 * 3600).contains(&refresh_in),
        "{refresh_in}"
    );
    let refresh = pair["refresh_token"].as_str().unwrap();
    assert!(refresh.starts_with("berth_rt_"), "{refresh}");
    // 256 bits need 43 base62 characters, plus the checksum.
    assert!(refresh.len() >= "berth_rt_".len() + 43, "{refresh}");
    assert_eq!(pair["user"]["id"], u.id.as_str());
    assert_eq!(pair["user"]["username"], u.username.as_str());
    assert_eq!(pair["user"]["is_platform_admin"], false);
    let perms = pair["user"]["permissions"].as_array().expect("permissions");
    assert!(perms.contains(&json!("projects:create")), "{perms:?}");
    assert!(!perms.contains(&json!("users:write")), "{perms:?}");
    assert!(!r.text.contains("password"), "{}", r.text);
    let access = pair["access_token"].as_str().unwrap().to_owned();

    // Header: EdDSA with a kid that the JWKS publishes.
    assert_eq!(access.split('.').count(), 3, "{access}");
    let header = jwt_part(&access, 0);
    assert_eq!(header["alg"], "EdDSA", "{header}");
    assert_eq!(header["typ"], "at+jwt", "{header}");
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let jwks = send(api.get("/.well-known/jwks.json")).await;
    jwks.expect(200);
    let jwk = jwks.json["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in JWKS {}", jwks.text))
        .clone();
    assert_eq!(jwk["kty"], "OKP");
    assert_eq!(jwk["crv"], "Ed25519");
    assert!(jwk.get("d").is_none(), "the JWKS publishes a private key!");

    // Verify the signature independently with the published key.
    let x: [u8; 32] = b64_decode(jwk["x"].as_str().unwrap()).try_into().unwrap();
    let key = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
    let (signed, sig) = access.rsplit_once('.').unwrap();
    let sig = ed25519_dalek::Signature::from_slice(&b64_decode(sig)).unwrap();
    key.verify(signed.as_bytes(), &sig)
        .expect("the access token verifies with the JWKS key");

    // Claims.
    let claims = jwt_part(&access, 1);
    assert_eq!(claims["iss"], s.base.as_str(), "{claims}");
    assert_eq!(claims["aud"], format!("{}/api", s.base), "{claims}");
    assert_eq!(claims["sub"], u.id.as_str(), "{claims}");
    let (exp, iat) = (
        claims["exp"].as_i64().unwrap(),
        claims["iat"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3600, "{claims}");
    assert!((iat - now_unix()).abs() < 600, "iat is not now: {claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    assert_eq!(claims["scope"], pair["scope"], "{claims}");
    let scope: Vec<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
    assert!(scope.contains(&"projects:create"), "{claims}");
    // An ordinary user's token does not claim platform-admin permissions.
    assert!(!scope.contains(&"users:write"), "{claims}");
    let sid = claims["sid"].as_str().expect("sid").to_owned();

    // Bearer and bare Authorization both work.
    for value in [
        format!("Bearer {access}"),
        format!("bearer {access}"),
        access.clone(),
    ] {
        let r = send(api.get("/api/v1/auth/check").header("authorization", value)).await;
        r.expect(200);
        assert_eq!(r.json["auth_method"], "access_token");
        assert_eq!(r.json["user"]["id"], u.id.as_str());
        assert_eq!(r.json["credential_id"], sid.as_str());
        assert!(r.json["expires_at"].is_string(), "{:?}", r.json);
    }

    // Signing in by email works too; each sign-in is its own family with fresh ids.
    let again = token_pair(&api, &u.email, &u.password).await;
    let claims2 = jwt_part(again["access_token"].as_str().unwrap(), 1);
    assert_ne!(claims2["jti"], claims["jti"]);
    assert_ne!(claims2["sid"], claims["sid"]);
    assert_ne!(again["refresh_token"], pair["refresh_token"]);
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "refresh").await;
    let p1 = token_pair(&api, &u.username, &u.password).await;
    let other_family = token_pair(&api, &u.username, &u.password).await;
    let (at1, rt1) = (
        p1["access_token"].as_str().unwrap(),
        p1["refresh_token"].as_str().unwrap(),
    );
    let refresh =
        |rt: &str| api.post_json("/api/v1/auth/token/refresh", &json!({"refresh_token": rt}));

    let r = send(refresh(rt1)).await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.json["token_type"], "Bearer");
    assert_eq!(r.json["user"]["id"], u.id.as_str());
    let at2 = r.json["access_token"].as_str().unwrap().to_owned();
    let rt2 = r.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt2, rt1);
    assert_ne!(at2, at1);
    assert!(rt2.starts_with("berth_rt_"));
    // Same family.
    assert_eq!(jwt_part(&at2, 1)["sid"], jwt_part(at1, 1)["sid"]);
    for at in [at1, at2.as_str()] {
        send(api.get("/api/v1/auth/check").bearer_auth(at))
            .await
            .expect(200);
    }

    // Rotate again: rt1 is now two generations old. Presenting it is reuse (a copy): the whole
    // family is revoked — the newest refresh token and every access token of it.
    let r = send(refresh(&rt2)).await;
    r.expect(200);
    let at3 = r.json["access_token"].as_str().unwrap().to_owned();
    let rt3 = r.json["refresh_token"].as_str().unwrap().to_owned();
    send(api.get("/api/v1/auth/check").bearer_auth(&at3))
        .await
        .expect(200);
    let r = send(refresh(rt1)).await;
    r.expect_error(401, "invalid_grant");
    send(refresh(&rt3)).await.expect_error(401, "invalid_grant");
    send(refresh(&rt2)).await.expect_error(401, "invalid_grant");
    for at in [at1, at2.as_str(), at3.as_str()] {
        let r = send(api.get("/api/v1/auth/check").bearer_auth(at)).await;
        r.expect_error(401, "invalid_token");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );
    }

    // The immediate parent presented again (a client that lost the response) gets, at most
    // once and only within the grace period, the same child — never a second new token; after
    // that it is reuse, and the family is revoked.
    let q = token_pair(&api, &u.username, &u.password).await;
    let qrt1 = q["refresh_token"].as_str().unwrap().to_owned();
    let r = send(refresh(&qrt1)).await;
    r.expect(200);
    let qrt2 = r.json["refresh_token"].as_str().unwrap().to_owned();
    let retry = send(refresh(&qrt1)).await;
    match retry.status {
        200 => assert_eq!(retry.json["refresh_token"], qrt2.as_str(), "{retry:#?}"),
        _ => {
            retry.expect_error(401, "invalid_grant");
        }
    }
    send(refresh(&qrt1))
        .await
        .expect_error(401, "invalid_grant");
    send(refresh(&qrt2))
        .await
        .expect_error(401, "invalid_grant");
    send(
        api.get("/api/v1/auth/check")
            .bearer_auth(q["access_token"].as_str().unwrap()),
    )
    .await
    .expect_error(401, "invalid_token");

    // Another sign-in of the same user is untouched.
    send(
        api.get("/api/v1/auth/check")
            .bearer_auth(other_family["access_token"].as_str().unwrap()),
    )
    .await
    .expect(200);
    send(refresh(other_family["refresh_token"].as_str().unwrap()))
        .await
        .expect(200);

    // Things that are not refresh tokens.
    let mut tampered = other_family["refresh_token"].as_str().unwrap().to_owned();
    tampered.replace_range(12..13, if &tampered[12..13] == "A" { "B" } else { "A" });
    for bad in [
        tampered.as_str(),
        "berth_rt_nope",
        "",
        at1,
        "x".repeat(5000).as_str(),
    ] {
        send(refresh(bad)).await.expect_error(401, "invalid_grant");
    }
    send(api.post_json("/api/v1/auth/token/refresh", &json!({})))
        .await
        .expect_error(400, "invalid_request");
}

#[tokio::test]
async fn token_logout_revokes_the_family() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "tlogout").await;
    let pair = token_pair(&api, &u.username, &u.password).await;
    let at = pair["access_token"].as_str().unwrap();
    send(api.get("/api/v1/auth/check").bearer_auth(at))
        .await
        .expect(200);
    send(api.post("/api/v1/auth/logout").bearer_auth(at))
        .await
        .expect(204);
    send(api.get("/api/v1/auth/check").bearer_auth(at))
        .await
        .expect_error(401, "invalid_token");
    send(api.post_json(
        "/api/v1/auth/token/refresh",
        &json!({"refresh_token": pair["refresh_token"]}),
    ))
    .await
    .expect_error(401, "invalid_grant");
}
