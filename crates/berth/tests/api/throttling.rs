//! Wrong passwords and throttling: unknown users and wrong passwords look alike, failures
//! are throttled per account and per address, also for `current_password` checks. Each test
//! signs in from its own loopback source address.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn wrong_password_and_unknown_user_are_indistinguishable_and_throttled() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "wrongpw").await;
    let bystander = create_user(&api, &admin, "bystander").await;
    let mine = Api::from_ip(s, 2);
    let token =
        |login: &str, pw: &str| mine.post_json("/api/v1/auth/token", &login_body(login, pw));

    let wrong = send(token(&u.username, "not the right password")).await;
    wrong.expect_error(401, "invalid_credentials");
    let unknown = send(token(&unique("nobody"), "not the right password")).await;
    unknown.expect_error(401, "invalid_credentials");
    assert_eq!(wrong.json["message"], unknown.json["message"]);
    assert_eq!(
        wrong.header("www-authenticate"),
        unknown.header("www-authenticate")
    );
    assert!(!wrong.text.contains(&u.username), "{}", wrong.text);
    // The session endpoint answers alike.
    let r = send(mine.post_json(
        "/api/v1/auth/login",
        &json!({"login": u.username, "password": "not the right password"}),
    ))
    .await;
    r.expect_error(401, "invalid_credentials");
    assert!(r.set_cookie().is_none());

    // Up to the limit, failures are plain 401s; then even the right password is refused.
    for _ in 2..MAX_FAILURES_PER_ACCOUNT {
        send(token(&u.username, "not the right password"))
            .await
            .expect_error(401, "invalid_credentials");
    }
    for r in [
        send(token(&u.username, &u.password)).await,
        send(mine.post_json(
            "/api/v1/auth/login",
            &json!({"login": u.username, "password": u.password}),
        ))
        .await,
    ] {
        r.expect_error(429, "too_many_requests");
        let retry: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("Retry-After in seconds");
        assert!((1..=THROTTLE_WINDOW_SECS).contains(&retry), "{retry}");
    }

    // Other accounts, from the same address, are unaffected; the user's tokens still work.
    token_pair(&mine, &bystander.username, &bystander.password).await;
    let r = send(api.get("/api/v1/users").bearer_auth(&admin)).await;
    r.expect(200);
}

#[tokio::test]
async fn failures_from_one_address_are_throttled_across_accounts() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "perip").await;
    let mine = Api::from_ip(s, 3);

    for _ in 0..MAX_FAILURES_PER_IP {
        send(mine.post_json(
            "/api/v1/auth/token",
            &login_body(&unique("spray"), "guess-guess-guess"),
        ))
        .await
        .expect_error(401, "invalid_credentials");
    }
    let r = send(mine.post_json("/api/v1/auth/token", &login_body(&unique("spray"), "x"))).await;
    r.expect_error(429, "too_many_requests");
    assert!(r
        .header("retry-after")
        .is_some_and(|v| v.parse::<u64>().is_ok()));
    // Even a valid sign-in from this address waits.
    send(mine.post_json("/api/v1/auth/token", &login_body(&u.username, &u.password)))
        .await
        .expect_error(429, "too_many_requests");
    // The same account from another address is fine.
    token_pair(&api, &u.username, &u.password).await;
}

/// The per-account limit protects the account, whichever login (username or email) names it.
#[tokio::test]
async fn account_throttle_covers_both_username_and_email() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "byemail").await;
    let mine = Api::from_ip(s, 5);

    for _ in 0..MAX_FAILURES_PER_ACCOUNT {
        send(mine.post_json(
            "/api/v1/auth/token",
            &login_body(&u.username, "wrong wrong wrong"),
        ))
        .await
        .expect_error(401, "invalid_credentials");
    }
    send(mine.post_json(
        "/api/v1/auth/token",
        &login_body(&u.username, "wrong wrong wrong"),
    ))
    .await
    .expect_error(429, "too_many_requests");
    // The same account, named by its email address: still throttled.
    let r = send(mine.post_json(
        "/api/v1/auth/token",
        &login_body(&u.email, "wrong wrong wrong"),
    ))
    .await;
    assert_eq!(
        r.status, 429,
        "after {MAX_FAILURES_PER_ACCOUNT} failures the account accepts more guesses via its email: {r:#?}"
    );
}

/// A burst of concurrent guesses must not get more than the limit of answers.
#[tokio::test]
async fn account_throttle_holds_under_concurrent_guesses() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "burst").await;
    let mine = Api::from_ip(s, 6);

    let mut set = tokio::task::JoinSet::new();
    for _ in 0..MAX_FAILURES_PER_IP {
        let rb = mine.post_json(
            "/api/v1/auth/token",
            &login_body(&u.username, "guess guess guess"),
        );
        set.spawn(async move { send(rb).await });
    }
    let (mut refused, mut throttled) = (0, 0);
    while let Some(r) = set.join_next().await {
        let r = r.unwrap();
        match r.status {
            401 => refused += 1,
            429 => throttled += 1,
            _ => panic!("{r:#?}"),
        }
    }
    assert_eq!(refused + throttled, MAX_FAILURES_PER_IP);
    assert!(
        refused <= MAX_FAILURES_PER_ACCOUNT,
        "{refused} concurrent guesses were checked against the password, the limit is {MAX_FAILURES_PER_ACCOUNT}"
    );
}

/// `current_password` (required to change one's own password or email) is a password check: a
/// stolen token or API key must not get unlimited guesses at it.
#[tokio::test]
async fn current_password_guesses_are_throttled() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "oracle").await;
    let token = token_of(&api, &u).await;
    let mine = Api::from_ip(s, 8);
    let guess = || {
        mine.patch_json(
            &format!("/api/v1/users/{}", u.id),
            &json!({"password": "taken over account", "current_password": "a wrong guess"}),
        )
        .bearer_auth(&token)
    };
    for _ in 0..MAX_FAILURES_PER_ACCOUNT {
        send(guess()).await.expect_error(403, "forbidden");
    }
    let r = send(guess()).await;
    assert_eq!(
        r.status, 429,
        "{MAX_FAILURES_PER_ACCOUNT} wrong current_password guesses, and still no throttling: {r:#?}"
    );
    r.expect_error(429, "too_many_requests");
}
