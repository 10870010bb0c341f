//! Routing: every route answers with and without a trailing slash, and every response
//! carries a request id.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

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
