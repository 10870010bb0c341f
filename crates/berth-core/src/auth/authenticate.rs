//! Turning a presented credential into a [`Principal`]: access tokens (JWT), API keys and
//! browser session cookies. Results are cached briefly (see `cache`); revocations evict them
//! on every replica through LISTEN/NOTIFY.

use std::time::Duration;

use berth_auth::jwt::{self, AccessClaims};
use berth_auth::secret::{self, SecretKind};
use berth_store::identity::users::UserRow;
use berth_types::AuthMethod;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::authz::principal::parse_scopes;
use crate::{App, AppError, AuthFailure, Principal};

/// A credential as presented, before it is checked.
#[derive(Debug, Clone)]
pub enum Credential {
    /// `Authorization: Bearer <token>` or a bare `Authorization: <token>`.
    Bearer(String),
    /// `Authorization: Api-Key <key>`.
    ApiKey(String),
    /// The session cookie.
    Session(String),
}

fn fail(f: AuthFailure) -> AppError {
    AppError::Unauthenticated(f)
}

impl App {
    pub async fn authenticate(&self, credential: &Credential) -> Result<Principal, AppError> {
        let presented = match credential {
            Credential::Bearer(s) | Credential::ApiKey(s) | Credential::Session(s) => s.as_str(),
        };
        let key = berth_auth::sha256(presented.as_bytes());
        let now = self.now().timestamp();
        if let Some(entry) = self
            .inner
            .cache
            .get(&key, now)
            .filter(|e| presented_as(credential, e.principal.method))
        {
            if entry.principal.method == AuthMethod::ApiKey {
                self.touch_api_key(&entry, now);
            }
            return Ok(entry.principal.clone());
        }
        let generation = self.inner.cache.generation();
        let principal = match credential {
            Credential::ApiKey(k) => self.load_api_key(k).await?,
            Credential::Session(s) => self.load_session(s).await?,
            Credential::Bearer(t) => match SecretKind::of(t) {
                Some(SecretKind::ApiKey) => self.load_api_key(t).await?,
                Some(SecretKind::UserToken) => {
                    return Err(fail(AuthFailure::WrongKind(
                        "user tokens cannot call the API; exchange them at POST /api/v1/auth/token/refresh",
                    )))
                }
                Some(SecretKind::RefreshToken) => {
                    return Err(fail(AuthFailure::WrongKind(
                        "refresh tokens cannot call the API; exchange them for an access token",
                    )))
                }
                Some(_) => return Err(fail(AuthFailure::Malformed)),
                None => self.load_access_token(t).await?,
            },
        };
        let entry = self.inner.cache.insert(key, principal, generation, now);
        if entry.principal.method == AuthMethod::ApiKey {
            // First use since caching: record it now.
            self.touch_api_key_now(entry.principal.credential_id);
        }
        Ok(entry.principal.clone())
    }

    /// An access token for Berth's API or any other audience this server issues tokens for,
    /// checked without the cache (introspection and revocation on behalf of other services).
    pub(crate) async fn inspect_access_token(&self, token: &str) -> Result<Principal, AppError> {
        let mut audiences = vec![self.settings().audience.clone()];
        audiences.extend(self.settings().oauth.additional_audiences.iter().cloned());
        self.verify_access_token(token, &audiences).await
    }

    async fn load_access_token(&self, token: &str) -> Result<Principal, AppError> {
        let audience = [self.settings().audience.clone()];
        self.verify_access_token(token, &audience).await
    }

