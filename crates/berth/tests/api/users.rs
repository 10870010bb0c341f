//! Users, administered by platform administrators.

use serde_json::{json, Value};

use crate::common::*;

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
