//! Token exchange (RFC 8693) — a Berth token narrowed, and tokens of external OpenID Connect
//! issuers the `fast` server trusts, signed by the issuer this process runs on loopback
//! ([`idp`]) — and signing-key rotation.

use std::collections::BTreeSet;
use std::time::Duration;

use berth_auth::jwt::SigningKey;
use serde_json::{json, Value};

use crate::common::*;

async fn exchange(api: &Api, subject: &str, subject_type: &str, extra: &[(&str, &str)]) -> Resp {
    let mut form = vec![
        ("grant_type", GRANT_EXCHANGE),
        ("client_id", CLI_CLIENT),
        ("subject_token", subject),
        ("subject_token_type", subject_type),
    ];
    form.extend_from_slice(extra);
    token_form(api, &form).await
}

fn scope_set(v: &Value) -> BTreeSet<&str> {
    v.as_str().unwrap_or_default().split_whitespace().collect()
}

#[tokio::test]
async fn exchanging_own_tokens_narrows_them_within_the_same_grant() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (u, _, _) = create_member(&api, &admin, "exchange").await;
    let pair = token_pair(&api, &u.username, &u.password).await;
    let subject = str_of(&pair, "access_token").to_owned();

    // Narrowed to a subset of the subject's scope.
    let r = exchange(
        &api,
        &subject,
        TOKEN_TYPE_ACCESS,
        &[("scope", "projects:read")],
    )
    .await;
    let narrow = r.expect_token().clone();
    assert_eq!(narrow["issued_token_type"], TOKEN_TYPE_ACCESS, "{narrow}");
    assert_eq!(narrow["scope"], "projects:read");
    assert!(narrow.get("refresh_token").is_none(), "{narrow}");
    let narrow_at = str_of(&narrow, "access_token").to_owned();
    let claims = jwt_part(&narrow_at, 1);
    let original = jwt_part(&subject, 1);
    assert_eq!(claims["sub"], u.id.as_str());
    assert_eq!(claims["sid"], original["sid"], "not in the subject's grant");
    assert_eq!(claims["client_id"], CLI_CLIENT);
    assert_eq!(claims["scope"], "projects:read");
    send(api.get("/api/v1/projects").bearer_auth(&narrow_at))
        .await
        .expect(200);
    send(
        api.post_json("/api/v1/projects", &json!({"name": unique("x")}))
            .bearer_auth(&narrow_at),
    )
    .await
    .expect_error(403, "forbidden");

    // Never wider than the subject: a narrowed token cannot be widened again.
    exchange(
        &api,
        &narrow_at,
        TOKEN_TYPE_ACCESS,
        &[("scope", "projects:read projects:create")],
    )
    .await
    .expect_oauth_error(400, "invalid_scope");
    exchange(
        &api,
        &subject,
        TOKEN_TYPE_ACCESS,
        &[("scope", "users:write")],
    )
    .await
    .expect_oauth_error(400, "invalid_scope");
    let same = exchange(&api, &narrow_at, TOKEN_TYPE_ACCESS, &[]).await;
    assert_eq!(same.expect_token()["scope"], "projects:read");
    let all = exchange(&api, &subject, TOKEN_TYPE_JWT, &[]).await;
    assert_eq!(
        scope_set(&all.expect_token()["scope"]),
        scope_set(&original["scope"])
    );

    // Audiences: Berth's own is fine; one not configured is not.
    let own = format!("{}/api", s.base);
    exchange(&api, &subject, TOKEN_TYPE_ACCESS, &[("audience", &own)])
        .await
        .expect_token();
    exchange(
        &api,
        &subject,
        TOKEN_TYPE_ACCESS,
        &[("audience", "https://elsewhere.example")],
    )
    .await
    .expect_oauth_error(400, "invalid_target");

    // Malformed requests.
    token_form(
        &api,
        &[
            ("grant_type", GRANT_EXCHANGE),
            ("client_id", CLI_CLIENT),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
        ],
    )
    .await
    .expect_oauth_error(400, "invalid_request");
    token_form(
        &api,
        &[
            ("grant_type", GRANT_EXCHANGE),
            ("client_id", CLI_CLIENT),
            ("subject_token", &subject),
        ],
    )
    .await
    .expect_oauth_error(400, "invalid_request");
    exchange(
        &api,
        &subject,
        "urn:ietf:params:oauth:token-type:saml2",
        &[],
    )
    .await
    .expect_oauth_error(400, "invalid_request");
    exchange(
        &api,
        &subject,
        TOKEN_TYPE_ACCESS,
        &[(
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:refresh_token",
        )],
    )
    .await
    .expect_oauth_error(400, "invalid_request");

    // Subjects that are not live Berth user tokens.
    let mut forged = subject.clone();
    forged.pop();
    forged.push(if subject.ends_with('A') { 'B' } else { 'A' });
    let (_, member_token, _) = create_member(&api, &admin, "exchange-cc").await;
    let client = new_client(&api, &member_token, None).await;
    let cc = cc_token(&api, &client).await;
    for bad in [forged.as_str(), "not-a-token", cc.as_str()] {
        exchange(&api, bad, TOKEN_TYPE_ACCESS, &[])
            .await
            .expect_oauth_error(400, "invalid_grant");
    }
    // A confidential client may not exchange.
    token_basic(
        &api,
        &client,
        &[
            ("grant_type", GRANT_EXCHANGE),
            ("subject_token", &subject),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
        ],
    )
    .await
    .expect_oauth_error(400, "unauthorized_client");

    // Ending the original sign-in ends the exchanged tokens with it.
    send(api.post("/api/v1/auth/logout").bearer_auth(&subject))
        .await
        .expect(204);
    check(&api, &narrow_at)
        .await
        .expect_error(401, "invalid_token");
    exchange(&api, &subject, TOKEN_TYPE_ACCESS, &[])
        .await
        .expect_oauth_error(400, "invalid_grant");
}

