//! Verification against a live (loopback) OpenID Connect issuer: a hand-written HTTP/1.1
//! server publishing a discovery document and a key set the test can change under it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_auth::jwt::SigningKey;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{Federation, FederationError, Timing};
use crate::settings::{MatchBy, TrustedIssuer};

const AUD: &str = "https://berth.test/api";

struct State {
    /// `issuer` in the discovery document; `None` for the real one.
    discovery_issuer: Option<String>,
    jwks_path: String,
    jwks: Value,
    discovery_status: u16,
}

struct TestIssuer {
    base: String,
    state: Arc<Mutex<State>>,
    jwks_hits: Arc<AtomicUsize>,
}

impl TestIssuer {
    async fn start(jwks: Value) -> TestIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            discovery_issuer: None,
            jwks_path: "/jwks".into(),
            jwks,
            discovery_status: 200,
        }));
        let jwks_hits = Arc::new(AtomicUsize::new(0));
        let (st, hits, b) = (state.clone(), jwks_hits.clone(), base.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let (st, hits, b) = (st.clone(), hits.clone(), b.clone());
                tokio::spawn(async move {
                    let mut req = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => req.extend_from_slice(&buf[..n]),
                        }
                    }
                    let req = String::from_utf8_lossy(&req);
                    let path = req.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (status, body) = route(&path, &b, &st, &hits);
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        });
        TestIssuer {
            base,
            state,
            jwks_hits,
        }
    }

    fn trusted(&self) -> TrustedIssuer {
        TrustedIssuer {
            // Configured with a trailing slash; tokens carry none.
            issuer: format!("{}/", self.base),
            audience: AUD.into(),
            user_claim: "email".into(),
            match_by: MatchBy::Email,
            create_users: false,
        }
    }

    fn set_jwks(&self, jwks: Value) {
        self.state.lock().unwrap().jwks = jwks;
    }

    fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    fn claims(&self) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "iss": self.base, "aud": [AUD, "other"], "sub": "user-1",
            "email": "ada@example.com", "exp": now + 300, "iat": now,
        })
    }
}

