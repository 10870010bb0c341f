//! The bootstrap administrator: signing in with the configured password, and secrets
//! (passwords, tokens, keys) that never reach the server's log.

use serde_json::json;

use crate::common::*;

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
