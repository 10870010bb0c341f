//! `berth token`, and the access-token logic every authenticated command shares: use the stored
//! token while it has more than a minute left, else refresh it (refresh-token grant, or a new
//! client-credentials token) and store the result, all under the credentials lock so that
//! concurrent invocations rotate the refresh token exactly once.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::http::{ClientAuth, HttpClient, HttpError, TokenResponse};
use super::store::{Credentials, Store};

/// Refresh when the access token expires within this.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);
/// When the server gives no `expires_in`, assume this (short, so we refresh early rather than
/// present an expired token).
const ASSUMED_LIFETIME: Duration = Duration::from_secs(300);

pub const NOT_LOGGED_IN: &str = "not logged in; run `berth login --server URL`";
pub const SESSION_ENDED: &str = "your session has ended; run `berth login` again";

pub fn needs_refresh(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    expires_at - now <= chrono::Duration::from_std(REFRESH_MARGIN).expect("small")
}

pub fn expires_at(now: DateTime<Utc>, expires_in: Option<u64>) -> DateTime<Utc> {
    let secs = expires_in.unwrap_or(ASSUMED_LIFETIME.as_secs());
    now + chrono::Duration::seconds(secs.min(i64::MAX as u64 / 1000) as i64)
}

/// Folds a token response into the stored credentials. A refresh response without a new
/// refresh token keeps the old one (RFC 6749 §6).
pub fn apply(credentials: &mut Credentials, token: TokenResponse, now: DateTime<Utc>) {
    credentials.access_token = token.access_token;
    credentials.expires_at = expires_at(now, token.expires_in);
    if let Some(rt) = token.refresh_token {
        credentials.refresh_token = Some(rt);
    }
    if let Some(scope) = token.scope {
        credentials.scope = Some(scope);
    }
}

pub async fn run() -> anyhow::Result<()> {
    let store = Store::from_env()?;
    let credentials = valid_credentials(&store).await?;
    out!("{}", credentials.access_token)?;
    Ok(())
}

/// The stored credentials with an access token good for at least a minute more.
pub async fn valid_credentials(store: &Store) -> anyhow::Result<Credentials> {
    let locked = store.lock()?;
    // Read only now that the lock is held: another process may just have rotated the tokens.
    let Some(mut credentials) = locked.load()? else {
        anyhow::bail!(NOT_LOGGED_IN);
    };
    let now = Utc::now();
    if !needs_refresh(credentials.expires_at, now) {
        return Ok(credentials);
    }
    let client = HttpClient::new(credentials.ca_cert.as_deref())?;
    match renew(&client, &credentials).await {
        Ok(token) => {
            apply(&mut credentials, token, Utc::now());
            locked.save(&credentials)?;
            Ok(credentials)
        }
        // Can't reach the server, but what we have still works for a little while.
        Err(Renew::Http(e)) if e.is_transient() && credentials.expires_at > now => {
            eprintln!(
                "berth: warning: could not refresh the access token ({e}); it expires in {} s",
                (credentials.expires_at - now).num_seconds()
            );
            Ok(credentials)
        }
        Err(e) => Err(e.into_error(&credentials)),
    }
}

enum Renew {
    /// Nothing to renew with.
    NoGrant,
    Http(HttpError),
}

impl Renew {
    fn into_error(self, credentials: &Credentials) -> anyhow::Error {
        match self {
            Renew::NoGrant => anyhow::anyhow!(SESSION_ENDED),
            Renew::Http(e) => match (e.oauth_error(), &credentials.client_secret) {
                (Some("invalid_client" | "unauthorized_client"), Some(_)) => anyhow::Error::new(e)
                    .context(format!(
                        "{} no longer accepts client {}; it may have been revoked or have \
                         expired. Run `berth login --server {} --client-id ID --client-secret …` \
                         again",
                        credentials.server, credentials.client_id, credentials.server
                    )),
                (Some("invalid_grant" | "invalid_client" | "unauthorized_client"), _) => {
                    anyhow::Error::new(e).context(SESSION_ENDED)
                }
                _ => anyhow::Error::new(e).context("refreshing the access token"),
            },
        }
    }
}

