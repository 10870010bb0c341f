//! Integration tests of the management API: the real `berth` binary on its own PostgreSQL,
//! spoken to over HTTP. See `common` for the harness. This is the only integration-test binary
//! of the `berth` crate (each one links the whole server): add tests here.

mod common;

// The OAuth 2.0 authorization server (issue 3). Modules, not binaries: cargo only builds
// `tests/*.rs` as test targets.
#[path = "api/cli.rs"]
mod cli;
#[path = "api/device.rs"]
mod device;
#[path = "api/exchange.rs"]
mod exchange;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/oauth.rs"]
mod oauth;

// Issue 7: sign-ins under concurrency, scopes that bound, U+0000; the route × principal matrix.
#[path = "api/authz.rs"]
mod authz;
#[path = "api/conflicts.rs"]
mod conflicts;
#[path = "api/route_matrix.rs"]
mod route_matrix;

// Database instances (issue 4).
#[path = "api/instances.rs"]
mod instances;

// Berth's own PostgreSQL dying and coming back (issue 7, part 2).
#[path = "api/store_outage.rs"]
mod store_outage;

// Slow and idle connections, bounded logs (issue 7).
#[path = "api/connections.rs"]
mod connections;

use std::time::Duration;

use common::*;
use ed25519_dalek::{Signer, Verifier};
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// 1. Bootstrap
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bootstrap_admin_signs_in_with_configured_password() {
    let s = shared();
    let api = Api::new(s);
    let pair = token_pair(&api, "admin", ADMIN_PASSWORD).await;
    assert_eq!(pair["user"]["username"], "admin");
    assert_eq!(pair["user"]["is_platform_admin"], true);

    let r = send(
        api.get("/api/v1/auth/check")
            .bearer_auth(pair["access_token"].as_str().unwrap()),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["user"]["username"], "admin");
    assert_eq!(r.json["user"]["is_platform_admin"], true);
    assert_eq!(r.json["user"]["disabled"], false);
    assert_eq!(r.json["auth_method"], "access_token");
    let perms = r.json["permissions"].as_array().unwrap();
    for p in [
        "users:read",
        "users:write",
        "projects:create",
        "api_keys:write",
    ] {
        assert!(perms.contains(&json!(p)), "admin lacks {p}: {perms:?}");
    }

    // The generated-password path was not taken, and no secret is in the log.
    let log = s.log_text();
    assert!(
        !log.contains(ADMIN_PASSWORD),
        "the admin password is in the log"
    );
    assert!(!log.contains("with password:"), "a password was generated");
}

/// No password, token, key or session secret is ever written to the log.
#[tokio::test]
async fn secrets_never_reach_the_log() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "secretive").await;
    let pair = token_pair(&api, &u.username, &u.password).await;
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let rotated = send(api.post_json(
        "/api/v1/auth/token/refresh",
        &json!({"refresh_token": refresh}),
    ))
    .await;
    rotated.expect(200);
    // Reuse (two generations back): logged as a security event, which must not quote it.
    send(api.post_json(
        "/api/v1/auth/token/refresh",
        &json!({"refresh_token": rotated.json["refresh_token"]}),
    ))
    .await
    .expect(200);
    send(api.post_json(
        "/api/v1/auth/token/refresh",
        &json!({"refresh_token": refresh}),
    ))
    .await
    .expect(401);
    let cookie = session_of(&api, &u.username, &u.password).await;
    let key = send(
        api.post_json("/api/v1/auth/api-keys", &json!({"name": "log"}))
            .session(&cookie)
            .origin(&s.base),
    )
    .await;
    key.expect(201);
    let key = key.json["api_key"].as_str().unwrap().to_owned();
    send(api.get("/api/v1/auth/check").api_key(&key))
        .await
        .expect(200);
    let mut bad_key = key.clone();
    bad_key.push('x');
    send(api.get("/api/v1/auth/check").api_key(&bad_key))
        .await
        .expect(401);

    let log = s.log_text();
    assert!(
        log.contains(&u.username),
        "the log does not show sign-ins at all"
    );
    let signature = access.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("password", u.password.as_str()),
        ("admin password", ADMIN_PASSWORD),
        ("access token signature", signature),
        ("refresh token", refresh.as_str()),
        (
            "rotated refresh token",
            rotated.json["refresh_token"].as_str().unwrap(),
        ),
        ("session cookie", cookie.as_str()),
        ("API key", key.as_str()),
        ("rejected API key", bad_key.as_str()),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log");
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Browser sessions and CSRF
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn session_cookie_login_rotation_and_logout() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "sess").await;

    // Sign in with the username.
    let r = send(api.post_json(
        "/api/v1/auth/login",
        &json!({"login": u.username, "password": u.password}),
    ))
    .await;
    r.expect(200);
    assert_eq!(r.json["id"], u.id.as_str());
    assert_eq!(r.json["username"], u.username.as_str());
    assert_eq!(r.json["email"], u.email.as_str());
    assert!(r.json["permissions"].is_array(), "{:?}", r.json);
    assert!(
        !r.text.contains("password"),
        "login response mentions a password: {}",
        r.text
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let c1 = r.set_cookie().expect("Set-Cookie berth_session");
    assert!(c1.value.starts_with("berth_ss_"), "{c1:?}");
    assert!(c1.attr("httponly").is_some(), "not HttpOnly: {c1:?}");
    assert!(c1.attr("secure").is_some(), "not Secure: {c1:?}");
    assert_eq!(
        c1.attr("samesite").map(str::to_ascii_lowercase).as_deref(),
        Some("lax"),
        "{c1:?}"
    );
    assert_eq!(c1.attr("path"), Some("/"), "{c1:?}");
    assert!(
        !r.text.contains(&c1.value),
        "the session secret is in the body"
    );

    let r = send(api.get("/api/v1/auth/check").session(&c1.value)).await;
    r.expect(200);
    assert_eq!(r.json["auth_method"], "session");
    assert_eq!(r.json["user"]["id"], u.id.as_str());
    assert!(r.json["expires_at"].is_string(), "{:?}", r.json);

    // Sign in again, by email (case-insensitively), presenting the old cookie: a new session id.
    let r = send(
        api.post_json(
            "/api/v1/auth/login",
            &json!({"login": u.email.to_uppercase(), "password": u.password}),
        )
        .session(&c1.value),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["id"], u.id.as_str());
    let c2 = r.set_cookie().expect("Set-Cookie berth_session").value;
    assert_ne!(c1.value, c2, "the session id was not rotated");
    send(api.get("/api/v1/auth/check").session(&c1.value))
        .await
        .expect_error(401, "invalid_token");
    send(api.get("/api/v1/auth/check").session(&c2))
        .await
        .expect(200);

    // Sign out (as a browser would: same-origin POST).
    let r = send(api.post("/api/v1/auth/logout").session(&c2).origin(&s.base)).await;
    r.expect(204);
    let cleared = r.set_cookie().expect("logout clears the cookie");
    assert_eq!(cleared.value, "", "{cleared:?}");
    assert_eq!(cleared.attr("max-age"), Some("0"), "{cleared:?}");
    assert_eq!(cleared.attr("path"), Some("/"), "{cleared:?}");
    let r = send(api.get("/api/v1/auth/check").session(&c2)).await;
    r.expect_error(401, "invalid_token");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.contains(r#"error="invalid_token""#)),
        "{r:#?}"
    );

    // Signing out again with the dead cookie is harmless.
    send(api.post("/api/v1/auth/logout").session(&c2).origin(&s.base))
        .await
        .expect(204);
}