#[tokio::test]
async fn exchanging_tokens_of_trusted_external_issuers() {
    let s = fast();
    let api = Api::new(s);
    let idp = idp();
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "federated").await;
    let id_token =
        |name: &str, aud: &str, extra: Value| idp.sign(name, &id_claims(name, aud, extra));

    // Accepted: a trusted issuer's ID token naming an existing user by email.
    let t = id_token("idp-a", AUD_A, json!({"email": u.email}));
    let r = exchange(&api, &t, TOKEN_TYPE_ID, &[]).await;
    let body = r.expect_token().clone();
    assert_eq!(body["issued_token_type"], TOKEN_TYPE_ACCESS);
    assert!(str_of(&body, "refresh_token").starts_with("berth_rt_"));
    let at = str_of(&body, "access_token");
    assert_eq!(jwt_part(at, 1)["iss"], s.base.as_str());
    let who = check(&api, at).await;
    who.expect(200);
    assert_eq!(who.json["user"]["id"], u.id.as_str());
    assert_eq!(who.json["client_id"], CLI_CLIENT);
    // The Berth family refreshes like any other.
    refresh_as_cli(&api, str_of(&body, "refresh_token"))
        .await
        .expect_token();

    // Email matching ignores case; a JWT subject type and an audience list are fine; scope
    // narrows.
    let t = id_token(
        "idp-a",
        "unused",
        json!({"email": u.email.to_uppercase(), "aud": ["other", AUD_A]}),
    );
    let r = exchange(&api, &t, TOKEN_TYPE_JWT, &[("scope", "projects:read")]).await;
    let body = r.expect_token();
    assert_eq!(body["scope"], "projects:read");
    assert_eq!(
        check(&api, str_of(body, "access_token")).await.json["user"]["id"],
        u.id.as_str()
    );

    // Refused, each as invalid_grant: another audience, an untrusted issuer, expired, signed
    // by a key the issuer does not publish (under a published kid, or an unknown one), no
    // signature, an unverified email, no user and no permission to create one.
    let now = now_unix();
    let stranger_key = SigningKey::generate("idp-a-1".into());
    let unknown_kid = SigningKey::generate("idp-a-999".into());
    let claims = id_claims("idp-a", AUD_A, json!({"email": u.email}));
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{header}.{}.", b64(claims.to_string().as_bytes()));
    let cases = [
        (
            "wrong audience",
            id_token("idp-a", "someone-else", json!({"email": u.email})),
            "audience",
        ),
        (
            "untrusted issuer",
            id_token("idp-x", AUD_A, json!({"email": u.email})),
            "not trusted",
        ),
        (
            "expired",
            id_token(
                "idp-a",
                AUD_A,
                json!({"email": u.email, "iat": now - 7200, "exp": now - 3600}),
            ),
            "expired",
        ),
        ("foreign key", stranger_key.sign(&claims), "signature"),
        ("unknown kid", unknown_kid.sign(&claims), "key"),
        ("alg none", unsigned, "none"),
        (
            "unverified email",
            id_token(
                "idp-a",
                AUD_A,
                json!({"email": u.email, "email_verified": false}),
            ),
            "verified",
        ),
        (
            "unknown user",
            id_token(
                "idp-a",
                AUD_A,
                json!({"email": format!("{}@nowhere.example", unique("nobody"))}),
            ),
            "no Berth user",
        ),
        (
            "no user claim",
            id_token("idp-a", AUD_A, json!({})),
            "email",
        ),
    ];
    for (what, token, why) in cases {
        let r = exchange(&api, &token, TOKEN_TYPE_ID, &[]).await;
        r.expect_oauth_error(400, "invalid_grant");
        assert!(
            str_of(&r.json, "error_description").contains(why),
            "{what}: {r:#?}"
        );
    }
    // Keys are cached: one discovery and one key-set fetch for all of the above, and the
    // unknown kid did not make Berth refetch keys it had just fetched.
    assert_eq!(idp.hits("/idp-a/.well-known/openid-configuration"), 1);
    assert_eq!(idp.hits("/idp-a/jwks"), 1);
    assert_eq!(idp.hits("/idp-x/.well-known/openid-configuration"), 0);

    // An issuer that may create users: an unknown username becomes a user, once.
    let name = unique("newcomer");
    let t = id_token(
        "idp-b",
        AUD_B,
        json!({"preferred_username": name, "email": format!("{name}@idp.example")}),
    );
    let r = exchange(&api, &t, TOKEN_TYPE_ID, &[]).await;
    let who = check(&api, str_of(r.expect_token(), "access_token")).await;
    who.expect(200);
    assert_eq!(who.json["user"]["username"], name.as_str());
    assert_eq!(who.json["user"]["email"], format!("{name}@idp.example"));
    let created_id = str_of(&who.json["user"], "id").to_owned();
    let r = exchange(&api, &t, TOKEN_TYPE_ID, &[]).await;
    let again = check(&api, str_of(r.expect_token(), "access_token")).await;
    assert_eq!(again.json["user"]["id"], created_id.as_str());
    let user = send(
        api.get(&format!("/api/v1/users/{created_id}"))
            .bearer_auth(&admin),
    )
    .await;
    user.expect(200);
    // The new user has no usable password.
    for password in ["", "password", USER_PASSWORD] {
        let r = send(api.post_json(
            "/api/v1/auth/token",
            &json!({"username": name, "password": password}),
        ))
        .await;
        assert!([400, 401].contains(&r.status), "{r:#?}");
    }
    // Existing users are matched by username there.
    let t = id_token("idp-b", AUD_B, json!({"preferred_username": u.username}));
    let r = exchange(&api, &t, TOKEN_TYPE_ID, &[]).await;
    assert_eq!(
        check(&api, str_of(r.expect_token(), "access_token"))
            .await
            .json["user"]["id"],
        u.id.as_str()
    );
    let t = id_token(
        "idp-b",
        AUD_B,
        json!({"preferred_username": "Not A Username!"}),
    );
    exchange(&api, &t, TOKEN_TYPE_ID, &[])
        .await
        .expect_oauth_error(400, "invalid_grant");

    // The audit log has the exchanges and the refusals.
    let events = audit_until(&api, &admin, "type=auth.token.exchange*&limit=500", |ev| {
        ev.iter().any(|e| {
            e["event_type"] == "auth.token.exchanged"
                && e["actor_user_id"] == created_id.as_str()
                && e["details"]["user_created"] == true
        }) && ev.iter().any(|e| {
            e["event_type"] == "auth.token.exchange_failed"
                && e["details"]["issuer"] == idp.issuer("idp-x").as_str()
        })
    })
    .await;
    let made = events
        .iter()
        .find(|e| {
            e["event_type"] == "auth.token.exchanged"
                && e["actor_user_id"] == created_id.as_str()
                && e["details"]["user_created"] == true
        })
        .unwrap();
    assert_eq!(made["client_id"], CLI_CLIENT, "{made}");
    assert_eq!(
        made["details"]["issuer"],
        idp.issuer("idp-b").as_str(),
        "{made}"
    );
    assert_eq!(made["ip"], "127.0.0.1", "{made}");
}

