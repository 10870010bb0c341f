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
        }
    }
}
