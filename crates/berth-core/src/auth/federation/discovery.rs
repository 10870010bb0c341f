//! Fetching what an issuer publishes — `{issuer}/.well-known/openid-configuration`, then the
//! key set its `jwks_uri` names — and caching it per issuer.
//!
//! Keys are reused for [`Timing::cache_ttl`]; a token whose `kid` is unknown triggers one
//! refetch of the key set (the issuer may have rotated), at most once per
//! [`Timing::refetch_interval`] per issuer so that garbage tokens cannot make Berth hammer the
//! issuer. When a refresh fails, the last good keys stay in use for up to
//! [`Timing::max_stale`] (and the failure is logged); failures are remembered for
//! [`Timing::failure_backoff`] before the issuer is asked again. Fetches for
//! one issuer are serialised, so a burst of exchanges causes one fetch, not many.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{redirect, Url};
use serde_json::Value;

use super::keys::{parse_jwks, PublicKey};
use super::verify::{verify_token, Claims, Jws};
use super::{normalize_issuer, FederationError};
use crate::settings::TrustedIssuer;

#[derive(Debug, Clone)]
pub(crate) struct Timing {
    /// How long discovery and keys are reused before they are fetched again.
    pub cache_ttl: Duration,
    /// Minimum time between two fetches of one issuer's key set for unknown `kid`s.
    pub refetch_interval: Duration,
    /// How long past `cache_ttl` the last good keys stay in use while the issuer cannot be
    /// reached; after that its tokens are refused until it answers again.
    pub max_stale: Duration,
    /// How long a failed fetch is remembered (and answered from memory) when no keys are cached.
    pub failure_backoff: Duration,
    /// Per HTTP request, connection to last byte.
    pub http_timeout: Duration,
    /// Largest discovery document or key set accepted.
    pub max_body_bytes: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            cache_ttl: Duration::from_secs(600),
            refetch_interval: Duration::from_secs(30),
            max_stale: Duration::from_secs(3600),
            failure_backoff: Duration::from_secs(5),
            http_timeout: Duration::from_secs(5),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Verifies external tokens, holding each trusted issuer's keys.
pub(crate) struct Federation {
    http: reqwest::Client,
    timing: Timing,
    issuers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
}

/// What is known about one issuer. Behind an async mutex held across fetches, which is what
/// makes concurrent requests share one fetch.
#[derive(Default)]
struct Slot {
    jwks_uri: Option<Url>,
    keys: Option<Arc<Vec<PublicKey>>>,
    discovered_at: Option<Instant>,
    jwks_fetched_at: Option<Instant>,
    failure: Option<(Instant, String)>,
}

impl Federation {
    pub fn new(timing: Timing) -> Federation {
        let http = reqwest::Client::builder()
            .timeout(timing.http_timeout)
            .connect_timeout(timing.http_timeout)
            // No idle connections: fetches are rare, and a pooled connection would be tied to
            // the Tokio runtime that opened it.
            .pool_max_idle_per_host(0)
            .redirect(redirect::Policy::custom(|attempt| {
                let downgrade = attempt.url().scheme() != "https"
                    && attempt.previous().iter().any(|u| u.scheme() == "https");
                if attempt.previous().len() > 3 {
                    attempt.error("too many redirects")
                } else if downgrade {
                    attempt.error("redirected from https to http")
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("an HTTP client with static settings builds");
        Federation {
            http,
            timing,
            issuers: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies `token` as one issued by `trusted`, fetching or refreshing its keys as needed.
    pub async fn verify(
        &self,
        token: &str,
        trusted: &TrustedIssuer,
    ) -> Result<Claims, FederationError> {
        // Reject what is not even a token with an accepted algorithm before any network I/O.
        Jws::parse(token)?;
        let keys = self.keys(trusted, false).await?;
        match verify_token(token, &keys, trusted, now()) {
            Err(FederationError::UnknownKey) => {
                let fresh = self.keys(trusted, true).await?;
                verify_token(token, &fresh, trusted, now())
            }
            other => other,
        }
    }

    fn slot(&self, issuer: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut issuers = self.issuers.lock().unwrap_or_else(|e| e.into_inner());
        issuers.entry(issuer.to_owned()).or_default().clone()
    }

    /// The issuer's keys: cached, rediscovered when stale, and — with `unknown_kid` — refetched
    /// if the rate limit allows.
    async fn keys(
        &self,
        trusted: &TrustedIssuer,
        unknown_kid: bool,
    ) -> Result<Arc<Vec<PublicKey>>, FederationError> {
        let issuer = normalize_issuer(&trusted.issuer);
        let slot = self.slot(issuer);
        let mut s = slot.lock().await;
        let now = Instant::now();
        let fresh = s
            .discovered_at
            .is_some_and(|t| now.duration_since(t) < self.timing.cache_ttl);
        if !fresh {
            let backing_off = s
                .failure
                .as_ref()
                .is_some_and(|(at, _)| now.duration_since(*at) < self.timing.failure_backoff);
            if !backing_off {
                match self.discover(issuer).await {
                    Ok((jwks_uri, keys)) => {
                        s.jwks_uri = Some(jwks_uri);
                        s.keys = Some(Arc::new(keys));
                        s.discovered_at = Some(now);
                        s.jwks_fetched_at = Some(now);
                        s.failure = None;
                    }
                    Err(reason) => {
                        let too_stale = s.discovered_at.is_none_or(|t| {
                            now.duration_since(t) >= self.timing.cache_ttl + self.timing.max_stale
                        });
                        if too_stale {
                            s.keys = None;
                        }
                        tracing::warn!(
                            issuer,
                            %reason,
                            stale_keys_in_use = s.keys.is_some(),
                            "could not fetch a trusted issuer's discovery document or keys"
                        );
                        s.failure = Some((now, reason));
                    }
                }
            }
        } else if unknown_kid {
            let allowed = s
                .jwks_fetched_at
                .is_none_or(|t| now.duration_since(t) >= self.timing.refetch_interval);
            if let (true, Some(uri)) = (allowed, s.jwks_uri.clone()) {
                s.jwks_fetched_at = Some(now);
                match self.fetch_jwks(&uri).await {
                    Ok(keys) => {
                        tracing::info!(
                            issuer,
                            "refetched a trusted issuer's keys for an unknown kid"
                        );
                        s.keys = Some(Arc::new(keys));
                    }
                    Err(reason) => tracing::warn!(
                        issuer,
                        %reason,
                        "could not refetch a trusted issuer's keys"
                    ),
                }
            } else {
                tracing::debug!(
                    issuer,
                    "unknown kid; keys were fetched too recently to refetch"
                );
            }
        }
        match &s.keys {
            Some(keys) => Ok(keys.clone()),
            None => Err(FederationError::Fetch {
                issuer: issuer.to_owned(),
                reason: s
                    .failure
                    .as_ref()
                    .map_or_else(|| "unavailable".to_owned(), |(_, r)| r.clone()),
            }),
        }
    }

    /// The discovery document's `jwks_uri` and the keys found there.
    async fn discover(&self, issuer: &str) -> Result<(Url, Vec<PublicKey>), String> {
        let base = http_url(issuer).map_err(|e| format!("the issuer URL {e}"))?;
        let url = http_url(&format!("{issuer}/.well-known/openid-configuration"))
            .map_err(|e| format!("the discovery URL {e}"))?;
        let doc = self
            .get_json(&url)
            .await
            .map_err(|e| format!("discovery document {url}: {e}"))?;
        let named = doc
            .get("issuer")
            .and_then(Value::as_str)
            .ok_or("the discovery document names no issuer")?;
        if normalize_issuer(named) != issuer {
            return Err(format!(
                "the discovery document names issuer `{}`",
                named.chars().take(256).collect::<String>()
            ));
        }
        let jwks_uri = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or("the discovery document has no jwks_uri")?;
        let jwks_uri = http_url(jwks_uri).map_err(|e| format!("jwks_uri {e}"))?;
        if base.scheme() == "https" && jwks_uri.scheme() != "https" {
            return Err("jwks_uri is not https although the issuer is".into());
        }
        let keys = self.fetch_jwks(&jwks_uri).await?;
        Ok((jwks_uri, keys))
    }

    async fn fetch_jwks(&self, url: &Url) -> Result<Vec<PublicKey>, String> {
        let doc = self
            .get_json(url)
            .await
            .map_err(|e| format!("key set {url}: {e}"))?;
        parse_jwks(&doc).map_err(|e| format!("key set {url}: {e}"))
    }

    /// GETs a JSON document of bounded size.
    async fn get_json(&self, url: &Url) -> Result<Value, String> {
        let max = self.timing.max_body_bytes;
        let mut response = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(describe)?;
        if !response.status().is_success() {
            return Err(format!("answered HTTP {}", response.status().as_u16()));
        }
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(format!("response is larger than {max} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > max {
                return Err(format!("response is larger than {max} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|_| "response is not JSON".to_owned())
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `s` as an http(s) URL without credentials, or what is wrong with it.
pub(crate) fn http_url(s: &str) -> Result<Url, &'static str> {
    let url = Url::parse(s).map_err(|_| "is not a valid URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("is not an http(s) URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    Ok(url)
}

fn describe(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else if e.is_redirect() {
        "unacceptable redirect".into()
    } else {
        e.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_are_fetched() {
        assert!(http_url("https://idp.example/realms/x").is_ok());
        assert!(http_url("http://127.0.0.1:8080").is_ok());
        for bad in [
            "file:///etc/passwd",
            "ftp://idp.example",
            "idp.example",
            "https://user:pw@idp.example",
            "data:text/plain,hi",
            "",
        ] {
            assert!(http_url(bad).is_err(), "{bad}");
        }
    }
}