#[tokio::test]
async fn external_issuer_keys_are_refetched_for_an_unknown_kid_at_most_every_30_seconds() {
    let s = fast();
    let api = Api::new(s);
    let idp = idp();
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "rotated-idp").await;
    let claims = id_claims("idp-r", AUD_R, json!({"email": u.email}));

    let t1 = idp.sign("idp-r", &claims);
    exchange(&api, &t1, TOKEN_TYPE_ID, &[]).await.expect_token();
    assert_eq!(idp.hits("/idp-r/jwks"), 1);

    // The issuer rotates to a key Berth has not seen. Right after a fetch, an unknown kid does
    // not trigger another (so garbage tokens cannot make Berth hammer the issuer)…
    let k2 = SigningKey::generate("idp-r-2".into());
    let t2 = k2.sign(&claims);
    exchange(&api, &t2, TOKEN_TYPE_ID, &[])
        .await
        .expect_oauth_error(400, "invalid_grant");
    idp.publish("idp-r", k2);
    exchange(&api, &t2, TOKEN_TYPE_ID, &[])
        .await
        .expect_oauth_error(400, "invalid_grant");
    assert_eq!(idp.hits("/idp-r/jwks"), 1);

    // …but once the refetch interval has passed, the unknown kid refreshes the key set.
    tokio::time::sleep(Duration::from_secs(31)).await;
    exchange(&api, &t2, TOKEN_TYPE_ID, &[]).await.expect_token();
    assert_eq!(idp.hits("/idp-r/jwks"), 2);
    assert_eq!(idp.hits("/idp-r/.well-known/openid-configuration"), 1);
    // The old key is still published and still accepted.
    exchange(&api, &t1, TOKEN_TYPE_ID, &[]).await.expect_token();
}

