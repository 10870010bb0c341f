//! OAuth helpers: API clients, the token endpoint, the device flow driven through the activation
//! page's forms, the audit log, and two servers with OAuth settings of their own, started on
//! first use and shared like [`shared`]:
//!
//! - [`fast`]: device polling every second, and external OpenID Connect issuers it trusts, all
//!   served by [`idp`] — a small issuer this process runs on loopback (discovery document and
//!   JWKS, Ed25519 keys it can rotate), never anything on the internet.
//! - [`short`]: short lifetimes and low limits (device codes, refresh grace, OAuth refresh
//!   tokens, token endpoint rates), for the tests that watch things run out.

use std::collections::HashMap;

use berth_auth::jwt::SigningKey;

use super::*;

pub const CLI_CLIENT: &str = "berth-cli";
pub const GRANT_DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TOKEN_TYPE_ID: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8628 §6.1: the user-code alphabet (no vowels, no look-alikes).
pub const USER_CODE_ALPHABET: &str = "BCDFGHJKLMNPQRSTVWXZ";

// ---------------------------------------------------------------------------------------------
// Servers with OAuth settings of their own
// ---------------------------------------------------------------------------------------------

/// Audiences the trusted issuers' tokens must carry.
pub const AUD_A: &str = "berth-it-audience-a";
pub const AUD_B: &str = "berth-it-audience-b";
pub const AUD_R: &str = "berth-it-audience-r";

static FAST: OnceLock<Result<Server, String>> = OnceLock::new();

/// Device polling every second; trusts three issuers of [`idp`]:
/// `idp-a` (users matched by `email`, none created), `idp-b` (by `preferred_username` as the
/// username, created on first use) and `idp-r` (like `idp-a`, for key-rotation tests).
/// `idp-x` is served too but not trusted.
pub fn fast() -> &'static Server {
    static_server(&FAST, "fast", || {
        let idp = idp();
        format!(
            r#"{base}
[auth.oauth]
device_poll_interval_secs = 1

[[auth.oauth.trusted_issuers]]
issuer = "{a}"
audience = "{AUD_A}"
user_claim = "email"
match_by = "email"
create_users = false

[[auth.oauth.trusted_issuers]]
issuer = "{b}"
audience = "{AUD_B}"
user_claim = "preferred_username"
match_by = "username"
create_users = true

[[auth.oauth.trusted_issuers]]
issuer = "{r}"
audience = "{AUD_R}"
"#,
            base = base_config(),
            a = idp.issuer("idp-a"),
            b = idp.issuer("idp-b"),
            r = idp.issuer("idp-r"),
        )
    })
}

pub const SHORT_DEVICE_CODE_TTL_SECS: u64 = 3;
pub const SHORT_REFRESH_GRACE_SECS: u64 = 1;
pub const SHORT_OAUTH_REFRESH_TTL_SECS: u64 = 2;
pub const SHORT_OAUTH_FAMILY_LIFETIME_SECS: u64 = 4;
pub const SHORT_PER_CLIENT_RATE: u64 = 2;
pub const SHORT_PER_IP_RATE: u64 = 5;

static SHORT: OnceLock<Result<Server, String>> = OnceLock::new();

/// Short device codes, refresh grace, OAuth refresh tokens and token families; low token
/// endpoint rates (bursts of twice the rate). Tests hammering the endpoint use loopback addresses of their own.
pub fn short() -> &'static Server {
    static_server(&SHORT, "short", short_config)
}

/// The `short` server's configuration (also for servers of one test's own that move their
/// clock past these lifetimes).
pub fn short_config() -> String {
    format!(
        r#"{base}
[auth.oauth]
device_code_ttl_secs = {SHORT_DEVICE_CODE_TTL_SECS}
refresh_grace_secs = {SHORT_REFRESH_GRACE_SECS}
refresh_token_ttl_secs = {SHORT_OAUTH_REFRESH_TTL_SECS}
refresh_family_lifetime_secs = {SHORT_OAUTH_FAMILY_LIFETIME_SECS}
token_requests_per_second_per_client = {SHORT_PER_CLIENT_RATE}.0
token_requests_per_second_per_ip = {SHORT_PER_IP_RATE}.0
"#,
        base = base_config()
    )
}

