//! Issue 7, parts 3, 4 and 6: sign-ins under concurrency (a correct password is never locked
//! out, wrong ones stay exactly bounded), credentials bounded by their scopes and by what their
//! creator could do, and values with U+0000. Each test signs in from its own address (140–149).

use serde_json::{json, Value};

use crate::common::*;

/// The longest `Retry-After` (seconds) a sign-in may get when nothing is locked out.
const SHORT_RETRY: u64 = 5;

fn retry_after(r: &Resp) -> u64 {
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("429/503 without a Retry-After in seconds: {r:#?}"))
}

/// Signs in, honouring short retries (429/503 with `Retry-After` ≤ 5 s) up to `tries` times;
/// returns the final answer and how many short retries it took.
async fn sign_in_retrying(api: Api, login: String, password: String) -> (Resp, u32) {
    let mut retries = 0;
    loop {
        let r = send(api.post_json(
            "/api/v1/auth/token",
            &json!({"username": login, "password": password}),
        ))
        .await;
        if matches!(r.status, 429 | 503) && retry_after(&r) <= SHORT_RETRY && retries < 50 {
            retries += 1;
            tokio::time::sleep(std::time::Duration::from_secs(retry_after(&r))).await;
            continue;
        }
        return (r, retries);
    }
}

async fn burst(api: &Api, login: &str, password: &str, n: usize) -> Vec<(Resp, u32)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        set.spawn(sign_in_retrying(
            api.clone(),
            login.to_owned(),
            password.to_owned(),
        ));
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

/// 50 parallel sign-ins with the right password all succeed (some after a short retry, never a
/// lockout); then 50 parallel wrong ones get exactly the allowed number of 401s, and the rest
/// the lockout's 429 — also for the right password afterwards.
#[tokio::test]
async fn parallel_correct_sign_ins_are_never_locked_out_and_guesses_stay_bounded() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "parallel").await;
    let mine = Api::from_ip(s, 140);

    for (r, _) in burst(&mine, &u.username, &u.password, 50).await {
        assert_eq!(
            r.status, 200,
            "a correct sign-in was refused (not a short retry): {r:#?}"
        );
    }
    // Nothing was charged: a full allowance of failures is still there.
    let results = burst(&mine, &u.username, "wrong wrong wrong", 50).await;
    let refused = results.iter().filter(|(r, _)| r.status == 401).count();
    assert_eq!(
        refused, MAX_FAILURES_PER_ACCOUNT,
        "wrong passwords checked: {refused}, the limit is {MAX_FAILURES_PER_ACCOUNT}"
    );
    for (r, _) in results.iter().filter(|(r, _)| r.status != 401) {
        r.expect_error(429, "too_many_requests");
        assert!(retry_after(r) > SHORT_RETRY, "not the lockout: {r:#?}");
    }
    let (r, _) = sign_in_retrying(mine.clone(), u.username.clone(), u.password.clone()).await;
    r.expect_error(429, "too_many_requests");
    assert!(retry_after(&r) > SHORT_RETRY);
}

/// `current_password` checks share the account's reservations: parallel correct ones all pass.
#[tokio::test]
async fn parallel_correct_current_passwords_are_not_charged() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "confirm").await;
    let mine = Api::from_ip(s, 141);
    let token = token_of(&mine, &u).await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (mine, token, id, pw) = (
            mine.clone(),
            token.clone(),
            u.id.clone(),
            u.password.clone(),
        );
        let name = u.username.clone();
        set.spawn(async move {
            let body = json!({"email": format!("{name}-{i}@example.com"), "current_password": pw});
            loop {
                let r = send(
                    mine.patch_json(&format!("/api/v1/users/{id}"), &body)
                        .bearer_auth(&token),
                )
                .await;
                if r.status == 429 && retry_after(&r) <= SHORT_RETRY {
                    tokio::time::sleep(std::time::Duration::from_secs(retry_after(&r))).await;
                    continue;
                }
                return r;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().expect(200);
    }
    // The account still has its whole allowance of failures.
    for _ in 0..MAX_FAILURES_PER_ACCOUNT {
        send(mine.post_json(
            "/api/v1/auth/token",
            &json!({"username": u.username, "password": "wrong wrong wrong"}),
        ))
        .await
        .expect_error(401, "invalid_credentials");
    }
}

/// A key narrowed to `projects:read` cannot read or change its owner's account; `account:read`
/// / `account:write` (held by every full sign-in) can.
#[tokio::test]
async fn narrowed_credentials_do_not_reach_the_account() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "narrow").await;
    let token = token_of(&api, &u).await;
    let me = format!("/api/v1/users/{}", u.id);
    let change =
        json!({"email": format!("{}@changed.example", u.username), "current_password": u.password});

    let narrow = create_api_key(&api, &token, Some(&["projects:read"]))
        .await
        .api_key;
    send(api.get(&me).api_key(&narrow))
        .await
        .expect_error(403, "forbidden");
    let r = send(api.patch_json(&me, &change).api_key(&narrow)).await;
    r.expect_error(403, "forbidden");
    assert!(r.text.contains("account:write"), "{}", r.text);
    // Nor can it mint a user token, which would be exchanged for a full session.
    send(
        api.post_json(
            &format!("{me}/tokens"),
            &json!({"name": "t", "expires_at": in_days(1)}),
        )
        .api_key(
            &create_api_key(&api, &token, Some(&["api_keys:write"]))
                .await
                .api_key,
        ),
    )
    .await
    .expect_error(403, "forbidden");

    let reader = create_api_key(&api, &token, Some(&["account:read"]))
        .await
        .api_key;
    send(api.get(&me).api_key(&reader)).await.expect(200);
    send(api.patch_json(&me, &change).api_key(&reader))
        .await
        .expect_error(403, "forbidden");
    // Full credentials (a sign-in, a key created without a scope list) keep their account.
    let full = create_api_key(&api, &token, None).await.api_key;
    send(api.get(&me).api_key(&full)).await.expect(200);
    send(api.get(&me).bearer_auth(&token)).await.expect(200);
    send(api.patch_json(&me, &change).bearer_auth(&token))
        .await
        .expect(200);
    let check = send(api.get("/api/v1/auth/check").bearer_auth(&token)).await;
    let perms = check.json["permissions"].to_string();
    assert!(
        perms.contains("account:read") && perms.contains("account:write"),
        "{perms}"
    );
}