async fn renew(client: &HttpClient, credentials: &Credentials) -> Result<TokenResponse, Renew> {
    let endpoint = &credentials.token_endpoint;
    if let Some(refresh_token) = &credentials.refresh_token {
        let auth = credentials
            .client_secret
            .as_deref()
            .map(|secret| ClientAuth {
                id: &credentials.client_id,
                secret,
            });
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ];
        if auth.is_none() {
            form.push(("client_id", &credentials.client_id));
        }
        return client
            .token(endpoint, &form, auth)
            .await
            .map_err(Renew::Http);
    }
    if let Some(secret) = &credentials.client_secret {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &credentials.scope {
            form.push(("scope", scope));
        }
        let auth = ClientAuth {
            id: &credentials.client_id,
            secret,
        };
        return client
            .token(endpoint, &form, Some(auth))
            .await
            .map_err(Renew::Http);
    }
    Err(Renew::NoGrant)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::store::tests::{sample, TempDir};

    #[test]
    fn refresh_margin() {
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let secs = chrono::Duration::seconds;
        assert!(!needs_refresh(now + secs(61), now));
        assert!(needs_refresh(now + secs(60), now));
        assert!(needs_refresh(now - secs(5), now));
    }

    #[test]
    fn apply_keeps_the_refresh_token_when_none_is_returned() {
        let now: DateTime<Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        let mut c = sample();
        let token = |rt: Option<&str>| TokenResponse {
            access_token: "new".into(),
            token_type: "Bearer".into(),
            expires_in: Some(3600),
            refresh_token: rt.map(Into::into),
            scope: None,
        };
        apply(&mut c, token(None), now);
        assert_eq!(c.access_token, "new");
        assert_eq!(c.refresh_token.as_deref(), Some("berth_rt_x"));
        assert_eq!(c.expires_at, now + chrono::Duration::seconds(3600));
        apply(&mut c, token(Some("berth_rt_y")), now);
        assert_eq!(c.refresh_token.as_deref(), Some("berth_rt_y"));
        assert_eq!(c.scope.as_deref(), Some("projects:read"));
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn fresh_tokens_are_used_without_the_network() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.0.clone());
        let err = block_on(valid_credentials(&store)).unwrap_err();
        assert_eq!(err.to_string(), NOT_LOGGED_IN);

        let mut c = sample();
        // Nothing listens here: any network use would fail the test.
        c.token_endpoint = "http://127.0.0.1:9/oauth/token".into();
        c.expires_at = Utc::now() + chrono::Duration::seconds(3600);
        store.lock().unwrap().save(&c).unwrap();
        assert_eq!(block_on(valid_credentials(&store)).unwrap(), c);
    }

    #[test]
    fn expired_without_a_grant_means_the_session_ended() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.0.clone());
        let mut c = sample();
        c.refresh_token = None;
        c.expires_at = Utc::now() - chrono::Duration::seconds(1);
        store.lock().unwrap().save(&c).unwrap();
        let err = block_on(valid_credentials(&store)).unwrap_err();
        assert_eq!(err.to_string(), SESSION_ENDED);
    }

    #[test]
    fn unreachable_server_with_an_expired_token_is_an_error() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.0.clone());
        let mut c = sample();
        c.token_endpoint = "http://127.0.0.1:9/oauth/token".into();
        c.expires_at = Utc::now() - chrono::Duration::seconds(1);
        store.lock().unwrap().save(&c).unwrap();
        let err = block_on(valid_credentials(&store)).unwrap_err();
        assert!(format!("{err:#}").contains("cannot reach"), "{err:#}");

        // Still valid for a few seconds: warn and use it.
        c.expires_at = Utc::now() + chrono::Duration::seconds(30);
        store.lock().unwrap().save(&c).unwrap();
        assert_eq!(block_on(valid_credentials(&store)).unwrap(), c);
    }
}