// ---------------------------------------------------------------------------------------------
// Small things
// ---------------------------------------------------------------------------------------------

/// `days` from now as RFC 3339.
pub fn in_days(days: i64) -> String {
    rfc3339(now_unix() + days * 86_400)
}

/// `Basic base64(id:secret)` as `curl -u id:secret` sends it.
pub fn basic(id: &str, secret: &str) -> String {
    use base64::engine::general_purpose::STANDARD;
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

pub fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("`{key}` is not a string in {v}"))
}

impl Resp {
    /// RFC 6749 §5.2: the status, a body of exactly `{"error", "error_description"}` with this
    /// code, and `Cache-Control: no-store`.
    #[track_caller]
    pub fn expect_oauth_error(&self, status: u16, code: &str) -> &Self {
        self.expect(status);
        let keys: Vec<&str> = self
            .json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["error", "error_description"],
            "not an RFC 6749 error body; response: {self:#?}"
        );
        assert_eq!(self.json["error"], code, "response: {self:#?}");
        assert!(
            self.json["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "empty error_description; response: {self:#?}"
        );
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "response: {self:#?}"
        );
        if status == 401 {
            let challenge = self.header("www-authenticate").unwrap_or_default();
            assert!(
                challenge.to_ascii_lowercase().starts_with("basic"),
                "401 without a Basic challenge; response: {self:#?}"
            );
        }
        self
    }

    /// A successful token response: 200, `no-store`, a Bearer token.
    #[track_caller]
    pub fn expect_token(&self) -> &Value {
        self.expect(200);
        assert_eq!(
            self.header("cache-control"),
            Some("no-store"),
            "response: {self:#?}"
        );
        assert_eq!(self.json["token_type"], "Bearer", "response: {self:#?}");
        assert!(
            self.json["access_token"]
                .as_str()
                .is_some_and(|t| t.split('.').count() == 3),
            "response: {self:#?}"
        );
        &self.json
    }
}

/// `GET /api/v1/auth/check` with `token`: the status and body.
pub async fn check(api: &Api, token: &str) -> Resp {
    send(api.get("/api/v1/auth/check").bearer_auth(token)).await
}

// ---------------------------------------------------------------------------------------------
// API clients and the token endpoint
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct ApiClient {
    pub client_id: String,
    pub secret: String,
    /// The creation response.
    pub json: Value,
}

/// Creates an API client as the holder of `token` (expiring in 30 days).
pub async fn new_client(api: &Api, token: &str, scopes: Option<&[&str]>) -> ApiClient {
    let mut body = json!({"name": unique("client"), "expires_at": in_days(30)});
    if let Some(s) = scopes {
        body["scopes"] = json!(s);
    }
    client_from(api, token, &body).await
}

/// Creates an API client from a full request body (must succeed).
pub async fn client_from(api: &Api, token: &str, body: &Value) -> ApiClient {
    let r = send(
        api.post_json("/api/v1/auth/clients", body)
            .bearer_auth(token),
    )
    .await;
    r.expect(201);
    ApiClient {
        client_id: str_of(&r.json, "client_id").to_owned(),
        secret: str_of(&r.json, "client_secret").to_owned(),
        json: r.json.clone(),
    }
}

/// `POST /oauth/token` with `form`.
pub async fn token_form(api: &Api, form: &[(&str, &str)]) -> Resp {
    send(api.post("/oauth/token").form(form)).await
}

/// `POST /oauth/token` with `form` and the client's credentials as HTTP Basic.
pub async fn token_basic(api: &Api, client: &ApiClient, form: &[(&str, &str)]) -> Resp {
    send(
        api.post("/oauth/token")
            .header("authorization", basic(&client.client_id, &client.secret))
            .form(form),
    )
    .await
}

/// A `client_credentials` token for `client` (must succeed).
pub async fn cc_token(api: &Api, client: &ApiClient) -> String {
    let r = token_basic(api, client, &[("grant_type", "client_credentials")]).await;
    str_of(r.expect_token(), "access_token").to_owned()
}