    async fn verify_access_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Principal, AppError> {
        let header = jwt::decode_header(token).map_err(|e| fail(AuthFailure::Token(e)))?;
        let kid = header
            .kid
            .ok_or(fail(AuthFailure::Token(jwt::JwtError::UnknownKey)))?;
        let key = self
            .keyring()
            .verifying_key(&kid)
            .await
            .ok_or(fail(AuthFailure::Token(jwt::JwtError::UnknownKey)))?;
        let claims: AccessClaims =
            jwt::verify(token, &key).map_err(|e| fail(AuthFailure::Token(e)))?;
        let s = self.settings();
        let audience = audiences
            .iter()
            .find(|a| **a == claims.aud)
            .unwrap_or(&s.audience);
        claims
            .validate(self.now().timestamp(), &s.issuer, audience, 30)
            .map_err(|e| fail(AuthFailure::Token(e)))?;
        let sid: Uuid = claims
            .sid
            .parse()
            .map_err(|_| fail(AuthFailure::Malformed))?;
        let user_id: Uuid = claims
            .sub
            .parse()
            .map_err(|_| fail(AuthFailure::Malformed))?;
        let jti: Option<Uuid> = claims.jti.parse().ok();
        let client_credentials =
            claims.gty.as_deref() == Some(crate::auth::clients::GRANT_CLIENT_CREDENTIALS);
        // The token dies with whatever it came from, even if its own `exp` is later.
        let (method, source_expiry, delegates_until) = if client_credentials {
            // `sid` names the client itself: the token lives as long as the client does.
            let client = berth_store::credentials::clients::get(self.db(), sid)
                .await?
                .ok_or(fail(AuthFailure::Revoked))?;
            if client.revoked_at.is_some() || client.expires_at.is_some_and(|e| e <= self.now()) {
                return Err(fail(AuthFailure::Revoked));
            }
            if client.owner_id != Some(user_id) {
                return Err(fail(AuthFailure::Malformed));
            }
            if let Some(jti) = jti {
                if berth_store::credentials::grants::is_access_token_revoked(self.db(), jti).await?
                {
                    return Err(fail(AuthFailure::Revoked));
                }
            }
            (
                AuthMethod::ClientCredentials,
                client.expires_at,
                client.expires_at,
            )
        } else {
            let grant = berth_store::credentials::grants::get(self.db(), sid)
                .await?
                .ok_or(fail(AuthFailure::Revoked))?;
            if grant.revoked_at.is_some() || grant.expires_at <= self.now() {
                return Err(fail(AuthFailure::Revoked));
            }
            if grant.user_id != user_id {
                return Err(fail(AuthFailure::Malformed));
            }
            // A session exchanged for a user token delegates only within its own life; one
            // from a full sign-in is the user themself.
            let limit = (grant.kind == "user_token").then_some(grant.expires_at);
            (AuthMethod::AccessToken, Some(grant.expires_at), limit)
        };
        let user = self.active_user(user_id).await?;
        let scopes = parse_scopes(claims.scope.split_whitespace())
            .map_err(|_| fail(AuthFailure::Malformed))?;
        let project_id = match claims.project_id.as_deref() {
            Some(p) => Some(p.parse().map_err(|_| fail(AuthFailure::Malformed))?),
            None => None,
        };
        let mut p = principal(
            user,
            method,
            sid,
            scopes,
            [DateTime::from_timestamp(claims.exp, 0), source_expiry]
                .into_iter()
                .flatten()
                .min(),
        );
        p.client_id = claims.client_id;
        p.project_id = project_id;
        p.token_id = jti;
        p.delegates_until = delegates_until;
        Ok(p)
    }

    async fn load_session(&self, cookie: &str) -> Result<Principal, AppError> {
        let digest =
            secret::parse(SecretKind::Session, cookie).ok_or(fail(AuthFailure::Malformed))?;
        let grant = berth_store::credentials::grants::find_session(self.db(), &digest)
            .await?
            .ok_or(fail(AuthFailure::Unknown))?;
        if grant.revoked_at.is_some() {
            return Err(fail(AuthFailure::Revoked));
        }
        if grant.expires_at <= self.now() {
            return Err(fail(AuthFailure::Expired));
        }
        let user = self.active_user(grant.user_id).await?;
        let scopes = parse_scopes(grant.scopes.iter().map(String::as_str))
            .map_err(|_| fail(AuthFailure::Malformed))?;
        Ok(principal(
            user,
            AuthMethod::Session,
            grant.id,
            scopes,
            Some(grant.expires_at),
        ))
    }

