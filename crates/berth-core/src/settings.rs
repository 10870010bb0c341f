//! Knobs of the authentication system, with the documented defaults.

use std::time::Duration;

use berth_auth::password::HashParams;

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `iss` of every token: the public base URL.
    pub issuer: String,
    /// `aud` of access tokens for Berth's own API.
    pub audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Absolute lifetime of a token family, however often it is refreshed.
    pub token_family_lifetime: Duration,
    pub session_ttl: Duration,
    pub password_hash: HashParams,
    pub hash_concurrency: usize,
    pub hash_queue_timeout: Duration,
    pub throttle: ThrottleSettings,
    pub oauth: OAuthSettings,
    /// Audit events older than this many days are deleted (0: kept forever).
    pub audit_retention_days: u64,
}

/// Failed sign-ins allowed per window before further attempts get 429.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleSettings {
    pub max_failures_per_account: i32,
    pub max_failures_per_ip: i32,
    pub window_secs: i64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            max_failures_per_account: 10,
            max_failures_per_ip: 100,
            window_secs: 900,
        }
    }
}

impl AuthSettings {
    pub fn new(public_url: &str) -> Self {
        let issuer = public_url.trim_end_matches('/').to_owned();
        AuthSettings {
            audience: format!("{issuer}/api"),
            issuer,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(24 * 3600),
            token_family_lifetime: Duration::from_secs(30 * 24 * 3600),
            session_ttl: Duration::from_secs(12 * 3600),
            password_hash: HashParams::default(),
            hash_concurrency: std::thread::available_parallelism()
                .map_or(1, |n| (n.get() / 2).max(1)),
            hash_queue_timeout: Duration::from_secs(10),
            throttle: ThrottleSettings::default(),
            oauth: OAuthSettings::default(),
            audit_retention_days: 365,
        }
    }
}

/// The OAuth authorization server's knobs (`[auth.oauth]` in the config file).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthSettings {
    /// Lifetime of tokens from `client_credentials` and of device-flow access tokens.
    pub access_token_ttl_secs: u64,
    /// Lifetime of each refresh token issued at `/oauth/token`.
    pub refresh_token_ttl_secs: u64,
    /// Absolute lifetime of an OAuth token family, however often it is refreshed.
    pub refresh_family_lifetime_secs: u64,
    /// How long after a rotation the old refresh token may be retried once (returning the same
    /// new token) instead of counting as reuse.
    pub refresh_grace_secs: u64,
    pub device_code_ttl_secs: u64,
    pub device_poll_interval_secs: u64,
    /// Lifetime of the access token a user token is exchanged for.
    pub user_token_session_ttl_secs: u64,
    /// Token endpoint requests allowed per second per client (bursts of twice that).
    pub token_requests_per_second_per_client: f64,
    /// Token endpoint requests allowed per second per client address (bursts of twice that).
    pub token_requests_per_second_per_ip: f64,
    /// Unknown device codes a client address may present per minute before it gets 429.
    pub unknown_device_codes_per_minute: u32,
    /// Rotate the signing key when it is older than this many days (0: only by hand).
    pub signing_key_rotation_days: u64,
    /// Audiences other than Berth's own API that token exchange may issue tokens for.
    pub additional_audiences: Vec<String>,
    /// External OpenID Connect issuers whose tokens may be exchanged for Berth tokens.
    pub trusted_issuers: Vec<TrustedIssuer>,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            refresh_family_lifetime_secs: 90 * 24 * 3600,
            refresh_grace_secs: 10,
            device_code_ttl_secs: 900,
            device_poll_interval_secs: 5,
            user_token_session_ttl_secs: 24 * 3600,
            token_requests_per_second_per_client: 20.0,
            token_requests_per_second_per_ip: 50.0,
            unknown_device_codes_per_minute: 10,
            signing_key_rotation_days: 90,
            additional_audiences: Vec::new(),
            trusted_issuers: Vec::new(),
        }
    }
}

/// An external OpenID Connect issuer trusted for token exchange.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    /// The issuer URL (`iss`); its `/.well-known/openid-configuration` names the JWKS.
    pub issuer: String,
    /// The `aud` its tokens must carry.
    pub audience: String,
    /// The claim naming the user (default `email`).
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// Whether that claim is matched against Berth users' `email` or `username`.
    #[serde(default = "default_match_by")]
    pub match_by: MatchBy,
    /// Create a Berth user on first exchange when none matches.
    #[serde(default)]
    pub create_users: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchBy {
    Email,
    Username,
}

fn default_user_claim() -> String {
    "email".into()
}

fn default_match_by() -> MatchBy {
    MatchBy::Email
}
