//! What runs out, with the `short` settings: device codes, refresh tokens, token families, the
//! refresh grace period and API clients (each on a server of its own whose clock the test moves
//! forward), and the token endpoint's per-client and per-address rates (on the shared `short`
//! server).

use serde_json::json;

use crate::common::*;

/// A server of the test's own with the `short` lifetimes, whose clock the test moves. Its token
/// endpoint rates are high: these tests make their requests back to back, without waiting.
fn short_dedicated(tag: &str) -> Dedicated {
    let config = short_config()
        .replace(
            &format!("per_client = {SHORT_PER_CLIENT_RATE}.0"),
            "per_client = 1000.0",
        )
        .replace(
            &format!("per_ip = {SHORT_PER_IP_RATE}.0"),
            "per_ip = 1000.0",
        );
    Dedicated::start(&Dedicated::new_dir(tag, &config), ADMIN_PASSWORD)
}

fn stop(mut server: Dedicated) {
    assert!(server.terminate().success());
    server.remove_dir();
}

#[tokio::test]
async fn device_codes_refresh_tokens_and_the_refresh_grace_period_run_out() {
    let server = short_dedicated("short-expiry");
    let s = &server.server;
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (u, u_token, _) = create_member(&api, &admin, "short").await;
    let rs = new_client(&api, &u_token, None).await;
    // One after the other: each moves the server's clock just past the lifetime it tests.
    let wait = |secs: u64| s.advance_clock(secs as i64 + 1);

    // Device codes: neither a pending nor an approved code is good after expires_in.
    let device = async {
        let cookie = session_of(&api, &u.username, &u.password).await;
        let pending = device_code(&api, None).await;
        assert_eq!(pending["expires_in"], SHORT_DEVICE_CODE_TTL_SECS);
        let approved = device_code(&api, None).await;
        decide(&api, &cookie, str_of(&approved, "user_code"), true)
            .await
            .expect(200);
        wait(SHORT_DEVICE_CODE_TTL_SECS);
        for d in [&pending, &approved] {
            poll(&api, str_of(d, "device_code"))
                .await
                .expect_oauth_error(400, "expired_token");
        }
        // Nor can an expired code be approved.
        activation_page(&api, &cookie, str_of(&pending, "user_code"))
            .await
            .expect(404);
    };

    // OAuth refresh tokens expire (2 s here): inactive, and refused.
    let refresh = async {
        let t = device_tokens(&api, &u, None).await;
        let rt = str_of(&t, "refresh_token").to_owned();
        assert_eq!(introspect(&api, &rs, &rt).await.json["active"], true);
        wait(SHORT_OAUTH_REFRESH_TTL_SECS);
        assert_inactive(&introspect(&api, &rs, &rt).await, "expired refresh token");
        refresh_as_cli(&api, &rt)
            .await
            .expect_oauth_error(400, "invalid_grant");
    };

    // The grace period (1 s here): a retry of the parent after it is reuse, and revokes.
    let grace = async {
        let pair = token_pair(&api, &u.username, &u.password).await;
        let rt0 = str_of(&pair, "refresh_token").to_owned();
        let rotate = |rt: String| {
            send(api.post_json("/api/v1/auth/token/refresh", &json!({"refresh_token": rt})))
        };
        let first = rotate(rt0.clone()).await;
        first.expect(200);
        wait(SHORT_REFRESH_GRACE_SECS);
        rotate(rt0).await.expect_error(401, "invalid_grant");
        rotate(str_of(&first.json, "refresh_token").to_owned())
            .await
            .expect_error(401, "invalid_grant");
        check(&api, str_of(&first.json, "access_token"))
            .await
            .expect_error(401, "invalid_token");
    };
    // A family has an absolute lifetime (4 s here), however often it is refreshed in time.
    let family = async {
        let t = device_tokens(&api, &u, None).await;
        let mut rt = str_of(&t, "refresh_token").to_owned();
        let mut last = t.clone();
        // Each refresh well within the refresh token's own lifetime (2 s), until 2 s before
        // the family ends.
        let lifetime = SHORT_OAUTH_FAMILY_LIFETIME_SECS as i64;
        for _ in 0..lifetime - 2 {
            s.advance_clock(1);
            let r = refresh_as_cli(&api, &rt).await;
            last = r.expect_token().clone();
            rt = str_of(&last, "refresh_token").to_owned();
        }
        let exp = introspect(&api, &rs, &rt).await.json["exp"]
            .as_i64()
            .unwrap();
        let family_end = jwt_part(str_of(&t, "access_token"), 1)["iat"]
            .as_i64()
            .unwrap()
            + SHORT_OAUTH_FAMILY_LIFETIME_SECS as i64;
        assert!(
            exp <= family_end + 1,
            "a refresh token outlives its family: {exp} > {family_end}"
        );
        // Past the family's end.
        s.advance_clock(2 + 1);
        refresh_as_cli(&api, &rt)
            .await
            .expect_oauth_error(400, "invalid_grant");
        check(&api, str_of(&last, "access_token"))
            .await
            .expect_error(401, "invalid_token");
    };
    device.await;
    refresh.await;
    grace.await;
    family.await;
    stop(server);
}