#[tokio::test]
async fn signing_keys_rotate_and_tokens_signed_before_keep_working() {
    let s = fast();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, u_token, _) = create_member(&api, &admin, "keys").await;
    let client = new_client(&api, &u_token, None).await;
    let cc_before = cc_token(&api, &client).await;
    let old_kid = str_of(&jwt_part(&admin, 0), "kid").to_owned();
    let jwks = |api: &Api| {
        let api = api.clone();
        async move {
            let r = send(api.get("/.well-known/jwks.json")).await;
            r.expect(200);
            r.json["keys"].as_array().unwrap().clone()
        }
    };
    let kids = |keys: &[Value]| -> Vec<String> {
        keys.iter().map(|k| str_of(k, "kid").to_owned()).collect()
    };
    assert!(kids(&jwks(&api).await).contains(&old_kid));

    // Platform admins only.
    send(api.post("/api/v1/auth/keys/rotate").bearer_auth(&u_token))
        .await
        .expect_error(403, "forbidden");
    send(api.post("/api/v1/auth/keys/rotate"))
        .await
        .expect_error(401, "unauthorized");

    let r = send(api.post("/api/v1/auth/keys/rotate").bearer_auth(&admin)).await;
    r.expect(200);
    let new_kid = str_of(&r.json, "kid").to_owned();
    assert_ne!(new_kid, old_kid);

    // Both published; tokens signed before still work; new ones use the new key.
    let keys = jwks(&api).await;
    assert!(kids(&keys).contains(&old_kid), "{keys:?}");
    assert!(kids(&keys).contains(&new_kid), "{keys:?}");
    for t in [&admin, &u_token, &cc_before] {
        check(&api, t).await.expect(200);
    }
    for fresh in [admin_token(&api).await, cc_token(&api, &client).await] {
        let header = jwt_part(&fresh, 0);
        assert_eq!(header["kid"], new_kid.as_str());
        let jwk = keys.iter().find(|k| k["kid"] == new_kid.as_str()).unwrap();
        let x: [u8; 32] = b64_decode(str_of(jwk, "x")).try_into().unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&x).unwrap();
        let (signed, sig) = fresh.rsplit_once('.').unwrap();
        let sig = ed25519_dalek::Signature::from_slice(&b64_decode(sig)).unwrap();
        ed25519_dalek::Verifier::verify(&key, signed.as_bytes(), &sig)
            .expect("a new token verifies with the new key");
        check(&api, &fresh).await.expect(200);
    }

    let events = audit_until(&api, &admin, "type=signing_key.rotated&limit=500", |ev| {
        ev.iter().any(|e| e["target_id"] == new_kid.as_str())
    })
    .await;
    let e = events
        .iter()
        .find(|e| e["target_id"] == new_kid.as_str())
        .unwrap();
    assert_eq!(e["actor_username"], "admin", "{e}");
}