#[tokio::test]
async fn session_cookie_requests_are_protected_against_csrf() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "csrf").await;
    let cookie = session_of(&api, &u.username, &u.password).await;
    let token = token_of(&api, &u).await;
    let new_project = || json!({"name": unique("csrf-proj")});
    let create = || api.post_json("/api/v1/projects", &new_project());

    // A cross-site form or fetch carries the victim's cookie and a foreign Origin.
    send(create().session(&cookie).origin("http://evil.example"))
        .await
        .expect_error(403, "csrf_failed");
    send(create().session(&cookie).origin("null"))
        .await
        .expect_error(403, "csrf_failed");
    // Same host, other port: another origin.
    let other_port = format!("http://127.0.0.1:{}", s.addr.port() + 1);
    send(create().session(&cookie).origin(&other_port))
        .await
        .expect_error(403, "csrf_failed");
    // Neither Origin nor Referer.
    send(create().session(&cookie))
        .await
        .expect_error(403, "csrf_failed");
    send(
        create()
            .session(&cookie)
            .header("referer", "http://evil.example/page"),
    )
    .await
    .expect_error(403, "csrf_failed");
    // Other state-changing methods are covered too.
    send(
        api.request(
            Method::DELETE,
            "/api/v1/auth/api-keys/00000000-0000-0000-0000-000000000000",
        )
        .session(&cookie)
        .origin("http://evil.example"),
    )
    .await
    .expect_error(403, "csrf_failed");

    // Nothing was created by the refused requests.
    let r = send(api.get("/api/v1/projects").session(&cookie)).await;
    r.expect(200);
    assert_eq!(r.json["count"], 0, "{:?}", r.json);

    // The server's own origin (or a same-origin Referer) is accepted.
    let r = send(create().session(&cookie).origin(&s.base)).await;
    r.expect(201);
    assert_eq!(r.json["role"], "owner");
    send(
        create()
            .session(&cookie)
            .header("referer", format!("{}/console/projects", s.base)),
    )
    .await
    .expect(201);

    // Safe methods need no Origin.
    send(
        api.get("/api/v1/projects")
            .session(&cookie)
            .origin("http://evil.example"),
    )
    .await
    .expect(200);

    // Bearer and API-key requests are not affected by Origin.
    send(create().bearer_auth(&token).origin("http://evil.example"))
        .await
        .expect(201);
    let key = send(
        api.post_json("/api/v1/auth/api-keys", &json!({"name": "csrf"}))
            .bearer_auth(&token),
    )
    .await;
    key.expect(201);
    let key = key.json["api_key"].as_str().unwrap().to_owned();
    send(create().api_key(&key).origin("http://evil.example"))
        .await
        .expect(201);

    let r = send(api.get("/api/v1/projects").session(&cookie)).await;
    assert_eq!(r.json["count"], 4, "{:?}", r.json);
}

/// `POST /api/v1/auth/logout` with only the cookie (as curl sends it) must either end the
/// session or refuse; answering 204 while the session lives on misleads the caller.
#[tokio::test]
async fn session_logout_without_origin_ends_the_session_or_is_refused() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "logout").await;
    let cookie = session_of(&api, &u.username, &u.password).await;

    let r = send(api.post("/api/v1/auth/logout").session(&cookie)).await;
    match r.status {
        403 => {
            r.expect_error(403, "csrf_failed");
        }
        204 => {
            let after = send(api.get("/api/v1/auth/check").session(&cookie)).await;
            assert_eq!(
                after.status, 401,
                "logout answered 204 (and cleared the cookie) but the session still works: {after:#?}"
            );
        }
        _ => panic!("unexpected logout response: {r:#?}"),
    }
}

/// A session secret is a cookie, not a bearer token: `Authorization: Bearer berth_ss_…` is
/// refused, whether or not the session was used recently.
#[tokio::test]
async fn session_secret_is_not_accepted_as_a_bearer_token() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "ssbearer").await;
    let cookie = session_of(&api, &u.username, &u.password).await;

    send(api.get("/api/v1/auth/check").bearer_auth(&cookie))
        .await
        .expect_error(401, "invalid_token");
    // Same secret, same answer, once the server has seen (and cached) the cookie. Several
    // rounds: a revocation anywhere on the server (other tests) may keep one use from caching.
    for _ in 0..10 {
        send(api.get("/api/v1/auth/check").session(&cookie))
            .await
            .expect(200);
        send(api.get("/api/v1/auth/check").bearer_auth(&cookie))
            .await
            .expect_error(401, "invalid_token");
        send(api.get("/api/v1/auth/check").api_key(&cookie))
            .await
            .expect_error(401, "invalid_token");
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Token pairs and the JWT
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 5. Expiry (dedicated server with short lifetimes)
// ---------------------------------------------------------------------------------------------

/// Clock-skew leeway the server allows on `exp` (berth-auth `AccessClaims::validate`, called
/// with 30 s from berth-core `authenticate.rs`).
const EXP_LEEWAY_SECS: i64 = 30;

#[tokio::test]
async fn access_refresh_and_session_expire() {
    let config = format!(
        "{}\n",
        base_config().replace(
            "[auth]\n",
            "[auth]\naccess_token_ttl_secs = 2\nrefresh_token_ttl_secs = 3\nsession_ttl_secs = 3\n"
        )
    );
    let dir = Dedicated::new_dir("expiry", &config);
    let server = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&server.server);

    let pair = token_pair(&api, "admin", ADMIN_PASSWORD).await;
    assert_eq!(pair["expires_in"], 2);
    assert!((2..=3).contains(&pair["refresh_expires_in"].as_i64().unwrap()));
    let at = pair["access_token"].as_str().unwrap().to_owned();
    let rt = pair["refresh_token"].as_str().unwrap().to_owned();
    let exp = jwt_part(&at, 1)["exp"].as_i64().unwrap();
    let cookie = session_of(&api, "admin", ADMIN_PASSWORD).await;
    let r = send(
        api.post_json(
            "/api/v1/auth/api-keys",
            &json!({"name": "short-lived", "expires_at": rfc3339(now_unix() + 3)}),
        )
        .bearer_auth(&at),
    )
    .await;
    r.expect(201);
    let key = r.json["api_key"].as_str().unwrap().to_owned();
    // Used while valid (and so cached by the server).
    send(api.get("/api/v1/auth/check").bearer_auth(&at))
        .await
        .expect(200);
    send(api.get("/api/v1/auth/check").session(&cookie))
        .await
        .expect(200);
    send(api.get("/api/v1/auth/check").api_key(&key))
        .await
        .expect(200);

    tokio::time::sleep(Duration::from_secs(4)).await;
    send(api.post_json("/api/v1/auth/token/refresh", &json!({"refresh_token": rt})))
        .await
        .expect_error(401, "invalid_grant");
    send(api.get("/api/v1/auth/check").session(&cookie))
        .await
        .expect_error(401, "invalid_token");
    send(api.get("/api/v1/auth/check").api_key(&key))
        .await
        .expect_error(401, "invalid_token");

    // Access tokens are accepted up to the leeway past `exp`; after that they are refused.
    let wait = exp + EXP_LEEWAY_SECS + 2 - now_unix();
    if wait > 0 {
        tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    }
    let r = send(api.get("/api/v1/auth/check").bearer_auth(&at)).await;
    r.expect_error(401, "invalid_token");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.contains(r#"error="invalid_token""#)),
        "{r:#?}"
    );

    let mut server = server;
    assert!(server.terminate().success());
    server.remove_dir();
}

