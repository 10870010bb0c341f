//! Browser sessions: the session cookie's login, rotation and logout, CSRF protection of
//! cookie-authenticated requests, and a session secret that is no bearer token.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

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