#[tokio::test]
async fn api_clients_expire_and_their_tokens_with_them() {
    let server = short_dedicated("short-clients");
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let (_, u_token, _) = create_member(&api, &admin, "brief").await;
    let body = json!({"name": unique("brief"), "expires_at": rfc3339(now_unix() + 2)});
    let c = client_from(&api, &u_token, &body).await;
    let token = cc_token(&api, &c).await;
    check(&api, &token).await.expect(200);
    server.server.advance_clock(3);
    // Past its expires_at the client gets no new tokens…
    token_basic(&api, &c, &[("grant_type", "client_credentials")])
        .await
        .expect_oauth_error(401, "invalid_client");
    // …and the token it got before stops working too (not only once a cache forgets it).
    check(&api, &token).await.expect_error(401, "invalid_token");
    stop(server);
}

/// Whether a response is the token endpoint's 429: `Retry-After`, RFC 6749-shaped body.
fn is_limited(r: &Resp) -> bool {
    if r.status != 429 {
        return false;
    }
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("429 without Retry-After: {r:#?}"));
    assert!(retry >= 1, "{r:#?}");
    assert!(
        r.json["error"].is_string() && r.json.get("message").is_none(),
        "{r:#?}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:#?}");
    true
}

/// Sends `n` client-credentials requests for `client` from `api` at once.
async fn burst(api: &Api, client: &ApiClient, n: usize) -> Vec<Resp> {
    let handles: Vec<_> = (0..n)
        .map(|_| {
            let (api, client) = (api.clone(), client.clone());
            tokio::spawn(async move {
                token_basic(&api, &client, &[("grant_type", "client_credentials")]).await
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn token_endpoint_is_rate_limited_per_client_and_per_address() {
    let s = short();
    let setup = Api::new(s);
    let admin = admin_token(&setup).await;
    let (_, u_token, _) = create_member(&setup, &admin, "rate").await;

    // Per client: a burst of twice the rate, then 429 with Retry-After.
    let a = new_client(&setup, &u_token, None).await;
    let from_71 = Api::from_ip(s, 71);
    let results = burst(&from_71, &a, 12).await;
    let ok = results.iter().filter(|r| r.status == 200).count();
    let limited = results.iter().filter(|r| is_limited(r)).count();
    assert_eq!(ok + limited, 12, "{results:#?}");
    assert!(ok >= 2 * SHORT_PER_CLIENT_RATE as usize, "{results:#?}");
    assert!(limited > 0, "no client was ever limited: {results:#?}");
    // Another client from another address is unaffected.
    let b = new_client(&setup, &u_token, None).await;
    token_basic(
        &Api::from_ip(s, 72),
        &b,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect_token();

    // Per address: clients each within their own burst, together beyond the address's.
    let from_73 = Api::from_ip(s, 73);
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(new_client(&setup, &u_token, None).await);
    }
    let mut handles = Vec::new();
    for c in &clients {
        for _ in 0..3 {
            let (api, c) = (from_73.clone(), c.clone());
            handles.push(tokio::spawn(async move {
                token_basic(&api, &c, &[("grant_type", "client_credentials")]).await
            }));
        }
    }
    let mut limited = 0;
    for h in handles {
        let r = h.await.unwrap();
        if !is_limited(&r) {
            r.expect_token();
        } else {
            limited += 1;
        }
    }
    assert!(
        limited > 0,
        "24 requests from one address in a burst were all served"
    );
    // No client went past its own burst, so that was the address's limit; other addresses
    // are not affected.
    let fresh = new_client(&setup, &u_token, None).await;
    token_basic(
        &Api::from_ip(s, 74),
        &fresh,
        &[("grant_type", "client_credentials")],
    )
    .await
    .expect_token();

    // Failed client authentications count against the address too: an address guessing
    // secrets (or flooding with unknown clients, each a database lookup) is limited like any
    // other.
    let from_75 = Api::from_ip(s, 75);
    let wrong = ApiClient {
        secret: "berth_cs_guess".into(),
        ..fresh.clone()
    };
    let handles: Vec<_> = (0..30)
        .map(|_| {
            let (api, c) = (from_75.clone(), wrong.clone());
            tokio::spawn(async move {
                token_basic(&api, &c, &[("grant_type", "client_credentials")]).await
            })
        })
        .collect();
    let mut limited = 0;
    for h in handles {
        let r = h.await.unwrap();
        if !is_limited(&r) {
            r.expect_oauth_error(401, "invalid_client");
        } else {
            limited += 1;
        }
    }
    assert!(
        limited > 0,
        "30 failed client authentications from one address in a burst were never limited \
         (the per-address limit of {SHORT_PER_IP_RATE}/s applies only after a client \
         authenticated)"
    );
}