    async fn load_api_key(&self, presented: &str) -> Result<Principal, AppError> {
        let digest =
            secret::parse(SecretKind::ApiKey, presented).ok_or(fail(AuthFailure::Malformed))?;
        let key = berth_store::credentials::api_keys::find_by_digest(self.db(), &digest)
            .await?
            .ok_or(fail(AuthFailure::Unknown))?;
        if key.revoked_at.is_some() {
            return Err(fail(AuthFailure::Revoked));
        }
        if key.expires_at.is_some_and(|e| e <= self.now()) {
            return Err(fail(AuthFailure::Expired));
        }
        let user = self.active_user(key.user_id).await?;
        let scopes = parse_scopes(key.scopes.iter().map(String::as_str))
            .map_err(|_| fail(AuthFailure::Malformed))?;
        let mut p = principal(user, AuthMethod::ApiKey, key.id, scopes, key.expires_at);
        p.delegates_until = key.expires_at;
        Ok(p)
    }

    async fn active_user(&self, id: Uuid) -> Result<UserRow, AppError> {
        match berth_store::identity::users::get(self.db(), id).await? {
            Some(u) if !u.disabled => Ok(u),
            Some(_) => Err(fail(AuthFailure::UserDisabled)),
            None => Err(fail(AuthFailure::Revoked)),
        }
    }

    fn touch_api_key(&self, entry: &crate::auth::cache::Entry, now: i64) {
        let last = entry.last_touch.load(std::sync::atomic::Ordering::Relaxed);
        if now - last >= 60
            && entry
                .last_touch
                .compare_exchange(
                    last,
                    now,
                    std::sync::atomic::Ordering::Relaxed,
                    std::sync::atomic::Ordering::Relaxed,
                )
                .is_ok()
        {
            self.touch_api_key_now(entry.principal.credential_id);
        }
    }

    fn touch_api_key_now(&self, id: Uuid) {
        let db = self.db().clone();
        tokio::spawn(async move {
            if let Err(e) = berth_store::credentials::api_keys::touch(&db, id).await {
                tracing::warn!(error = %e, "recording API key use failed");
            }
        });
    }

    /// Forgets a revoked credential (or every credential of a user) here and on every replica.
    pub(crate) async fn forget_credential(&self, id: Uuid) -> Result<(), AppError> {
        self.inner.cache.evict(id);
        berth_store::announce_revocation(self.db(), &id.to_string()).await?;
        Ok(())
    }

    /// Evicts credentials revoked by other replicas. If the listener loses its connection,
    /// notifications may have been missed, so the cache is flushed before listening again.
    /// While the store is down it waits for it rather than retrying into it.
    pub(crate) fn spawn_revocation_listener(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                app.store_health().wait_up().await;
                // Reconnect ourselves: a transparent reconnect would hide the gap.
                match berth_store::listen(app.db(), berth_store::REVOCATION_CHANNEL).await {
                    Ok(mut listener) => {
                        app.inner.cache.clear();
                        // `Ok(None)`: the connection was lost.
                        while let Ok(Some(n)) = listener.try_recv().await {
                            if let Ok(id) = n.payload().parse::<Uuid>() {
                                app.inner.cache.evict(id);
                            }
                        }
                    }
                    Err(e) => {
                        if !app.store_failed(&e) {
                            tracing::warn!(error = %e, "revocation listener cannot connect");
                        }
                    }
                }
                app.inner.cache.clear();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
}

fn principal(
    user: UserRow,
    method: AuthMethod,
    credential_id: Uuid,
    scopes: std::collections::BTreeSet<berth_types::Permission>,
    expires_at: Option<DateTime<Utc>>,
) -> Principal {
    Principal {
        user_id: user.id,
        username: user.username,
        is_platform_admin: user.is_platform_admin,
        method,
        credential_id,
        scopes,
        expires_at,
        client_id: None,
        project_id: None,
        token_id: None,
        delegates_until: None,
    }
}

/// Whether a principal cached under a secret's digest may answer for it as presented now: a
/// session secret sent as a bearer token (or a key sent as a cookie) is not the same credential.
fn presented_as(credential: &Credential, method: AuthMethod) -> bool {
    match credential {
        Credential::Session(_) => method == AuthMethod::Session,
        Credential::ApiKey(_) => method == AuthMethod::ApiKey,
        Credential::Bearer(_) => matches!(
            method,
            AuthMethod::AccessToken | AuthMethod::ClientCredentials | AuthMethod::ApiKey
        ),
    }
}