fn route(path: &str, base: &str, state: &Mutex<State>, hits: &AtomicUsize) -> (u16, String) {
    let s = state.lock().unwrap();
    match path {
        "/.well-known/openid-configuration" => (
            s.discovery_status,
            json!({
                "issuer": s.discovery_issuer.clone().unwrap_or_else(|| base.to_owned()),
                "jwks_uri": format!("{base}{}", s.jwks_path),
                "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            })
            .to_string(),
        ),
        "/jwks" => {
            hits.fetch_add(1, Ordering::SeqCst);
            (200, s.jwks.to_string())
        }
        "/huge" => (200, format!("\"{}\"", "x".repeat(2 * 1024 * 1024))),
        "/not-json" => (200, "<html>hello</html>".into()),
        _ => (404, "{}".into()),
    }
}

fn fast() -> Timing {
    Timing {
        refetch_interval: Duration::ZERO,
        failure_backoff: Duration::ZERO,
        ..Timing::default()
    }
}

fn jwks(keys: Vec<Value>) -> Value {
    json!({ "keys": keys })
}

fn ed(kid: &str) -> (SigningKey, Value) {
    let key = SigningKey::generate(kid.into());
    let jwk = key.verifying_key().jwk();
    (key, jwk)
}

/// A jsonwebtoken key from a DER fixture, with its public JWK under `kid`.
fn fixture(alg: Algorithm, kid: &str) -> (EncodingKey, Value) {
    let key = match alg {
        Algorithm::RS256 => EncodingKey::from_rsa_der(include_bytes!("testdata/rsa2048.pkcs1.der")),
        Algorithm::ES256 => EncodingKey::from_ec_der(include_bytes!("testdata/p256.pkcs8.der")),
        other => panic!("no fixture for {other:?}"),
    };
    let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["use"] = json!("sig");
    (key, jwk)
}

fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn tokens_from_a_live_issuer() {
    let (k1, k1_jwk) = ed("k1");
    let (rsa, rsa_jwk) = fixture(Algorithm::RS256, "rsa1");
    let (ec, ec_jwk) = fixture(Algorithm::ES256, "ec1");
    let idp = TestIssuer::start(jwks(vec![k1_jwk, rsa_jwk, ec_jwk])).await;
    let fed = Federation::new(fast());
    let t = idp.trusted();

    // Valid tokens of each key type are accepted; the keys are fetched once.
    let got = fed.verify(&k1.sign(&idp.claims()), &t).await.unwrap();
    assert_eq!(got["email"], "ada@example.com");
    let rs = sign(&rsa, Algorithm::RS256, "rsa1", &idp.claims());
    assert_eq!(fed.verify(&rs, &t).await.unwrap()["sub"], "user-1");
    let es = sign(&ec, Algorithm::ES256, "ec1", &idp.claims());
    assert_eq!(fed.verify(&es, &t).await.unwrap()["sub"], "user-1");
    assert_eq!(idp.hits(), 1);

    // Wrong audience, expired, bad signature, algorithm mismatch.
    let mut c = idp.claims();
    c["aud"] = json!("https://elsewhere.test");
    assert_eq!(
        fed.verify(&k1.sign(&c), &t).await,
        Err(FederationError::WrongAudience(AUD.into()))
    );
    let mut c = idp.claims();
    c["exp"] = json!(chrono::Utc::now().timestamp() - 120);
    assert_eq!(
        fed.verify(&k1.sign(&c), &t).await,
        Err(FederationError::Expired)
    );
    let mut c = idp.claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        fed.verify(&k1.sign(&c), &t).await,
        Err(FederationError::MissingClaim("exp"))
    );
    let forged = {
        let good = k1.sign(&idp.claims());
        let (signed, _) = good.rsplit_once('.').unwrap();
        let other = ed("k1").0.sign(&idp.claims());
        format!("{signed}.{}", other.rsplit_once('.').unwrap().1)
    };
    assert_eq!(
        fed.verify(&forged, &t).await,
        Err(FederationError::Signature)
    );
    // An RSA signature presented as coming from the Ed25519 key (whose JWK says EdDSA).
    let confused = sign(&rsa, Algorithm::RS256, "k1", &idp.claims());
    assert_eq!(
        fed.verify(&confused, &t).await,
        Err(FederationError::KeyAlgorithm("RS256".into()))
    );
    // A token from another issuer checked against this one.
    let mut c = idp.claims();
    c["iss"] = json!("https://evil.example");
    assert!(matches!(
        fed.verify(&k1.sign(&c), &t).await,
        Err(FederationError::WrongIssuer(_))
    ));
    assert_eq!(idp.hits(), 1, "no refetch for tokens whose key is known");

    // An unknown kid: the key set is refetched once, then the token is refused.
    let (stranger, _) = ed("k9");
    assert_eq!(
        fed.verify(&stranger.sign(&idp.claims()), &t).await,
        Err(FederationError::UnknownKey)
    );
    assert_eq!(idp.hits(), 2);

    // The issuer rotates to a new key: picked up by the refetch its unknown kid triggers.
    let (k2, k2_jwk) = ed("k2");
    idp.set_jwks(jwks(vec![k2_jwk]));
    fed.verify(&k2.sign(&idp.claims()), &t).await.unwrap();
    assert_eq!(idp.hits(), 3);
    fed.verify(&k2.sign(&idp.claims()), &t).await.unwrap();
    assert_eq!(idp.hits(), 3, "the rotated keys are cached");
    // The retired key is gone from the issuer, and so from Berth.
    assert_eq!(
        fed.verify(&k1.sign(&idp.claims()), &t).await,
        Err(FederationError::UnknownKey)
    );
}

#[tokio::test]
async fn refetching_for_unknown_kids_is_rate_limited() {
    let (k1, k1_jwk) = ed("k1");
    let idp = TestIssuer::start(jwks(vec![k1_jwk.clone()])).await;
    let fed = Federation::new(Timing {
        refetch_interval: Duration::from_secs(3600),
        ..Timing::default()
    });
    let t = idp.trusted();
    fed.verify(&k1.sign(&idp.claims()), &t).await.unwrap();
    assert_eq!(idp.hits(), 1);
    let (k2, k2_jwk) = ed("k2");
    idp.set_jwks(jwks(vec![k1_jwk, k2_jwk]));
    for _ in 0..5 {
        assert_eq!(
            fed.verify(&k2.sign(&idp.claims()), &t).await,
            Err(FederationError::UnknownKey)
        );
    }
    assert_eq!(idp.hits(), 1, "keys were fetched too recently to refetch");
}

#[tokio::test]
async fn concurrent_first_uses_share_one_fetch() {
    let (k1, k1_jwk) = ed("k1");
    let idp = TestIssuer::start(jwks(vec![k1_jwk])).await;
    let fed = Arc::new(Federation::new(Timing::default()));
    let t = idp.trusted();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (fed, t, token) = (fed.clone(), t.clone(), k1.sign(&idp.claims()));
            tokio::spawn(async move { fed.verify(&token, &t).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(idp.hits(), 1);
}

fn fetch_reason(r: Result<super::verify::Claims, FederationError>) -> String {
    match r {
        Err(FederationError::Fetch { reason, .. }) => reason,
        other => panic!("expected a fetch error, got {other:?}"),
    }
}

#[tokio::test]
async fn what_the_issuer_publishes_is_checked() {
    let (k1, k1_jwk) = ed("k1");
    let idp = TestIssuer::start(jwks(vec![k1_jwk.clone()])).await;
    let t = idp.trusted();
    let token = k1.sign(&idp.claims());

    idp.state.lock().unwrap().discovery_issuer = Some("https://impostor.example".into());
    let reason = fetch_reason(Federation::new(fast()).verify(&token, &t).await);
    assert!(
        reason.contains("names issuer `https://impostor.example`"),
        "{reason}"
    );
    idp.state.lock().unwrap().discovery_issuer = None;

    for (path, expect) in [
        ("/huge", "larger than"),
        ("/not-json", "not JSON"),
        ("/missing", "HTTP 404"),
    ] {
        idp.state.lock().unwrap().jwks_path = path.into();
        let reason = fetch_reason(Federation::new(fast()).verify(&token, &t).await);
        assert!(reason.contains(expect), "{path}: {reason}");
    }
    idp.state.lock().unwrap().jwks_path = "/jwks".into();

    idp.set_jwks(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "alg": "HS256", "kid": "k1"}]}));
    let reason = fetch_reason(Federation::new(fast()).verify(&token, &t).await);
    assert!(reason.contains("no usable signature keys"), "{reason}");
    idp.set_jwks(jwks(vec![k1_jwk]));

    // Once keys are cached, a failing refresh keeps the last good keys in use.
    let fed = Federation::new(Timing {
        cache_ttl: Duration::ZERO,
        ..fast()
    });
    fed.verify(&token, &t).await.unwrap();
    idp.state.lock().unwrap().discovery_status = 500;
    fed.verify(&token, &t).await.unwrap();
    // ...but not for ever.
    let fed = Federation::new(Timing {
        cache_ttl: Duration::ZERO,
        max_stale: Duration::ZERO,
        ..fast()
    });
    idp.state.lock().unwrap().discovery_status = 200;
    fed.verify(&token, &t).await.unwrap();
    idp.state.lock().unwrap().discovery_status = 500;
    let reason = fetch_reason(fed.verify(&token, &t).await);
    assert!(reason.contains("HTTP 500"), "{reason}");
}

#[tokio::test]
async fn unreachable_issuers_fail_cleanly() {
    // Bind then drop a listener, so the port is (almost certainly) closed.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (k1, _) = ed("k1");
    let trusted = TrustedIssuer {
        issuer: format!("http://127.0.0.1:{port}"),
        audience: AUD.into(),
        user_claim: "email".into(),
        match_by: MatchBy::Email,
        create_users: false,
    };
    let mut claims =
        json!({"iss": trusted.issuer, "aud": AUD, "exp": chrono::Utc::now().timestamp() + 60});
    let fed = Federation::new(Timing::default());
    let err = fed.verify(&k1.sign(&claims), &trusted).await.unwrap_err();
    let FederationError::Fetch { reason, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("could not connect"), "{reason}");
    let description = crate::AppError::from(err).to_string();
    assert!(
        description.contains("could not obtain the signing keys"),
        "{description}"
    );

    // Not an http(s) issuer: nothing is fetched.
    let file = TrustedIssuer {
        issuer: "file:///etc".into(),
        ..trusted
    };
    claims["iss"] = json!("file:///etc");
    let reason = fetch_reason(fed.verify(&k1.sign(&claims), &file).await);
    assert!(reason.contains("not an http(s) URL"), "{reason}");
}
