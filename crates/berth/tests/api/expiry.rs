//! Expiry, on a dedicated server with short lifetimes: access tokens, refresh tokens and
//! sessions stop working once their lifetime has passed.

use std::time::Duration;

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
