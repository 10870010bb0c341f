//! Expiry, on a dedicated server whose clock the test moves forward (no waiting): access
//! tokens, refresh tokens, sessions and API keys stop working once their lifetime has passed.

use serde_json::json;

use crate::common::*;

/// Clock-skew leeway the server allows on `exp` (berth-auth `AccessClaims::validate`, called
/// with 30 s from berth-core `authenticate.rs`).
const EXP_LEEWAY_SECS: i64 = 30;

#[tokio::test]
async fn access_refresh_and_session_expire() {
    let config = format!(
        "{}\n",
        base_config().replace(
            "[auth]\n",
            "[auth]\naccess_token_ttl_secs = 60\nrefresh_token_ttl_secs = 120\nsession_ttl_secs = 120\n"
        )
    );
    let dir = Dedicated::new_dir("expiry", &config);
    let server = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&server.server);

    let pair = token_pair(&api, "admin", ADMIN_PASSWORD).await;
    assert_eq!(pair["expires_in"], 60);
    assert!((119..=120).contains(&pair["refresh_expires_in"].as_i64().unwrap()));
    let at = pair["access_token"].as_str().unwrap().to_owned();
    let rt = pair["refresh_token"].as_str().unwrap().to_owned();
    let exp = jwt_part(&at, 1)["exp"].as_i64().unwrap();
    let cookie = session_of(&api, "admin", ADMIN_PASSWORD).await;
    let r = send(
        api.post_json(
            "/api/v1/auth/api-keys",
            &json!({"name": "short-lived", "expires_at": rfc3339(now_unix() + 120)}),
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

    // Past the access token's `exp` but within the leeway: still accepted (not from the
    // cache, which never serves a credential past its expiry).
    server.server.advance_clock(60 + EXP_LEEWAY_SECS / 2);
    send(api.get("/api/v1/auth/check").bearer_auth(&at))
        .await
        .expect(200);

    // Past the refresh token's, the session's and the API key's lifetimes.
    server
        .server
        .advance_clock(120 - 60 - EXP_LEEWAY_SECS / 2 + 5);
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
    let server_now = now_unix() + 125;
    assert!(
        server_now > exp + EXP_LEEWAY_SECS,
        "the clock is past exp and the leeway"
    );
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
