//! Malformed requests (bad JSON, wrong types, oversized or odd values) get a JSON 4xx, never a
//! 5xx.

use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

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
            // Within the 64 KiB a head may take (a larger head is a 431 from hyper).
            "40 KB cookie",
            api.get("/api/v1/auth/check")
                .session(&"b".repeat(40 * 1024)),
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