// ---------------------------------------------------------------------------------------------
// 6. API keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_keys_are_shown_once_scoped_and_revocable() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    // A project owner, so that `projects:read` is something the user holds.
    let (u, token, project) = create_member(&api, &admin, "keys").await;
    let create_key = |auth: &str, body: Value| {
        api.post_json("/api/v1/auth/api-keys", &body)
            .header("authorization", auth.to_owned())
    };
    let bearer = format!("Bearer {token}");

    let r = send(create_key(&bearer, json!({"name": "ci"}))).await;
    r.expect(201);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let key = r.json["api_key"].as_str().unwrap().to_owned();
    let key_id = r.json["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("berth_ak_"), "{key}");
    assert!(key.len() >= "berth_ak_".len() + 43, "{key}");
    assert_eq!(r.json["name"], "ci");
    let prefix = r.json["prefix"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with(&prefix) && prefix.len() < key.len() / 2,
        "{prefix}"
    );
    assert!(r.json["scopes"].as_array().is_some_and(|s| !s.is_empty()));

    // The list shows the key without its secret.
    let r = send(api.get("/api/v1/auth/api-keys").bearer_auth(&token)).await;
    r.expect(200);
    assert_eq!(r.json["count"], 1, "{}", r.text);
    let listed = &r.json["results"][0];
    assert_eq!(listed["id"], key_id.as_str());
    assert_eq!(listed["prefix"], prefix.as_str());
    assert!(listed["created_at"].is_string());
    assert!(listed.get("expires_at").is_some() && listed.get("last_used_at").is_some());
    assert!(listed.get("api_key").is_none(), "{listed}");
    assert!(!r.text.contains(&key), "the list contains the secret");

    // The key acts as its owner.
    let r = send(api.get("/api/v1/auth/check").api_key(&key)).await;
    r.expect(200);
    assert_eq!(r.json["auth_method"], "api_key");
    assert_eq!(r.json["user"]["id"], u.id.as_str());
    assert_eq!(r.json["credential_id"], key_id.as_str());
    send(
        api.get(&format!(
            "/api/v1/projects/{}",
            project["id"].as_str().unwrap()
        ))
        .api_key(&key),
    )
    .await
    .expect(200);

    // A key narrowed to projects:read reads but does not write, nor mint keys.
    let r = send(create_key(
        &bearer,
        json!({"name": "ro", "scopes": ["projects:read"]}),
    ))
    .await;
    r.expect(201);
    assert_eq!(r.json["scopes"], json!(["projects:read"]));
    let ro = r.json["api_key"].as_str().unwrap().to_owned();
    let r = send(api.get("/api/v1/auth/check").api_key(&ro)).await;
    r.expect(200);
    assert_eq!(
        r.json["permissions"],
        json!(["projects:read"]),
        "{}",
        r.text
    );
    let r = send(api.get("/api/v1/projects").api_key(&ro)).await;
    r.expect(200);
    assert_eq!(r.json["count"], 1);
    send(
        api.post_json("/api/v1/projects", &json!({"name": unique("ro")}))
            .api_key(&ro),
    )
    .await
    .expect_error(403, "forbidden");
    send(create_key(
        &format!("Api-Key {ro}"),
        json!({"name": "child"}),
    ))
    .await
    .expect_error(403, "forbidden");
    // A key that may mint keys still cannot grant more than it holds.
    let r = send(create_key(
        &bearer,
        json!({"name": "minter", "scopes": ["projects:read", "api_keys:write"]}),
    ))
    .await;
    r.expect(201);
    let minter = format!("Api-Key {}", r.json["api_key"].as_str().unwrap());
    send(create_key(
        &minter,
        json!({"name": "wider", "scopes": ["projects:create"]}),
    ))
    .await
    .expect_error(403, "forbidden");
    // Without scopes, a key gets all of its creator's.
    let r = send(create_key(&minter, json!({"name": "all"}))).await;
    r.expect(201);
    let mut scopes: Vec<&str> = r.json["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["api_keys:write", "projects:read"], "{}", r.text);
    send(create_key(
        &minter,
        json!({"name": "narrower", "scopes": ["projects:read"]}),
    ))
    .await
    .expect(201);

    // Invalid requests.
    for body in [
        json!({"name": "x", "scopes": ["projects:read", "no:such"]}),
        json!({"name": "x", "scopes": []}),
        json!({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"name": "x", "expires_at": "yesterday"}),
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "x", "secret": "mine"}),
    ] {
        let r = send(create_key(&bearer, body.clone())).await;
        assert_eq!(r.status, 400, "{body}: {r:#?}");
        r.expect_error(400, "invalid_request");
    }
    let r = send(create_key(
        &bearer,
        json!({"name": "dated", "expires_at": "2999-01-01T00:00:00Z"}),
    ))
    .await;
    r.expect(201);
    assert!(
        r.json["expires_at"]
            .as_str()
            .is_some_and(|e| e.starts_with("2999-01-01")),
        "{}",
        r.text
    );

    // A tampered key (one character changed) is refused before it reaches the store.
    for at in [12, key.len() - 1] {
        let mut tampered = key.clone();
        let c = if &key[at..at + 1] == "a" { "b" } else { "a" };
        tampered.replace_range(at..at + 1, c);
        let r = send(api.get("/api/v1/auth/check").api_key(&tampered)).await;
        r.expect_error(401, "invalid_token");
        assert!(r
            .header("www-authenticate")
            .is_some_and(|h| h.contains(r#"error="invalid_token""#)));
    }

    // Another user cannot see or revoke the key.
    let other = create_user(&api, &admin, "keys-other").await;
    let other_token = token_of(&api, &other).await;
    let r = send(api.get("/api/v1/auth/api-keys").bearer_auth(&other_token)).await;
    r.expect(200);
    assert_eq!(r.json["count"], 0);
    send(
        api.delete(&format!("/api/v1/auth/api-keys/{key_id}"))
            .bearer_auth(&other_token),
    )
    .await
    .expect_error(404, "not_found");
    send(api.get("/api/v1/auth/check").api_key(&key))
        .await
        .expect(200);

    // Revocation takes effect at once, even though the key was just used.
    send(
        api.delete(&format!("/api/v1/auth/api-keys/{key_id}"))
            .bearer_auth(&token),
    )
    .await
    .expect(204);
    send(api.get("/api/v1/auth/check").api_key(&key))
        .await
        .expect_error(401, "invalid_token");
    send(
        api.delete(&format!("/api/v1/auth/api-keys/{key_id}"))
            .bearer_auth(&token),
    )
    .await
    .expect_error(404, "not_found");
    let r = send(api.get("/api/v1/auth/api-keys").bearer_auth(&token)).await;
    assert!(!ids(&r.json).contains(&key_id), "{}", r.text);

    // API keys are not signed out.
    send(api.post("/api/v1/auth/logout").api_key(&ro))
        .await
        .expect_error(400, "invalid_request");
}

// ---------------------------------------------------------------------------------------------
// 7. Wrong passwords and throttling (each test from its own source address)
// ---------------------------------------------------------------------------------------------

fn login_body(login: &str, password: &str) -> Value {
    json!({"username": login, "password": password})
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable_and_throttled() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "wrongpw").await;
    let bystander = create_user(&api, &admin, "bystander").await;
    let mine = Api::from_ip(s, 2);
    let token =
        |login: &str, pw: &str| mine.post_json("/api/v1/auth/token", &login_body(login, pw));

    let wrong = send(token(&u.username, "not the right password")).await;
    wrong.expect_error(401, "invalid_credentials");
    let unknown = send(token(&unique("nobody"), "not the right password")).await;
    unknown.expect_error(401, "invalid_credentials");
    assert_eq!(wrong.json["message"], unknown.json["message"]);
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
    assert!(!wrong.text.contains(&u.username), "{}", wrong.text);
    // The session endpoint answers alike.
    let r = send(mine.post_json(
        "/api/v1/auth/login",
        &json!({"login": u.username, "password": "not the right password"}),
    ))
    .await;
    r.expect_error(401, "invalid_credentials");
    assert!(r.set_cookie().is_none());

    // Up to the limit, failures are plain 401s; then even the right password is refused.
    for _ in 2..MAX_FAILURES_PER_ACCOUNT {
        send(token(&u.username, "not the right password"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    for r in [
        send(token(&u.username, &u.password)).await,
        send(mine.post_json(
            "/api/v1/auth/login",
            &json!({"login": u.username, "password": u.password}),
        ))
        .await,
    ] {
        r.expect_error(429, "too_many_requests");
        let retry: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=THROTTLE_WINDOW_SECS).contains(&retry), "{retry}");
    }

    // Other accounts, from the same address, are unaffected; the user's tokens still work.
    token_pair(&mine, &bystander.username, &bystander.password).await;
    let r = send(api.get("/api/v1/users").bearer_auth(&admin)).await;
    r.expect(200);
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_across_accounts() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "perip").await;
    let mine = Api::from_ip(s, 3);

    for _ in 0..MAX_FAILURES_PER_IP {
        send(mine.post_json(
            "/api/v1/auth/token",
            &login_body(&unique("spray"), "guess-guess-guess"),
        ))
        .await
        .expect_error(401, "invalid_credentials");
    }
    let r = send(mine.post_json("/api/v1/auth/token", &login_body(&unique("spray"), "x"))).await;
    r.expect_error(429, "too_many_requests");
    assert!(r
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().is_ok()));
    // Even a valid sign-in from this address waits.
    send(mine.post_json("/api/v1/auth/token", &login_body(&u.username, &u.password)))
        .await
        .expect_error(429, "too_many_requests");
    // The same account from another address is fine.
    token_pair(&api, &u.username, &u.password).await;
}

/// The per-account limit protects the account, whichever login (username or email) names it.
#[tokio::test]
async fn account_throttle_covers_both_username_and_email() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "byemail").await;
    let mine = Api::from_ip(s, 5);

    for _ in 0..MAX_FAILURES_PER_ACCOUNT {
        send(mine.post_json(
            "/api/v1/auth/token",
            &login_body(&u.username, "wrong wrong wrong"),
        ))
        .await
        .expect_error(401, "invalid_credentials");
    }
    send(mine.post_json(
        "/api/v1/auth/token",
        &login_body(&u.username, "wrong wrong wrong"),
    ))
    .await
    .expect_error(429, "too_many_requests");
    // The same account, named by its email address: still throttled.
    let r = send(mine.post_json(
        "/api/v1/auth/token",
        &login_body(&u.email, "wrong wrong wrong"),
    ))
    .await;
    assert_eq!(
        r.status, 429,
        "after {MAX_FAILURES_PER_ACCOUNT} failures the account accepts more guesses via its email: {r:#?}"
    );
}

