//! A credential that expires cannot mint one that outlives it (issue 7, review finding B):
//! scopes were bounded at creation, expiry was not, so a key with a day to live could create a
//! key that never expires and a 500-day key or client. Now an API key, a client's token and a
//! session exchanged for a user token can create credentials expiring no later than themselves
//! (403 naming the limit); a full sign-in is not limited.

use serde_json::{json, Value};

use crate::common::*;

const KEYS: &str = "/api/v1/auth/api-keys";
const CLIENTS: &str = "/api/v1/auth/clients";

fn key_body(expires_at: Option<String>) -> Value {
    match expires_at {
        Some(e) => json!({"name": unique("k"), "expires_at": e}),
        None => json!({"name": unique("k")}),
    }
}

fn client_body(expires_at: String) -> Value {
    json!({"name": unique("c"), "expires_at": expires_at, "scopes": ["projects:read"]})
}

/// `authorization` creates keys and a client: everything outliving `limit_days` is refused (403
/// naming the limit), everything within it is created.
async fn bounded_by(api: &Api, authorization: &str, limit_secs: i64, what: &str) {
    let post = |path: &str, body: Value| {
        send(
            api.post_json(path, &body)
                .header("authorization", authorization),
        )
    };
    for body in [key_body(None), key_body(Some(in_days(500)))] {
        let r = post(KEYS, body.clone()).await;
        r.expect_error(403, "forbidden");
        assert!(
            r.json["message"]
                .as_str()
                .is_some_and(|m| m.contains("expires_at must be at most")),
            "{what}: {body}: {r:#?}"
        );
    }
    post(CLIENTS, client_body(in_days(500)))
        .await
        .expect_error(403, "forbidden");
    let within = rfc3339(now_unix() + limit_secs / 2);
    post(KEYS, key_body(Some(within.clone()))).await.expect(201);
    post(CLIENTS, client_body(within)).await.expect(201);
}

#[tokio::test]
async fn credentials_cannot_outlive_the_credential_that_creates_them() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (user, token, _) = create_member(&api, &admin, "deleg").await;

    // A full sign-in is not limited: a key that never expires, a 500-day key and client.
    for body in [key_body(None), key_body(Some(in_days(500)))] {
        send(api.post_json(KEYS, &body).bearer_auth(&token))
            .await
            .expect(201);
    }
    send(
        api.post_json(CLIENTS, &client_body(in_days(500)))
            .bearer_auth(&token),
    )
    .await
    .expect(201);

    // An API key expiring in a day.
    let r = send(
        api.post_json(
            KEYS,
            &json!({"name": "day", "expires_at": in_days(1),
                    "scopes": ["api_keys:write", "clients:write", "projects:read"]}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(201);
    let key = str_of(&r.json, "api_key").to_owned();
    bounded_by(&api, &format!("Api-Key {key}"), 86_400, "a 1-day key").await;

    // A client expiring in two days, through its client_credentials token.
    let client = client_from(
        &api,
        &token,
        &json!({"name": unique("c2"), "expires_at": in_days(2),
                "scopes": ["api_keys:write", "clients:write", "projects:read"]}),
    )
    .await;
    let cc = cc_token(&api, &client).await;
    bounded_by(&api, &format!("Bearer {cc}"), 2 * 86_400, "a 2-day client").await;

    // A session exchanged for a user token: limited by the session's own expiry.
    let ut = send(
        api.post_json(
            &format!("/api/v1/users/{}/tokens", user.id),
            &json!({"name": "ci", "expires_at": in_days(30)}),
        )
        .bearer_auth(&token),
    )
    .await;
    ut.expect(201);
    let exchanged = send(api.post_json(
        "/api/v1/auth/token/refresh",
        &json!({"refresh_token": str_of(&ut.json, "token")}),
    ))
    .await;
    exchanged.expect(200);
    let session = str_of(&exchanged.json, "access_token").to_owned();
    // The exchanged session lives 24 h (or less): a key for an hour fits.
    bounded_by(
        &api,
        &format!("Bearer {session}"),
        3600 * 2,
        "a user-token session",
    )
    .await;
    // A user token too: a 1-day key with all of its user's scopes may create one, for a day.
    let r = send(
        api.post_json(KEYS, &json!({"name": "full-day", "expires_at": in_days(1)}))
            .bearer_auth(&token),
    )
    .await;
    r.expect(201);
    let full = format!("Api-Key {}", str_of(&r.json, "api_key"));
    let tokens = format!("/api/v1/users/{}/tokens", user.id);
    let r = send(
        api.post_json(
            &tokens,
            &json!({"name": "longer", "expires_at": in_days(30)}),
        )
        .header("authorization", &full),
    )
    .await;
    r.expect_error(403, "forbidden");
    assert!(r.text.contains("expires_at must be at most"), "{r:#?}");
    let within = rfc3339(now_unix() + 3600);
    send(
        api.post_json(&tokens, &json!({"name": "within", "expires_at": within}))
            .header("authorization", &full),
    )
    .await
    .expect(201);
}
