//! Projects and tenancy: tenants are isolated from each other, and credentials issued before
//! joining a project can use it.

use serde_json::{json, Value};

use crate::common::*;

#[tokio::test]
async fn projects_are_isolated_between_tenants() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    // B has a project of their own.
    let (a, ta, _) = create_member(&api, &admin, "tenant-a").await;
    let (b, tb, pb) = create_member(&api, &admin, "tenant-b").await;
    let pb = pb.id.to_string();

    let name = unique("pa");
    let r = send(
        api.post_json(
            "/api/v1/projects",
            &json!({"name": name, "description": "A's"}),
        )
        .bearer_auth(&ta),
    )
    .await;
    r.expect(201);
    assert_eq!(r.json["name"], name.as_str());
    assert_eq!(r.json["description"], "A's");
    assert_eq!(r.json["user_count"], 1);
    assert_eq!(r.json["role"], "owner");
    let pa = r.json["id"].as_str().unwrap().to_owned();
    let project = format!("/api/v1/projects/{pa}");
    let members = format!("{project}/members");
    send(
        api.post_json("/api/v1/projects", &json!({"name": name}))
            .bearer_auth(&tb),
    )
    .await
    .expect_error(409, "conflict");

    // B, who is not a member, finds nothing — the same answer as for a project that does not
    // exist.
    let missing = "/api/v1/projects/00000000-0000-7000-8000-000000000000";
    let nothing = send(api.get(missing).bearer_auth(&tb)).await;
    nothing.expect_error(404, "not_found");
    let b_key = send(
        api.post_json("/api/v1/auth/api-keys", &json!({"name": "b"}))
            .bearer_auth(&tb),
    )
    .await;
    let b_key = b_key.json["api_key"].as_str().unwrap().to_owned();
    let b_cookie = session_of(&api, &b.username, &b.password).await;
    let probes = |who: &str| -> Vec<(String, reqwest::RequestBuilder)> {
        let auth = |rb: reqwest::RequestBuilder| match who {
            "token" => rb.bearer_auth(&tb),
            "key" => rb.api_key(&b_key),
            _ => rb.session(&b_cookie).origin(&s.base),
        };
        vec![
            ("GET project".into(), auth(api.get(&project))),
            (
                "PATCH project".into(),
                auth(api.patch_json(&project, &json!({"name": "mine now"}))),
            ),
            ("DELETE project".into(), auth(api.delete(&project))),
            ("GET members".into(), auth(api.get(&members))),
            (
                "PUT member (self)".into(),
                auth(api.put_json(&format!("{members}/{}", b.id), &json!({"role": "owner"}))),
            ),
            (
                "PUT member (owner)".into(),
                auth(api.put_json(&format!("{members}/{}", a.id), &json!({"role": "viewer"}))),
            ),
            (
                "DELETE member".into(),
                auth(api.delete(&format!("{members}/{}", a.id))),
            ),
        ]
    };
    let mut failures = Vec::new();
    for who in ["token", "key", "session"] {
        for (what, rb) in probes(who) {
            let r = send(rb).await;
            if r.status != 404 || r.json["message"] != nothing.json["message"] {
                failures.push(format!("{who} {what}: {} {}", r.status, r.text));
            } else if let Err(e) = r.check_error_body("not_found") {
                failures.push(format!("{who} {what}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "B reached A's project:\n{}",
        failures.join("\n")
    );
    let r = send(api.get("/api/v1/projects").bearer_auth(&tb)).await;
    r.expect(200);
    assert_eq!(ids(&r.json), vec![pb.clone()], "{}", r.text);
    assert_eq!(r.json["count"], 1);

    // Nothing changed.
    let r = send(api.get(&project).bearer_auth(&ta)).await;
    r.expect(200);
    assert_eq!(r.json["name"], name.as_str());
    assert_eq!(r.json["user_count"], 1);

    // A adds B as a viewer: B reads but cannot change anything.
    let r = send(
        api.put_json(&format!("{members}/{}", b.id), &json!({"role": "viewer"}))
            .bearer_auth(&ta),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["user_id"], b.id.as_str());
    assert_eq!(r.json["username"], b.username.as_str());
    assert_eq!(r.json["role"], "viewer");
    let r = send(api.get(&project).bearer_auth(&tb)).await;
    r.expect(200);
    assert_eq!(r.json["role"], "viewer");
    assert_eq!(r.json["user_count"], 2);
    let r = send(api.get(&members).bearer_auth(&tb)).await;
    r.expect(200);
    assert_eq!(r.json["count"], 2);
    let r = send(api.get("/api/v1/projects").bearer_auth(&tb)).await;
    let mut seen = ids(&r.json);
    seen.sort();
    let mut both = vec![pa.clone(), pb.clone()];
    both.sort();
    assert_eq!(seen, both);
    send(
        api.patch_json(&project, &json!({"description": "B's"}))
            .bearer_auth(&tb),
    )
    .await
    .expect_error(403, "forbidden");
    send(api.delete(&project).bearer_auth(&tb))
        .await
        .expect_error(403, "forbidden");
    send(
        api.put_json(&format!("{members}/{}", b.id), &json!({"role": "admin"}))
            .bearer_auth(&tb),
    )
    .await
    .expect_error(403, "forbidden");
    send(api.delete(&format!("{members}/{}", a.id)).bearer_auth(&tb))
        .await
        .expect_error(403, "forbidden");

    // As a project admin B may edit, but neither grant ownership nor delete the project.
    send(
        api.put_json(&format!("{members}/{}", b.id), &json!({"role": "admin"}))
            .bearer_auth(&ta),
    )
    .await
    .expect(200);
    let r = send(
        api.patch_json(&project, &json!({"description": "edited by B"}))
            .bearer_auth(&tb),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["description"], "edited by B");
    send(
        api.put_json(&format!("{members}/{}", b.id), &json!({"role": "owner"}))
            .bearer_auth(&tb),
    )
    .await
    .expect_error(403, "forbidden");
    send(api.delete(&project).bearer_auth(&tb))
        .await
        .expect_error(403, "forbidden");

    // The last owner can be neither demoted nor removed.
    send(
        api.put_json(&format!("{members}/{}", a.id), &json!({"role": "admin"}))
            .bearer_auth(&ta),
    )
    .await
    .expect_error(409, "conflict");
    send(api.delete(&format!("{members}/{}", a.id)).bearer_auth(&ta))
        .await
        .expect_error(409, "conflict");
    // Bad member requests.
    send(
        api.put_json(
            &format!("{members}/{}", b.id),
            &json!({"role": "superuser"}),
        )
        .bearer_auth(&ta),
    )
    .await
    .expect_error(400, "invalid_request");
    send(
        api.put_json(
            &format!("{members}/00000000-0000-7000-8000-000000000000"),
            &json!({"role": "viewer"}),
        )
        .bearer_auth(&ta),
    )
    .await
    .expect_error(404, "not_found");

    // Names stay unique; the sole owner of a project cannot be deleted.
    let taken = create_project(&api, &ta, "taken").await;
    send(
        api.patch_json(&project, &json!({"name": taken.name}))
            .bearer_auth(&ta),
    )
    .await
    .expect_error(409, "conflict");
    send(
        api.delete(&format!("/api/v1/users/{}", a.id))
            .bearer_auth(&admin),
    )
    .await
    .expect_error(409, "conflict");

    // The platform admin sees every project, without being a member.
    let r = send(api.get(&project).bearer_auth(&admin)).await;
    r.expect(200);
    assert_eq!(r.json["role"], Value::Null);
    let r = send(api.get("/api/v1/projects?limit=500").bearer_auth(&admin)).await;
    r.expect(200);
    assert!(ids(&r.json).contains(&pa), "admin does not see {pa}");

    // Removing B ends their access.
    send(api.delete(&format!("{members}/{}", b.id)).bearer_auth(&ta))
        .await
        .expect(204);
    send(api.get(&project).bearer_auth(&tb))
        .await
        .expect_error(404, "not_found");
    let r = send(api.get(&project).bearer_auth(&ta)).await;
    assert_eq!(r.json["user_count"], 1);

    // The owner deletes the project.
    send(api.delete(&project).bearer_auth(&ta))
        .await
        .expect(204);
    send(api.get(&project).bearer_auth(&ta))
        .await
        .expect_error(404, "not_found");
    send(api.delete(&project).bearer_auth(&ta))
        .await
        .expect_error(404, "not_found");
    let r = send(api.get("/api/v1/projects").bearer_auth(&ta)).await;
    assert!(!ids(&r.json).contains(&pa));
}

/// Memberships gained after signing in count: the caller's role in the project decides, as for
/// a session. (Tokens and API keys currently carry only the permissions the user held when they
/// were issued, so a new user's token cannot list projects nor read the one it just created.)
#[tokio::test]
async fn credentials_issued_before_joining_a_project_can_use_it() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "newcomer").await;
    let token = token_of(&api, &u).await;
    let key = send(
        api.post_json("/api/v1/auth/api-keys", &json!({"name": "ci"}))
            .bearer_auth(&token),
    )
    .await;
    key.expect(201);
    let key = key.json["api_key"].as_str().unwrap().to_owned();

    // A new user has no projects: an empty list, not an error.
    let r = send(api.get("/api/v1/projects").bearer_auth(&token)).await;
    r.expect(200);
    assert_eq!(r.json["count"], 0);

    // The project the user just created, read with the token that created it.
    let project = create_project(&api, &token, "newcomer").await;
    let url = format!("/api/v1/projects/{}", &project.id.to_string());
    let r = send(api.get(&url).bearer_auth(&token)).await;
    r.expect(200);
    assert_eq!(r.json["role"], "owner");
    send(api.get("/api/v1/projects").bearer_auth(&token))
        .await
        .expect(200);
    send(api.get(&format!("{url}/members")).bearer_auth(&token))
        .await
        .expect(200);
    // An API key made (without scopes, "every scope of its creator") before the project existed.
    send(api.get(&url).api_key(&key)).await.expect(200);
}