/// `POST /oauth/token` refreshing `refresh_token` as the CLI's public client.
pub async fn refresh_as_cli(api: &Api, refresh_token: &str) -> Resp {
    token_form(
        api,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLI_CLIENT),
        ],
    )
    .await
}

/// `POST /oauth/introspect` authenticated as `client` (HTTP Basic).
pub async fn introspect(api: &Api, client: &ApiClient, token: &str) -> Resp {
    let r = send(
        api.post("/oauth/introspect")
            .header("authorization", basic(&client.client_id, &client.secret))
            .form(&[("token", token)]),
    )
    .await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:#?}");
    r
}

/// Asserts that introspection says `token` is inactive, and nothing more (RFC 7662 §2.2).
#[track_caller]
pub fn assert_inactive(r: &Resp, what: &str) {
    assert_eq!(r.json, json!({"active": false}), "{what}: {r:#?}");
}

// ---------------------------------------------------------------------------------------------
// The device flow
// ---------------------------------------------------------------------------------------------

/// `POST /oauth/device/code` as the CLI (must succeed).
pub async fn device_code(api: &Api, scope: Option<&str>) -> Value {
    let mut form = vec![("client_id", CLI_CLIENT)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r = send(api.post("/oauth/device/code").form(&form)).await;
    r.expect(200);
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:#?}");
    r.json.clone()
}

/// One poll of the token endpoint with a device code, as the CLI.
pub async fn poll(api: &Api, device_code: &str) -> Resp {
    token_form(
        api,
        &[
            ("grant_type", GRANT_DEVICE),
            ("device_code", device_code),
            ("client_id", CLI_CLIENT),
        ],
    )
    .await
}

/// The `value` of the `<input>` named `name` in an HTML page.
pub fn html_input(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!(r#"name="{name}""#))?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let v = tag.find(r#"value=""#)? + r#"value=""#.len();
    let len = tag[v..].find('"')?;
    Some(tag[v..v + len].to_owned())
}

/// The activation page for `user_code` as the holder of the session `cookie` sees it.
pub async fn activation_page(api: &Api, cookie: &str, user_code: &str) -> Resp {
    send(
        api.get("/activate")
            .query(&[("user_code", user_code)])
            .session(cookie),
    )
    .await
}

/// Confirms or denies `user_code` through the page's form, as a browser would: the form token
/// from the confirmation page, and this server's `Origin`.
pub async fn decide(api: &Api, cookie: &str, user_code: &str, approve: bool) -> Resp {
    let page = activation_page(api, cookie, user_code).await;
    page.expect(200);
    let csrf = html_input(&page.text, "csrf").expect("the confirmation page has a form token");
    let code = html_input(&page.text, "user_code").expect("the form names the code");
    send(
        api.post("/activate/decision")
            .session(cookie)
            .origin(&api.base)
            .form(&[
                ("csrf", csrf.as_str()),
                ("user_code", code.as_str()),
                ("decision", if approve { "approve" } else { "deny" }),
            ]),
    )
    .await
}

/// The whole device flow for `user`: a code, approval on the page, one poll. The token
/// response.
pub async fn device_tokens(api: &Api, user: &TestUser, scope: Option<&str>) -> Value {
    let d = device_code(api, scope).await;
    let cookie = session_of(api, &user.username, &user.password).await;
    decide(api, &cookie, str_of(&d, "user_code"), true)
        .await
        .expect(200);
    let r = poll(api, str_of(&d, "device_code")).await;
    r.expect_token().clone()
}

// ---------------------------------------------------------------------------------------------
// The audit log
// ---------------------------------------------------------------------------------------------

/// `GET /api/v1/audit-events?{query}` as the holder of `token`.
pub async fn audit(api: &Api, token: &str, query: &str) -> Resp {
    send(
        api.get(&format!("/api/v1/audit-events?{query}"))
            .bearer_auth(token),
    )
    .await
}

/// Events are written in batches by a background task: polls (up to 15 s) until `done` holds
/// for the results of `query`, and returns them.
pub async fn audit_until(
    api: &Api,
    token: &str,
    query: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = audit(api, token, query).await;
        r.expect(200);
        let results = r.json["results"].as_array().cloned().unwrap_or_default();
        if done(&results) {
            return results;
        }
        if Instant::now() > deadline {
            panic!("the audit log never satisfied the condition for {query}: {results:#?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether `events` has one of type `kind`.
pub fn has_event(events: &[Value], kind: &str) -> bool {
    events.iter().any(|e| e["event_type"] == kind)
}

// ---------------------------------------------------------------------------------------------
// A small OpenID Connect issuer on loopback
// ---------------------------------------------------------------------------------------------

/// Issuers served (under `/<name>`), each with its own Ed25519 keys.
pub const IDP_NAMES: [&str; 4] = ["idp-a", "idp-b", "idp-r", "idp-x"];

/// An OpenID Connect issuer as far as token verification needs one: for each name,
/// `/<name>/.well-known/openid-configuration` and the JWKS it names, `/<name>/jwks`.
pub struct Idp {
    pub base: String,
    keys: Mutex<HashMap<String, Vec<SigningKey>>>,
    hits: Mutex<HashMap<String, usize>>,
}

static IDP: OnceLock<Idp> = OnceLock::new();

/// The process's issuer, started on first use (a thread that serves until the process ends).
pub fn idp() -> &'static Idp {
    IDP.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let keys = IDP_NAMES
            .iter()
            .map(|n| (n.to_string(), vec![SigningKey::generate(format!("{n}-1"))]))
            .collect();
        std::thread::Builder::new()
            .name("test-oidc-issuer".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    std::thread::spawn(move || serve_idp(stream));
                }
            })
            .unwrap();
        Idp {
            base,
            keys: Mutex::new(keys),
            hits: Mutex::default(),
        }
    })
}