/// A burst of concurrent guesses must not get more than the limit of answers.
#[tokio::test]
async fn account_throttle_holds_under_concurrent_guesses() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "burst").await;
    let mine = Api::from_ip(s, 6);

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..MAX_FAILURES_PER_IP {
        let rb = mine.post_json(
            "/api/v1/auth/token",
            &login_body(&u.username, "guess guess guess"),
        );
        set.spawn(async move { send(rb).await });
    }
    let (mut refused, mut throttled) = (0, 0);
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        match r.status {
            401 => refused += 1,
            429 => throttled += 1,
            _ => panic!("{r:#?}"),
        }
    }
    assert_eq!(refused + throttled, MAX_FAILURES_PER_IP);
    assert!(
        refused <= MAX_FAILURES_PER_ACCOUNT,
        "{refused} concurrent guesses were checked against the password, the limit is {MAX_FAILURES_PER_ACCOUNT}"
    );
}

// ---------------------------------------------------------------------------------------------
// 8. Bad tokens
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// 9. Users
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn users_are_administered_by_platform_admins() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;

    let name = unique("people");
    let email = format!("{name}@example.com");
    let r = send(
        api.post_json(
            "/api/v1/users",
            &json!({"username": name, "email": email, "password": USER_PASSWORD}),
        )
        .bearer_auth(&admin),
    )
    .await;
    r.expect(201);
    assert_eq!(r.json["username"], name.as_str());
    assert_eq!(r.json["email"], email.as_str());
    assert_eq!(r.json["is_platform_admin"], false);
    assert_eq!(r.json["disabled"], false);
    assert!(
        !r.text.contains("password") && !r.text.contains("argon2"),
        "{}",
        r.text
    );
    let id = r.json["id"].as_str().unwrap().to_owned();
    let u = TestUser {
        id: id.clone(),
        username: name.clone(),
        email: email.clone(),
        password: USER_PASSWORD.into(),
    };

    // Conflicts and validation.
    let dup_name =
        json!({"username": name, "email": format!("other-{email}"), "password": USER_PASSWORD});
    let dup_email = json!({"username": unique("other"), "email": email.to_uppercase(), "password": USER_PASSWORD});
    send(
        api.post_json("/api/v1/users", &dup_name)
            .bearer_auth(&admin),
    )
    .await
    .expect_error(409, "conflict");
    // Logins find users by email case-insensitively, so emails are unique regardless of case.
    send(
        api.post_json("/api/v1/users", &dup_email)
            .bearer_auth(&admin),
    )
    .await
    .expect_error(409, "conflict");
    for (what, body) in [
        (
            "uppercase username",
            json!({"username": "Bad Name", "email": "a@example.com", "password": USER_PASSWORD}),
        ),
        (
            "short username",
            json!({"username": "ab", "email": "a@example.com", "password": USER_PASSWORD}),
        ),
        (
            "username with @",
            json!({"username": "a@b.c", "email": "a@example.com", "password": USER_PASSWORD}),
        ),
        (
            "bad email",
            json!({"username": unique("x"), "email": "not-an-email", "password": USER_PASSWORD}),
        ),
        (
            "email without domain dot",
            json!({"username": unique("x"), "email": "a@localhost", "password": USER_PASSWORD}),
        ),
        (
            "short password",
            json!({"username": unique("x"), "email": format!("{}@example.com", unique("x")), "password": "short"}),
        ),
        (
            "missing password",
            json!({"username": unique("x"), "email": format!("{}@example.com", unique("x"))}),
        ),
        (
            "unknown field",
            json!({"username": unique("x"), "email": format!("{}@example.com", unique("x")), "password": USER_PASSWORD, "role": "god"}),
        ),
    ] {
        let r = send(api.post_json("/api/v1/users", &body).bearer_auth(&admin)).await;
        assert_eq!(r.status, 400, "{what}: {r:#?}");
        r.expect_error(400, "invalid_request");
    }

    // What an ordinary user may and may not do.
    let token = token_of(&api, &u).await;
    send(api.get("/api/v1/users").bearer_auth(&token))
        .await
        .expect_error(403, "forbidden");
    send(
        api.post_json(
            "/api/v1/users",
            &json!({"username": unique("x"), "email": format!("{}@example.com", unique("x")), "password": USER_PASSWORD}),
        )
        .bearer_auth(&token),
    )
    .await
    .expect_error(403, "forbidden");
    let admin_id = jwt_part(&admin, 1)["sub"].as_str().unwrap().to_owned();
    send(
        api.get(&format!("/api/v1/users/{admin_id}"))
            .bearer_auth(&token),
    )
    .await
    .expect_error(403, "forbidden");
    send(
        api.patch_json(
            &format!("/api/v1/users/{id}"),
            &json!({"is_platform_admin": true}),
        )
        .bearer_auth(&token),
    )
    .await
    .expect_error(403, "forbidden");
    let r = send(api.get(&format!("/api/v1/users/{id}")).bearer_auth(&token)).await;
    r.expect(200);
    assert_eq!(r.json["username"], name.as_str());
    assert!(r.json["permissions"].is_array());

    // The admin lists and pages.
    let r = send(api.get("/api/v1/users?limit=1").bearer_auth(&admin)).await;
    r.expect(200);
    assert_eq!(r.json["results"].as_array().unwrap().len(), 1);
    assert!(r.json["count"].as_i64().unwrap() >= 2);
    assert!(
        r.json["next"]
            .as_str()
            .is_some_and(|n| n.starts_with(&format!("{}/api/v1/users?", s.base))),
        "{}",
        r.text
    );
    assert_eq!(r.json["previous"], Value::Null);
    send(api.get(&format!("/api/v1/users/{id}")).bearer_auth(&admin))
        .await
        .expect(200);

    // Disabling ends every credential at once and blocks sign-in.
    let cookie = session_of(&api, &u.username, &u.password).await;
    let key = send(
        api.post_json("/api/v1/auth/api-keys", &json!({"name": "k"}))
            .bearer_auth(&token),
    )
    .await;
    key.expect(201);
    let key = key.json["api_key"].as_str().unwrap().to_owned();
    let pair = token_pair(&api, &u.username, &u.password).await;
    for rb in [
        api.get("/api/v1/auth/check").bearer_auth(&token),
        api.get("/api/v1/auth/check").api_key(&key),
        api.get("/api/v1/auth/check").session(&cookie),
    ] {
        send(rb).await.expect(200);
    }
    let r = send(
        api.patch_json(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
            .bearer_auth(&admin),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["disabled"], true);
    for rb in [
        api.get("/api/v1/auth/check").bearer_auth(&token),
        api.get("/api/v1/auth/check").api_key(&key),
        api.get("/api/v1/auth/check").session(&cookie),
    ] {
        send(rb).await.expect_error(401, "invalid_token");
    }
    send(api.post_json(
        "/api/v1/auth/token/refresh",
        &json!({"refresh_token": pair["refresh_token"]}),
    ))
    .await
    .expect_error(401, "invalid_grant");
    let mine = Api::from_ip(s, 4);
    send(mine.post_json("/api/v1/auth/token", &login_body(&u.username, &u.password)))
        .await
        .expect_error(401, "invalid_credentials");

    // Emails stay unique when changed.
    send(
        api.patch_json(
            &format!("/api/v1/users/{id}"),
            &json!({"email": "ADMIN@localhost.localdomain"}),
        )
        .bearer_auth(&admin),
    )
    .await
    .expect_error(409, "conflict");

    // Re-enabled, the user signs in again (old credentials stay dead).
    send(
        api.patch_json(&format!("/api/v1/users/{id}"), &json!({"disabled": false}))
            .bearer_auth(&admin),
    )
    .await
    .expect(200);
    let fresh = token_of(&api, &u).await;
    send(api.get("/api/v1/auth/check").bearer_auth(&token))
        .await
        .expect_error(401, "invalid_token");

    // Users change their own password, proving they know the current one; that ends their
    // sessions and tokens.
    let new_password = "a brand new password 42";
    let user_url = format!("/api/v1/users/{id}");
    send(
        api.patch_json(&user_url, &json!({"password": new_password}))
            .bearer_auth(&fresh),
    )
    .await
    .expect_error(400, "invalid_request");
    send(
        mine.patch_json(
            &user_url,
            &json!({"password": new_password, "current_password": "not my password"}),
        )
        .bearer_auth(&fresh),
    )
    .await
    .expect_error(403, "forbidden");
    send(
        api.patch_json(
            &user_url,
            &json!({"password": new_password, "current_password": USER_PASSWORD}),
        )
        .bearer_auth(&fresh),
    )
    .await
    .expect(200);
    send(api.get("/api/v1/auth/check").bearer_auth(&fresh))
        .await
        .expect_error(401, "invalid_token");
    let newer = token_pair(&api, &u.username, new_password).await;
    send(
        api.patch_json(
            &user_url,
            &json!({"password": "short", "current_password": new_password}),
        )
        .bearer_auth(newer["access_token"].as_str().unwrap()),
    )
    .await
    .expect_error(400, "invalid_request");

    // The admin cannot delete themself; deleting a user ends everything of theirs.
    send(
        api.delete(&format!("/api/v1/users/{admin_id}"))
            .bearer_auth(&admin),
    )
    .await
    .expect_error(409, "conflict");
    send(
        api.delete(&format!("/api/v1/users/{id}"))
            .bearer_auth(&admin),
    )
    .await
    .expect(204);
    send(api.get(&format!("/api/v1/users/{id}")).bearer_auth(&admin))
        .await
        .expect_error(404, "not_found");
    send(
        api.delete(&format!("/api/v1/users/{id}"))
            .bearer_auth(&admin),
    )
    .await
    .expect_error(404, "not_found");
    send(
        api.get("/api/v1/auth/check")
            .bearer_auth(newer["access_token"].as_str().unwrap()),
    )
    .await
    .expect_error(401, "invalid_token");
    send(
        api.patch_json(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
            .bearer_auth(&admin),
    )
    .await
    .expect_error(404, "not_found");
}

// ---------------------------------------------------------------------------------------------
// 10. Projects and tenancy
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn projects_are_isolated_between_tenants() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    // B has a project of their own.
    let (a, ta, _) = create_member(&api, &admin, "tenant-a").await;
    let (b, tb, pb) = create_member(&api, &admin, "tenant-b").await;
    let pb = pb["id"].as_str().unwrap().to_owned();

    let name = unique("pa");
    let r = send(
        api.post_json(
            "/api/v1/projects",
            &json!({"name": name, "description": "A's"}),
        )
        .bearer_auth(&ta),
    )
    .await;
    r.expect(201);
    assert_eq!(r.json["name"], name.as_str());
    assert_eq!(r.json["description"], "A's");
    assert_eq!(r.json["user_count"], 1);
    assert_eq!(r.json["role"], "owner");
    let pa = r.json["id"].as_str().unwrap().to_owned();
    let project = format!("/api/v1/projects/{pa}");
    let members = format!("{project}/members");
    send(
        api.post_json("/api/v1/projects", &json!({"name": name}))
            .bearer_auth(&tb),
    )
    .await
    .expect_error(409, "conflict");

    // B, who is not a member, finds nothing — the same answer as for a project that does not
    // exist.
    let missing = "/api/v1/projects/00000000-0000-7000-8000-000000000000";
    let nothing = send(api.get(missing).bearer_auth(&tb)).await;
    nothing.expect_error(404, "not_found");
    let b_key = send(
        api.post_json("/api/v1/auth/api-keys", &json!({"name": "b"}))
            .bearer_auth(&tb),
    )
    .await;
    let b_key = b_key.json["api_key"].as_str().unwrap().to_owned();
    let b_cookie = session_of(&api, &b.username, &b.password).await;
    let probes = |who: &str| -> Vec<(String, reqwest::RequestBuilder)> {
        let auth = |rb: reqwest::RequestBuilder| match who {
            "token" => rb.bearer_auth(&tb),
            "key" => rb.api_key(&b_key),
            _ => rb.session(&b_cookie).origin(&s.base),
        };
        vec![
            ("GET project".into(), auth(api.get(&project))),
            (
                "PATCH project".into(),
                auth(api.patch_json(&project, &json!({"name": "mine now"}))),
            ),
            ("DELETE project".into(), auth(api.delete(&project))),
            ("GET members".into(), auth(api.get(&members))),
            (
                "PUT member (self)".into(),
                auth(api.put_json(&format!("{members}/{}", b.id), &json!({"role": "owner"}))),
            ),
            (
                "PUT member (owner)".into(),
                auth(api.put_json(&format!("{members}/{}", a.id), &json!({"role": "viewer"}))),
            ),
            (
                "DELETE member".into(),
                auth(api.delete(&format!("{members}/{}", a.id))),
            ),
        ]
    };
    let mut failures = Vec::new();
    for who in ["token", "key", "session"] {
        for (what, rb) in probes(who) {
            let r = send(rb).await;
            if r.status != 404 || r.json["message"] != nothing.json["message"] {
                failures.push(format!("{who} {what}: {} {}", r.status, r.text));
            } else if let Err(e) = r.check_error_body("not_found") {
                failures.push(format!("{who} {what}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "B reached A's project:\n{}",
        failures.join("\n")
    );
    let r = send(api.get("/api/v1/projects").bearer_auth(&tb)).await;
    r.expect(200);
    assert_eq!(ids(&r.json), vec![pb.clone()], "{}", r.text);
    assert_eq!(r.json["count"], 1);

    // Nothing changed.
    let r = send(api.get(&project).bearer_auth(&ta)).await;
    r.expect(200);
    assert_eq!(r.json["name"], name.as_str());
    assert_eq!(r.json["user_count"], 1);

    // A adds B as a viewer: B reads but cannot change anything.
    let r = send(
        api.put_json(&format!("{members}/{}", b.id), &json!({"role": "viewer"}))
            .bearer_auth(&ta),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["user_id"], b.id.as_str());
    assert_eq!(r.json["username"], b.username.as_str());
    assert_eq!(r.json["role"], "viewer");
    let r = send(api.get(&project).bearer_auth(&tb)).await;
    r.expect(200);
    assert_eq!(r.json["role"], "viewer");
    assert_eq!(r.json["user_count"], 2);
    let r = send(api.get(&members).bearer_auth(&tb)).await;
    r.expect(200);
    assert_eq!(r.json["count"], 2);
    let r = send(api.get("/api/v1/projects").bearer_auth(&tb)).await;
    let mut seen = ids(&r.json);
    seen.sort();
    let mut both = vec![pa.clone(), pb.clone()];
    both.sort();
    assert_eq!(seen, both);
    send(
        api.patch_json(&project, &json!({"description": "B's"}))
            .bearer_auth(&tb),
    )
    .await
    .expect_error(403, "forbidden");
    send(api.delete(&project).bearer_auth(&tb))
        .await
        .expect_error(403, "forbidden");
    send(
        api.put_json(&format!("{members}/{}", b.id), &json!({"role": "admin"}))
            .bearer_auth(&tb),
    )
    .await
    .expect_error(403, "forbidden");
    send(api.delete(&format!("{members}/{}", a.id)).bearer_auth(&tb))
        .await
        .expect_error(403, "forbidden");

    // As a project admin B may edit, but neither grant ownership nor delete the project.
    send(
        api.put_json(&format!("{members}/{}", b.id), &json!({"role": "admin"}))
            .bearer_auth(&ta),
    )
    .await
    .expect(200);
    let r = send(
        api.patch_json(&project, &json!({"description": "edited by B"}))
            .bearer_auth(&tb),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["description"], "edited by B");
    send(
        api.put_json(&format!("{members}/{}", b.id), &json!({"role": "owner"}))
            .bearer_auth(&tb),
    )
    .await
    .expect_error(403, "forbidden");
    send(api.delete(&project).bearer_auth(&tb))
        .await
        .expect_error(403, "forbidden");

    // The last owner can be neither demoted nor removed.
    send(
        api.put_json(&format!("{members}/{}", a.id), &json!({"role": "admin"}))
            .bearer_auth(&ta),
    )
    .await
    .expect_error(409, "conflict");
    send(api.delete(&format!("{members}/{}", a.id)).bearer_auth(&ta))
        .await
        .expect_error(409, "conflict");
    // Bad member requests.
    send(
        api.put_json(
            &format!("{members}/{}", b.id),
            &json!({"role": "superuser"}),
        )
        .bearer_auth(&ta),
    )
    .await
    .expect_error(400, "invalid_request");
    send(
        api.put_json(
            &format!("{members}/00000000-0000-7000-8000-000000000000"),
            &json!({"role": "viewer"}),
        )
        .bearer_auth(&ta),
    )
    .await
    .expect_error(404, "not_found");

    // Names stay unique; the sole owner of a project cannot be deleted.
    let taken = create_project(&api, &ta, "taken").await;
    send(
        api.patch_json(&project, &json!({"name": taken["name"]}))
            .bearer_auth(&ta),
    )
    .await
    .expect_error(409, "conflict");
    send(
        api.delete(&format!("/api/v1/users/{}", a.id))
            .bearer_auth(&admin),
    )
    .await
    .expect_error(409, "conflict");

    // The platform admin sees every project, without being a member.
    let r = send(api.get(&project).bearer_auth(&admin)).await;
    r.expect(200);
    assert_eq!(r.json["role"], Value::Null);
    let r = send(api.get("/api/v1/projects?limit=500").bearer_auth(&admin)).await;
    r.expect(200);
    assert!(ids(&r.json).contains(&pa), "admin does not see {pa}");

    // Removing B ends their access.
    send(api.delete(&format!("{members}/{}", b.id)).bearer_auth(&ta))
        .await
        .expect(204);
    send(api.get(&project).bearer_auth(&tb))
        .await
        .expect_error(404, "not_found");
    let r = send(api.get(&project).bearer_auth(&ta)).await;
    assert_eq!(r.json["user_count"], 1);

    // The owner deletes the project.
    send(api.delete(&project).bearer_auth(&ta))
        .await
        .expect(204);
    send(api.get(&project).bearer_auth(&ta))
        .await
        .expect_error(404, "not_found");
    send(api.delete(&project).bearer_auth(&ta))
        .await
        .expect_error(404, "not_found");
    let r = send(api.get("/api/v1/projects").bearer_auth(&ta)).await;
    assert!(!ids(&r.json).contains(&pa));
}

/// Memberships gained after signing in count: the caller's role in the project decides, as for
/// a session. (Tokens and API keys currently carry only the permissions the user held when they
/// were issued, so a new user's token cannot list projects nor read the one it just created.)
#[tokio::test]
async fn credentials_issued_before_joining_a_project_can_use_it() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "newcomer").await;
    let token = token_of(&api, &u).await;
    let key = send(
        api.post_json("/api/v1/auth/api-keys", &json!({"name": "ci"}))
            .bearer_auth(&token),
    )
    .await;
    key.expect(201);
    let key = key.json["api_key"].as_str().unwrap().to_owned();

    // A new user has no projects: an empty list, not an error.
    let r = send(api.get("/api/v1/projects").bearer_auth(&token)).await;
    r.expect(200);
    assert_eq!(r.json["count"], 0);

    // The project the user just created, read with the token that created it.
    let project = create_project(&api, &token, "newcomer").await;
    let url = format!("/api/v1/projects/{}", project["id"].as_str().unwrap());
    let r = send(api.get(&url).bearer_auth(&token)).await;
    r.expect(200);
    assert_eq!(r.json["role"], "owner");
    send(api.get("/api/v1/projects").bearer_auth(&token))
        .await
        .expect(200);
    send(api.get(&format!("{url}/members")).bearer_auth(&token))
        .await
        .expect(200);
    // An API key made (without scopes, "every scope of its creator") before the project existed.
    send(api.get(&url).api_key(&key)).await.expect(200);
}

/// `current_password` (required to change one's own password or email) is a password check: a
/// stolen token or API key must not get unlimited guesses at it.
#[tokio::test]
async fn current_password_guesses_are_throttled() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "oracle").await;
    let token = token_of(&api, &u).await;
    let mine = Api::from_ip(s, 8);
    let guess = || {
        mine.patch_json(
            &format!("/api/v1/users/{}", u.id),
            &json!({"password": "taken over account", "current_password": "a wrong guess"}),
        )
        .bearer_auth(&token)
    };
    for _ in 0..MAX_FAILURES_PER_ACCOUNT {
        send(guess()).await.expect_error(403, "forbidden");
    }
    let r = send(guess()).await;
    assert_eq!(
        r.status, 429,
        "{MAX_FAILURES_PER_ACCOUNT} wrong current_password guesses, and still no throttling: {r:#?}"
    );
    r.expect_error(429, "too_many_requests");
}

