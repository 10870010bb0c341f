//! Issue 8: unique violations are mapped to 409s in one place (a constraint → message table in
//! the app layer), so every write that can break one answers the same way, naming what clashed.

use serde_json::json;

use crate::common::*;

fn message(r: &Resp) -> &str {
    r.json["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn each_unique_constraint_answers_409_naming_what_clashed() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let user = create_user(&api, &admin, "clash").await;
    let other = create_user(&api, &admin, "clash").await;

    // A username and an email (case-insensitively) are each told apart.
    let r = send(
        api.post_json(
            "/api/v1/users",
            &json!({"username": user.username, "email": format!("x-{}", user.email),
                    "password": USER_PASSWORD}),
        )
        .bearer_auth(&admin),
    )
    .await;
    r.expect_error(409, "conflict");
    assert_eq!(message(&r), "a user with this username already exists");
    let r = send(
        api.post_json(
            "/api/v1/users",
            &json!({"username": unique("clash"), "email": user.email.to_uppercase(),
                    "password": USER_PASSWORD}),
        )
        .bearer_auth(&admin),
    )
    .await;
    r.expect_error(409, "conflict");
    assert_eq!(message(&r), "a user with this email already exists");

    // The same constraint broken by an update answers alike.
    let r = send(
        api.patch_json(
            &format!("/api/v1/users/{}", other.id),
            &json!({"email": user.email}),
        )
        .bearer_auth(&admin),
    )
    .await;
    r.expect_error(409, "conflict");
    assert_eq!(message(&r), "a user with this email already exists");

    // Project names, on create and on rename.
    let first = create_project(&api, &admin, "clash").await;
    let second = create_project(&api, &admin, "clash").await;
    let r = send(
        api.post_json("/api/v1/projects", &json!({"name": first.name}))
            .bearer_auth(&admin),
    )
    .await;
    r.expect_error(409, "conflict");
    assert_eq!(message(&r), "a project with this name already exists");
    let r = send(
        api.patch_json(
            &format!("/api/v1/projects/{}", second.id),
            &json!({"name": first.name}),
        )
        .bearer_auth(&admin),
    )
    .await;
    r.expect_error(409, "conflict");
    assert_eq!(message(&r), "a project with this name already exists");
}