impl Idp {
    pub fn issuer(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// The newest published key of `name`.
    pub fn key(&self, name: &str) -> SigningKey {
        self.keys.lock().unwrap()[name].last().unwrap().clone()
    }

    /// Publishes another key for `name` (a key rotation at the issuer).
    pub fn publish(&self, name: &str, key: SigningKey) {
        self.keys.lock().unwrap().get_mut(name).unwrap().push(key);
    }

    /// Signs `claims` with the newest key of `name`.
    pub fn sign(&self, name: &str, claims: &Value) -> String {
        self.key(name).sign(claims)
    }

    /// How often `path` was requested.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    fn respond(&self, path: &str) -> Option<Value> {
        *self
            .hits
            .lock()
            .unwrap()
            .entry(path.to_owned())
            .or_default() += 1;
        let (name, rest) = path.trim_start_matches('/').split_once('/')?;
        let keys = self.keys.lock().unwrap().get(name)?.clone();
        let issuer = self.issuer(name);
        match rest {
            ".well-known/openid-configuration" => Some(json!({
                "issuer": issuer,
                "jwks_uri": format!("{issuer}/jwks"),
                "authorization_endpoint": format!("{issuer}/authorize"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["EdDSA"],
            })),
            "jwks" => Some(json!({
                "keys": keys.iter().map(|k| k.verifying_key().jwk()).collect::<Vec<_>>()
            })),
            _ => None,
        }
    }
}

fn serve_idp(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65_536 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let (status, body) = match idp().respond(&path) {
        Some(doc) => ("200 OK", doc.to_string()),
        None => ("404 Not Found", r#"{"error":"not found"}"#.to_owned()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Claims of an ID token from issuer `name` of [`idp`] for `aud`, valid for an hour; `extra`
/// adds or replaces claims.
pub fn id_claims(name: &str, aud: &str, extra: Value) -> Value {
    let now = now_unix();
    let mut claims = json!({
        "iss": idp().issuer(name),
        "aud": aud,
        "sub": unique("subject"),
        "iat": now,
        "exp": now + 3600,
    });
    for (k, v) in extra.as_object().expect("extra claims object") {
        claims[k] = v.clone();
    }
    claims
}
