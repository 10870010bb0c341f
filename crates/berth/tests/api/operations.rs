//! Operations: health, readiness, metrics and the API docs; the OpenAPI document describes
//! every route.

use reqwest::Method;

use crate::common::*;

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