// ---------------------------------------------------------------------------------------------
// 11. Malformed requests
// ---------------------------------------------------------------------------------------------

/// A pseudo-random string that does not compress (so a store index sees its full size).
fn incompressible(len: usize) -> String {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (b'a' + (x % 26) as u8) as char
        })
        .collect()
}

#[tokio::test]
async fn malformed_requests_get_json_4xx_never_5xx() {
    let s = shared();
    // Its own address: some cases below are (failed) sign-ins.
    let api = Api::from_ip(s, 7);
    let admin = admin_token(&api).await;
    let (u, token, _) = create_member(&api, &admin, "malformed").await;
    let cookie = session_of(&api, &u.username, &u.password).await;
    let auth = format!("Bearer {token}");
    let projects = "/api/v1/projects";
    let body = |b: Vec<u8>| {
        api.post(projects)
            .header("authorization", auth.clone())
            .header("content-type", "application/json")
            .body(b)
    };
    let authed = |m: Method, p: &str| api.request(m, p).header("authorization", auth.clone());
    let nested = {
        let mut v = "[".repeat(30_000);
        v.push_str(&"]".repeat(30_000));
        v.into_bytes()
    };
    let big = format!(
        r#"{{"name":"big","description":"{}"}}"#,
        "x".repeat(70 * 1024)
    );

    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "invalid JSON",
            body(b"{\"name\":".to_vec()),
            400,
            "invalid_request",
        ),
        (
            "trailing garbage",
            body(b"{\"name\":\"x\"} x".to_vec()),
            400,
            "invalid_request",
        ),
        (
            "wrong type",
            body(br#"{"name": 5}"#.to_vec()),
            400,
            "invalid_request",
        ),
        (
            "unknown field",
            body(br#"{"name": "x", "owner": "me"}"#.to_vec()),
            400,
            "invalid_request",
        ),
        (
            "missing field",
            body(b"{}".to_vec()),
            400,
            "invalid_request",
        ),
        ("array", body(b"[]".to_vec()), 400, "invalid_request"),
        ("null", body(b"null".to_vec()), 400, "invalid_request"),
        ("empty body", body(Vec::new()), 400, "invalid_request"),
        ("deep nesting", body(nested), 400, "invalid_request"),
        (
            "invalid UTF-8",
            body(b"{\"name\": \"\xff\xfe\"}".to_vec()),
            400,
            "invalid_request",
        ),
        (
            "NUL in a name",
            body(br#"{"name": "a\u0000b"}"#.to_vec()),
            400,
            "invalid_request",
        ),
        (
            "name too long",
            body(format!(r#"{{"name": "{}"}}"#, "n".repeat(101)).into_bytes()),
            400,
            "invalid_request",
        ),
        (
            "blank name",
            body(br#"{"name": "   "}"#.to_vec()),
            400,
            "invalid_request",
        ),
        (
            "missing content-type",
            authed(Method::POST, projects).body(r#"{"name":"x"}"#),
            415,
            "unsupported_media_type",
        ),
        (
            "text/plain",
            authed(Method::POST, projects)
                .header("content-type", "text/plain")
                .body(r#"{"name":"x"}"#),
            415,
            "unsupported_media_type",
        ),
        (
            "body over 64 KiB",
            body(big.into_bytes()),
            413,
            "payload_too_large",
        ),
        (
            "NUL in a login",
            api.post_json(
                "/api/v1/auth/token",
                &login_body("a\u{0}b", "password password"),
            ),
            401,
            "invalid_credentials",
        ),
        (
            "very long login",
            api.post_json(
                "/api/v1/auth/token",
                &login_body(&incompressible(8000), "password password"),
            ),
            401,
            "invalid_credentials",
        ),
        (
            "very long password",
            api.post_json(
                "/api/v1/auth/login",
                &json!({"login": unique("nobody"), "password": "p".repeat(60_000)}),
            ),
            401,
            "invalid_credentials",
        ),
        (
            "login: wrong field names",
            api.post_json("/api/v1/auth/login", &login_body("admin", "x")),
            400,
            "invalid_request",
        ),
        (
            "non-UUID id",
            authed(Method::GET, "/api/v1/projects/not-a-uuid"),
            404,
            "not_found",
        ),
        (
            "numeric id",
            authed(Method::GET, "/api/v1/users/123"),
            404,
            "not_found",
        ),
        (
            "non-UUID key id",
            authed(Method::DELETE, "/api/v1/auth/api-keys/x"),
            404,
            "not_found",
        ),
        (
            "non-UUID member id",
            authed(
                Method::DELETE,
                "/api/v1/projects/00000000-0000-7000-8000-000000000000/members/zz",
            ),
            404,
            "not_found",
        ),
        (
            "percent-encoded junk id",
            authed(Method::GET, "/api/v1/projects/%ff%fe"),
            404,
            "not_found",
        ),
        (
            "limit=0",
            authed(Method::GET, "/api/v1/projects?limit=0"),
            400,
            "invalid_request",
        ),
        (
            "limit=abc",
            authed(Method::GET, "/api/v1/projects?limit=abc"),
            400,
            "invalid_request",
        ),
        (
            "limit=501",
            authed(Method::GET, "/api/v1/projects?limit=501"),
            400,
            "invalid_request",
        ),
        (
            "limit=1.5",
            authed(Method::GET, "/api/v1/projects?limit=1.5"),
            400,
            "invalid_request",
        ),
        (
            "huge limit",
            authed(Method::GET, "/api/v1/projects?limit=99999999999999999999"),
            400,
            "invalid_request",
        ),
        (
            "offset=-1",
            authed(Method::GET, "/api/v1/projects?offset=-1"),
            400,
            "invalid_request",
        ),
        (
            "unknown query parameter",
            authed(Method::GET, "/api/v1/projects?sort=name"),
            400,
            "invalid_request",
        ),
        (
            "bad percent-encoding in query",
            authed(Method::GET, "/api/v1/projects?limit=%ff"),
            400,
            "invalid_request",
        ),
        (
            "unknown route",
            authed(Method::GET, "/api/v1/nope"),
            404,
            "not_found",
        ),
        ("unknown route, no auth", api.get("/nope"), 404, "not_found"),
        (
            "unknown sub-route",
            authed(
                Method::GET,
                "/api/v1/projects/00000000-0000-7000-8000-000000000000/nope",
            ),
            404,
            "not_found",
        ),
        (
            "wrong method",
            authed(Method::PUT, projects),
            405,
            "method_not_allowed",
        ),
        (
            "wrong method on check",
            authed(Method::DELETE, "/api/v1/auth/check"),
            405,
            "method_not_allowed",
        ),
        (
            "GET on token",
            api.get("/api/v1/auth/token"),
            405,
            "method_not_allowed",
        ),
        (
            "bad Authorization scheme",
            api.get("/api/v1/auth/check")
                .header("authorization", "Digest username=\"admin\""),
            401,
            "invalid_token",
        ),
        (
            "100 KB Authorization header",
            api.get("/api/v1/auth/check").header(
                "authorization",
                format!("Bearer {}", "a".repeat(100 * 1024)),
            ),
            401,
            "invalid_token",
        ),
        (
            "100 KB cookie",
            api.get("/api/v1/auth/check")
                .session(&"b".repeat(100 * 1024)),
            401,
            "invalid_token",
        ),
        (
            "non-UTF-8 Authorization",
            api.get("/api/v1/auth/check").header(
                "authorization",
                HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
            ),
            401,
            "invalid_token",
        ),
        (
            "non-UTF-8 Cookie",
            api.get("/api/v1/auth/check").header(
                "cookie",
                HeaderValue::from_bytes(b"berth_session=\xff\xfe").unwrap(),
            ),
            401,
            "unauthorized",
        ),
        (
            "non-UTF-8 Origin on a cookie POST",
            api.post_json(projects, &json!({"name": unique("x")}))
                .session(&cookie)
                .header(
                    "origin",
                    HeaderValue::from_bytes(b"http://\xff\xfe").unwrap(),
                ),
            403,
            "csrf_failed",
        ),
        (
            "non-UTF-8 User-Agent on a sign-in",
            api.post_json(
                "/api/v1/auth/token",
                &login_body(&unique("nobody"), "password password"),
            )
            .header(
                "user-agent",
                HeaderValue::from_bytes(b"agent \xff\xfe").unwrap(),
            ),
            401,
            "invalid_credentials",
        ),
        (
            "non-UTF-8 X-Request-Id",
            api.get("/api/v1/nope")
                .header("x-request-id", HeaderValue::from_bytes(b"id-\xff").unwrap()),
            404,
            "not_found",
        ),
    ];

    let mut failures = Vec::new();
    for (name, rb, status, code) in cases {
        let r = match rb.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let text = resp.text().await.unwrap_or_default();
                let json = serde_json::from_str(&text).unwrap_or(Value::Null);
                Resp {
                    status,
                    headers,
                    text,
                    json,
                }
            }
            Err(e) => {
                failures.push(format!("{name}: request failed: {e}"));
                continue;
            }
        };
        if r.status != status {
            failures.push(format!(
                "{name}: status {} (expected {status}), body {}",
                r.status,
                &r.text[..r.text.len().min(300)]
            ));
        } else if let Err(e) = r.check_error_body(code) {
            failures.push(format!("{name}: {e}"));
        }
    }

    // What only a raw client sends: the answer must still be a 4xx.
    let raw_cases: Vec<(&str, Vec<u8>)> = vec![
        ("200 headers", {
            let mut req = b"GET /api/v1/auth/check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
            for i in 0..200 {
                req.extend_from_slice(format!("X-Filler-{i}: {i}\r\n").as_bytes());
            }
            req.extend_from_slice(b"\r\n");
            req
        }),
        ("1 MB header", {
            let mut req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: ".to_vec();
            req.extend(std::iter::repeat_n(b'a', 1024 * 1024));
            req.extend_from_slice(b"\r\n\r\n");
            req
        }),
        ("100 KB path", {
            let mut req = b"GET /api/v1/".to_vec();
            req.extend(std::iter::repeat_n(b'p', 100 * 1024));
            req.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            req
        }),
        (
            "raw non-UTF-8 in the path",
            b"GET /api/v1/projects/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "bad Content-Length",
            b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}".to_vec(),
        ),
        (
            "Content-Length shorter than the JSON",
            b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{\"username\":\"a\",\"password\":\"b\"}".to_vec(),
        ),
    ];
    for (name, req) in raw_cases {
        match raw_http(s.addr, &req) {
            Ok((status, _)) if (400..500).contains(&status) => {}
            Ok((status, text)) => failures.push(format!(
                "{name}: status {status}: {}",
                &text[..text.len().min(300)]
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }

    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The server is still fine.
    send(api.get("/api/v1/auth/check").bearer_auth(&token))
        .await
        .expect(200);
}

// ---------------------------------------------------------------------------------------------
// 12. Trailing slashes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_route_answers_with_and_without_a_trailing_slash() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (u, _, _) = create_member(&api, &admin, "slash").await;

    // Sign-in, with a slash.
    let r = send(api.post_json(
        "/api/v1/auth/token/",
        &json!({"username": u.username, "password": u.password}),
    ))
    .await;
    r.expect(200);
    let token = r.json["access_token"].as_str().unwrap().to_owned();
    let r = send(api.post_json(
        "/api/v1/auth/login/",
        &json!({"login": u.username, "password": u.password}),
    ))
    .await;
    r.expect(200);
    assert!(r.set_cookie().is_some());

    for slash in ["", "/"] {
        let r = send(
            api.post_json(
                &format!("/api/v1/projects{slash}"),
                &json!({"name": unique("slash")}),
            )
            .bearer_auth(&token),
        )
        .await;
        r.expect(201);
        let id = r.json["id"].as_str().unwrap().to_owned();
        for path in [
            "/healthz".to_owned(),
            "/readyz".to_owned(),
            "/metrics".to_owned(),
            "/.well-known/jwks.json".to_owned(),
            "/api/openapi.json".to_owned(),
            "/api/v1/auth/check".to_owned(),
            "/api/v1/auth/api-keys".to_owned(),
            "/api/v1/projects".to_owned(),
            format!("/api/v1/projects/{id}"),
            format!("/api/v1/projects/{id}/members"),
            format!("/api/v1/users/{}", u.id),
        ] {
            let r = send(api.get(&format!("{path}{slash}")).bearer_auth(&token)).await;
            assert_eq!(r.status, 200, "GET {path}{slash}: {r:#?}");
        }
        let r = send(
            api.patch_json(
                &format!("/api/v1/projects/{id}{slash}"),
                &json!({"description": "d"}),
            )
            .bearer_auth(&token),
        )
        .await;
        r.expect(200);
        let r = send(
            api.post_json(
                &format!("/api/v1/auth/api-keys{slash}"),
                &json!({"name": "k"}),
            )
            .bearer_auth(&token),
        )
        .await;
        r.expect(201);
        let key_id = r.json["id"].as_str().unwrap().to_owned();
        send(
            api.delete(&format!("/api/v1/auth/api-keys/{key_id}{slash}"))
                .bearer_auth(&token),
        )
        .await
        .expect(204);
        send(
            api.delete(&format!("/api/v1/projects/{id}{slash}"))
                .bearer_auth(&token),
        )
        .await
        .expect(204);
    }
    // Errors are the same too.
    for path in ["/api/v1/auth/check", "/api/v1/auth/check/"] {
        send(api.get(path)).await.expect_error(401, "unauthorized");
    }
    for path in ["/api/v1/nope", "/api/v1/nope/"] {
        send(api.get(path)).await.expect_error(404, "not_found");
    }
    let r = send(api.post("/api/v1/auth/logout/").bearer_auth(&token)).await;
    r.expect(204);
}

// ---------------------------------------------------------------------------------------------
// 13. Operations, OpenAPI and request ids
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn health_readiness_metrics_and_docs() {
    let s = shared();
    let api = Api::new(s);

    let r = send(api.get("/healthz")).await;
    r.expect(200);
    assert_eq!(r.json["status"], "ok");
    let r = send(api.get("/readyz")).await;
    r.expect(200);
    assert_eq!(r.json["status"], "ready");

    send(api.get("/api/v1/auth/check")).await.expect(401);
    let r = send(api.get("/metrics")).await;
    r.expect(200);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    assert!(r.text.contains("berth_http_requests_total"), "{}", r.text);
    assert!(r.text.contains(r#"status="401""#), "{}", r.text);

    let r = send(api.get("/api/docs/")).await;
    r.expect(200);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{r:#?}"
    );
    assert!(r.text.to_lowercase().contains("swagger"), "{}", r.text);
    let r = send(api.get("/api/docs")).await;
    assert!(
        r.status == 200 || (300..400).contains(&r.status),
        "/api/docs: {r:#?}"
    );

    let r = send(api.get("/.well-known/jwks.json")).await;
    r.expect(200);
    let keys = r.json["keys"].as_array().expect("keys");
    assert!(!keys.is_empty());
    for k in keys {
        assert!(k["kid"].is_string() && k["x"].is_string(), "{k}");
        assert!(k.get("d").is_none(), "private key published: {k}");
    }
}

/// The `#[utoipa::path(method, path = "…")]` annotations of every handler in
/// berth-server/src/routes: what the OpenAPI document must describe.
fn annotated_routes() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../berth-server/src/routes");
    let mut routes = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for chunk in text.split("#[utoipa::path(").skip(1) {
            let method = chunk.split(',').next().unwrap().trim().to_owned();
            let path = chunk
                .split("path = \"")
                .nth(1)
                .and_then(|p| p.split('"').next())
                .unwrap()
                .to_owned();
            routes.push((method, path));
        }
    }
    routes
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let s = shared();
    let api = Api::new(s);
    let r = send(api.get("/api/openapi.json")).await;
    r.expect(200);
    let doc = &r.json;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");

    let mut expected: Vec<(String, String)> = [
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/token"),
        ("post", "/api/v1/auth/token/refresh"),
        ("get", "/api/v1/auth/check"),
        ("get", "/api/v1/auth/api-keys"),
        ("post", "/api/v1/auth/api-keys"),
        ("delete", "/api/v1/auth/api-keys/{id}"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/users"),
        ("get", "/api/v1/users/{id}"),
        ("patch", "/api/v1/users/{id}"),
        ("delete", "/api/v1/users/{id}"),
        ("get", "/api/v1/projects"),
        ("post", "/api/v1/projects"),
        ("get", "/api/v1/projects/{id}"),
        ("patch", "/api/v1/projects/{id}"),
        ("delete", "/api/v1/projects/{id}"),
        ("get", "/api/v1/projects/{id}/members"),
        ("put", "/api/v1/projects/{id}/members/{user_id}"),
        ("delete", "/api/v1/projects/{id}/members/{user_id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/.well-known/jwks.json"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    let annotated = annotated_routes();
    assert!(annotated.len() >= 20, "found only {annotated:?}");
    expected.extend(annotated);

    let mut missing = Vec::new();
    for (method, path) in &expected {
        if paths.get(path).and_then(|p| p.get(method)).is_none() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "not in /api/openapi.json: {missing:?}");

    // Every described route is actually served (no 404 "no such route" for it).
    for (path, item) in paths {
        let concrete = path
            .replace("{id}", "00000000-0000-7000-8000-000000000000")
            .replace("{user_id}", "00000000-0000-7000-8000-000000000000");
        for method in item.as_object().unwrap().keys() {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !matches!(
                m,
                Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
            ) {
                continue;
            }
            let r = send(api.request(m.clone(), &concrete)).await;
            assert!(
                !(r.status == 404 && r.json["message"] == "no such route") && r.status != 405,
                "{method} {path} is documented but not routed: {r:#?}"
            );
            assert!(r.status < 500, "{method} {path}: {r:#?}");
        }
    }
    // Security schemes for the three credential types.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("securitySchemes");
    for name in ["bearer", "api_key", "session"] {
        assert!(schemes.contains_key(name), "{schemes:?}");
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;

    let mut seen = std::collections::HashSet::new();
    for rb in [
        api.get("/healthz"),
        api.get("/metrics"),
        api.get("/api/openapi.json"),
        api.get("/api/v1/auth/check").bearer_auth(&admin),
        api.get("/api/v1/auth/check"),
        api.get("/api/v1/nope"),
        api.request(Method::PUT, "/api/v1/users"),
        api.post("/api/v1/projects").bearer_auth(&admin).body("x"),
    ] {
        let r = send(rb).await;
        let id = r
            .request_id()
            .unwrap_or_else(|| panic!("no x-request-id: {r:#?}"))
            .to_owned();
        assert!(!id.is_empty());
        assert!(seen.insert(id.clone()), "request id {id} reused");
        if r.status >= 400 {
            assert_eq!(r.json["request_id"], id.as_str(), "{r:#?}");
        }
    }

    // A caller's plain request id is kept; anything else is replaced.
    let r = send(
        api.get("/api/v1/nope")
            .header("x-request-id", "trace-abc_123"),
    )
    .await;
    assert_eq!(r.request_id(), Some("trace-abc_123"));
    assert_eq!(r.json["request_id"], "trace-abc_123");
    let evil = "a\"b<script>".to_owned() + &"x".repeat(100);
    let r = send(
        api.get("/api/v1/nope")
            .header("x-request-id", evil.as_str()),
    )
    .await;
    let id = r.request_id().unwrap();
    assert_ne!(id, evil);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{id}"
    );
    assert_eq!(r.json["request_id"], id);
}

// ---------------------------------------------------------------------------------------------
// 14. The store across restarts and crashes (dedicated server)
// ---------------------------------------------------------------------------------------------

fn postmaster_pid(data_dir: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(data_dir.join("system-pg/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Waits (bounded) until no PostgreSQL of `data_dir` is left.
async fn assert_no_system_postgres(data_dir: &std::path::Path, when: &str) {
    for _ in 0..100 {
        if system_postgres_processes(data_dir).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{when}: PostgreSQL of {} still runs: pids {:?}",
        data_dir.display(),
        system_postgres_processes(data_dir)
    );
}

#[tokio::test]
async fn store_survives_restart_and_recovers_from_a_killed_server() {
    let dir = Dedicated::new_dir("lifecycle", &base_config());
    let mut server = Dedicated::start(&dir, ADMIN_PASSWORD);
    let data = server.server.data_dir();

    // First start: create a user.
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "durable").await;
    let project = create_project(&api, &token_of(&api, &u).await, "durable").await;
    assert!(postmaster_pid(&data).is_some_and(process_alive));
    assert!(!system_postgres_processes(&data).is_empty());

    // SIGTERM: clean exit, PostgreSQL stopped with it.
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        server.server.log_text()
    );
    assert_no_system_postgres(&data, "after SIGTERM").await;

    // Restart on the same data: same users; the admin is not created (nor its password
    // changed) again, even though another password is offered now.
    server.restart("another-admin-password-1");
    let api = Api::new(&server.server);
    let r = send(api.post_json(
        "/api/v1/auth/token",
        &login_body("admin", "another-admin-password-1"),
    ))
    .await;
    r.expect_error(401, "invalid_credentials");
    let admin = admin_token(&api).await;
    let r = send(
        api.get(&format!("/api/v1/users/{}", u.id))
            .bearer_auth(&admin),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["username"], u.username.as_str());
    let user_token = token_of(&api, &u).await;
    send(
        api.get(&format!(
            "/api/v1/projects/{}",
            project["id"].as_str().unwrap()
        ))
        .bearer_auth(&user_token),
    )
    .await
    .expect(200);
    let log = server.server.log_text();
    assert!(
        !log.contains("created administrator"),
        "admin created again:\n{log}"
    );
    assert!(
        !log.contains("with password:"),
        "admin password generated:\n{log}"
    );

    // SIGKILL: berth cannot stop its PostgreSQL, which keeps running.
    let pg = postmaster_pid(&data).expect("postmaster.pid");
    let status = server.stop_with(libc::SIGKILL);
    assert!(!status.success());
    assert!(process_alive(pg), "PostgreSQL {pg} died with berth");

    // The next start recovers on its own, with the data intact.
    server.restart(ADMIN_PASSWORD);
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let r = send(
        api.get(&format!("/api/v1/users/{}", u.id))
            .bearer_auth(&admin),
    )
    .await;
    r.expect(200);
    let user_token = token_of(&api, &u).await;
    let r = send(api.get("/api/v1/projects").bearer_auth(&user_token)).await;
    r.expect(200);
    assert_eq!(
        ids(&r.json),
        vec![project["id"].as_str().unwrap().to_owned()]
    );
    // Writes work too.
    create_project(&api, &user_token, "after-crash").await;

    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        server.server.log_text()
    );
    assert_no_system_postgres(&data, "after the final SIGTERM").await;
    assert!(!process_alive(pg) || system_postgres_processes(&data).is_empty());
    server.remove_dir();
}
