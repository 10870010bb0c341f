//! API keys: shown once, bounded by their scopes, revocable.

use serde_json::{json, Value};

use crate::common::*;

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
        api.get(&format!("/api/v1/projects/{}", &project.id.to_string()))
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