/// A viewer cannot create a credential for what their role does not grant: 403 at creation.
#[tokio::test]
async fn credentials_cannot_exceed_the_creators_role() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let tenant = Tenant::new(&api, &admin, "bound").await;
    let pid = tenant.id();
    let owner_token = &tenant.owner.token;
    let vt = &tenant.viewer.token;
    let client = |scopes: Option<&[&str]>| {
        let mut body =
            json!({"name": unique("bound"), "expires_at": in_days(1), "project_id": pid});
        if let Some(s) = scopes {
            body["scopes"] = json!(s);
        }
        api.post_json("/api/v1/auth/clients", &body).bearer_auth(vt)
    };
    let r = send(client(Some(&["instances:write"]))).await;
    r.expect_error(403, "forbidden");
    assert!(r.text.contains("instances:write"), "{}", r.text);
    send(client(Some(&["members:write", "instances:read"])))
        .await
        .expect_error(403, "forbidden");
    // Without a scope list it gets what the viewer holds there, no more.
    let r = send(client(None)).await;
    r.expect(201);
    let mut scopes: Vec<&str> = r.json["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        [
            "instances:read",
            "jobs:read",
            "members:read",
            "projects:read"
        ]
    );
    // The owner may.
    let mut body = json!({"name": unique("bound"), "expires_at": in_days(1), "project_id": pid,
                          "scopes": ["instances:write"]});
    send(
        api.post_json("/api/v1/auth/clients", &body)
            .bearer_auth(owner_token),
    )
    .await
    .expect(201);
    // A platform admin may bind a client to any project.
    body["name"] = json!(unique("bound"));
    send(
        api.post_json("/api/v1/auth/clients", &body)
            .bearer_auth(&admin),
    )
    .await
    .expect(201);
}

/// A sign-in whose username holds U+0000 is refused and audited, the NUL escaped.
#[tokio::test]
async fn nul_in_a_username_is_audited_escaped() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let mine = Api::from_ip(s, 142);
    let login = format!("{}\u{0}x", unique("nul"));
    send(mine.post_json(
        "/api/v1/auth/token",
        &json!({"username": login, "password": "whatever whatever"}),
    ))
    .await
    .expect_error(401, "invalid_credentials");
    let escaped = login.replace('\u{0}', "\\u0000");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let r = send(
            api.get("/api/v1/audit-events?type=auth.login.failed&limit=500")
                .bearer_auth(&admin),
        )
        .await;
        r.expect(200);
        let found = r.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e: &Value| e["details"]["login"] == escaped.as_str());
        if found {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no audit event for the NUL sign-in; log:\n{}",
            s.log_text()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        !s.log_text().contains("audit events could not be written"),
        "an audit batch was lost"
    );
}

/// A description with U+0000 is refused for what it is, not for its length.
#[tokio::test]
async fn nul_in_a_description_gets_the_right_message() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "nuldesc").await;
    for r in [
        send(
            api.post_json(
                "/api/v1/projects",
                &json!({"name": unique("nuldesc"), "description": "a\u{0}b"}),
            )
            .bearer_auth(&token),
        )
        .await,
        send(
            api.patch_json(
                &format!("/api/v1/projects/{}", &project.id.to_string()),
                &json!({"description": "a\u{0}b"}),
            )
            .bearer_auth(&token),
        )
        .await,
    ] {
        r.expect_error(400, "invalid_request");
        let m = r.json["message"].as_str().unwrap();
        assert!(
            m.contains("control characters") && !m.contains("1000"),
            "{m}"
        );
    }
}
