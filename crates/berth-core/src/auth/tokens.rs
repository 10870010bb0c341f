//! Sign-in results: browser sessions and access/refresh token pairs, refresh rotation with
//! reuse detection and a grace period, and sign-out.
//!
//! Each sign-in creates a grant. A browser session is a grant found by its cookie secret; a
//! token family is a grant whose id every access token carries as `sid` and to which every
//! refresh token belongs. Presenting a refresh token that was already exchanged means it was
//! copied: the whole family is revoked — unless it is the immediate parent retried within the
//! grace period (a lost response), which gets the same child back once.

use std::time::Duration;

use berth_auth::jwt::AccessClaims;
use berth_auth::secret::{self, SecretKind};
use berth_store::credentials::grants::{GrantRow, NewGrant};
use berth_store::identity::users::UserRow;
use berth_types::{
    AuthMethod, LoginRequest, Permission, RefreshRequest, TokenRequest, UserWithPermissions,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audit::Event;
use crate::{App, AppError, Principal};

/// The result of a browser sign-in: the cookie value (shown once) and the user.
pub struct NewSession {
    pub secret: String,
    pub max_age: Duration,
    pub user: UserWithPermissions,
}

#[derive(Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: i64,
    pub refresh_expires_in: Option<i64>,
    pub scope: String,
    pub user: UserWithPermissions,
}

impl From<TokenPair> for berth_types::TokenResponse {
    fn from(p: TokenPair) -> Self {
        berth_types::TokenResponse {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            token_type: "Bearer".into(),
            expires_in: p.expires_in,
            refresh_expires_in: p.refresh_expires_in,
            scope: p.scope,
            user: p.user,
        }
    }
}

impl From<TokenPair> for berth_types::OAuthTokenResponse {
    fn from(p: TokenPair) -> Self {
        berth_types::OAuthTokenResponse {
            access_token: p.access_token,
            token_type: "Bearer".into(),
            expires_in: p.expires_in,
            scope: p.scope,
            refresh_token: p.refresh_token,
            issued_token_type: None,
        }
    }
}

pub(crate) fn all_scopes() -> Vec<String> {
    Permission::ALL
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

pub(crate) fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::seconds(d.as_secs() as i64)
}

/// What a new token family is for.
pub(crate) struct NewFamily<'a> {
    pub kind: &'a str,
    pub scopes: &'a [String],
    pub client_id: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub user_token_id: Option<Uuid>,
    /// Whether the family gets a refresh token.
    pub refreshable: bool,
}

impl App {
    /// Cookie sign-in. A session presented with the request is ended first, so the session id
    /// always changes at sign-in (no session fixation).
    pub async fn login_session(
        &self,
        req: &LoginRequest,
        previous: Option<&str>,
    ) -> Result<NewSession, AppError> {
        let user = self.check_password(&req.login, &req.password).await?;
        if let Some(digest) = previous.and_then(|s| secret::parse(SecretKind::Session, s)) {
            if let Some(old) =
                berth_store::credentials::grants::find_session(self.db(), &digest).await?
            {
                self.revoke_grant(old.id, "replaced by a new sign-in")
                    .await?;
            }
        }
        let session = secret::generate(SecretKind::Session);
        let ttl = self.settings().session_ttl;
        let grant_id = Uuid::now_v7();
        berth_store::credentials::grants::insert(
            self.db(),
            &NewGrant {
                id: grant_id,
                user_id: user.id,
                kind: "session",
                scopes: &all_scopes(),
                session_digest: Some(&session.digest),
                expires_at: self.now() + chrono_dur(ttl),
            },
        )
        .await?;
        self.audit(
            Event::new("auth.session.created")
                .user(user.id, &user.username)
                .target("grant", grant_id),
        )
        .await;
        Ok(NewSession {
            secret: session.plaintext,
            max_age: ttl,
            user: self.user_with_permissions(user).await?,
        })
    }

    /// Script sign-in: a new token family.
    pub async fn login_tokens(&self, req: &TokenRequest) -> Result<TokenPair, AppError> {
        let user = self.check_password(&req.username, &req.password).await?;
        let family = NewFamily {
            kind: "token",
            scopes: &all_scopes(),
            client_id: None,
            audience: None,
            user_token_id: None,
            refreshable: true,
        };
        self.start_family(user, &family, "password").await
    }

    /// A password sign-in with one access token that lasts as long as a user token's session
    /// (24 h by default) and no refresh token: BigID's `POST /api/v1/sessions`.
    pub async fn login_session_token(
        &self,
        username: &str,
        password: &str,
    ) -> Result<TokenPair, AppError> {
        let user = self.check_password(username, password).await?;
        let family = NewFamily {
            kind: "api_session",
            scopes: &all_scopes(),
            client_id: None,
            audience: None,
            user_token_id: None,
            refreshable: false,
        };
        self.start_family(user, &family, "password").await
    }

    /// Creates a grant (and its first refresh token) and issues the first tokens.
    pub(crate) async fn start_family(
        &self,
        user: UserRow,
        f: &NewFamily<'_>,
        grant_type: &str,
    ) -> Result<TokenPair, AppError> {
        let grant_id = Uuid::now_v7();
        let now = self.now();
        let lifetime = self.family_lifetime(f.kind);
        let mut tx = self.db().begin().await?;
        berth_store::credentials::grants::insert(
            &mut *tx,
            &NewGrant {
                id: grant_id,
                user_id: user.id,
                kind: f.kind,
                scopes: f.scopes,
                session_digest: None,
                expires_at: now + chrono_dur(lifetime),
            },
        )
        .await?;
        if f.client_id.is_some() || f.audience.is_some() || f.user_token_id.is_some() {
            let origin = berth_store::credentials::grants::GrantOrigin {
                client_id: f.client_id,
                audience: f.audience,
                user_token_id: f.user_token_id,
            };
            berth_store::credentials::grants::set_origin(&mut *tx, grant_id, &origin).await?;
        }
        let refresh = if f.refreshable {
            let token = secret::generate(SecretKind::RefreshToken);
            let expires = now + chrono_dur(self.refresh_ttl(f.kind).min(lifetime));
            berth_store::credentials::grants::insert_refresh(
                &mut *tx,
                Uuid::now_v7(),
                grant_id,
                &token.digest,
                None,
                expires,
            )
            .await?;
            Some((token.plaintext, expires))
        } else {
            None
        };
        tx.commit().await?;
        self.audit(
            Event::new("auth.token.issued")
                .user(user.id, &user.username)
                .client(f.client_id)
                .target("grant", grant_id)
                .details(serde_json::json!({ "grant_type": grant_type })),
        )
        .await;
        let spec = AccessSpec {
            grant_id,
            kind: f.kind,
            ceiling: f.scopes,
            client_id: f.client_id,
            audience: f.audience,
        };
        self.issue(user, &spec, refresh).await
    }

    /// Exchanges a refresh token at `POST /api/v1/auth/token/refresh` (no OAuth client).
    pub async fn refresh(&self, req: &RefreshRequest) -> Result<TokenPair, AppError> {
        let presented = req.refresh_token.trim();
        if SecretKind::of(presented) == Some(SecretKind::UserToken) {
            return self.exchange_user_token(presented).await;
        }
        self.rotate_refresh(presented, None).await
    }

    /// Rotates a refresh token presented by `client` (None: no OAuth client). The client must
    /// be the one the family was issued to.
    pub(crate) async fn rotate_refresh(
        &self,
        presented: &str,
        client: Option<&str>,
    ) -> Result<TokenPair, AppError> {
        let invalid =
            || AppError::InvalidGrant("the refresh token is invalid, expired or revoked".into());
        let digest = secret::parse(SecretKind::RefreshToken, presented).ok_or_else(invalid)?;
        let mut tx = self.db().begin().await?;
        let token = berth_store::credentials::grants::find_refresh_for_update(&mut *tx, &digest)
            .await?
            .ok_or_else(invalid)?;
        let grant = berth_store::credentials::grants::get(&mut *tx, token.grant_id)
            .await?
            .ok_or_else(invalid)?;
        let (grant_client, audience) = berth_store::credentials::grants::origin(&mut *tx, grant.id)
            .await?
            .unwrap_or_default();
        if grant.revoked_at.is_some() || grant_client.as_deref() != client {
            return Err(invalid());
        }
        let now = self.now();
        if let Some(rotated_at) = token.rotated_at {
            let grace = chrono::Duration::seconds(self.settings().oauth.refresh_grace_secs as i64);
            let (sealed, grace_used, child_rotated) =
                berth_store::credentials::grants::grace_state(&mut *tx, token.id)
                    .await?
                    .unwrap_or((None, true, true));
            let child = match sealed {
                Some(s) if now - rotated_at <= grace && !grace_used && !child_rotated => self
                    .keyring()
                    .open(&s, token.id.as_bytes())
                    .ok()
                    .and_then(|c| String::from_utf8(c).ok()),
                _ => None,
            };
            let Some(child) = child else {
                drop(tx);
                self.revoke_grant(grant.id, "refresh token reuse detected")
                    .await?;
                tracing::warn!(grant = %grant.id, user = %grant.user_id, "refresh token reuse detected; token family revoked");
                let owner = berth_store::identity::users::get(self.db(), grant.user_id).await?;
                let mut event = Event::new("auth.refresh.reuse_detected");
                if let Some(u) = &owner {
                    event = event.user(u.id, &u.username);
                }
                self.audit(event.client(client).target("grant", grant.id).details(
                    serde_json::json!({ "user_id": grant.user_id, "family_revoked": true }),
                ))
                .await;
                return Err(AppError::InvalidGrant(
                    "this refresh token was already used; every token of this sign-in has been revoked"
                        .into(),
                ));
            };
            // The immediate parent, retried within the grace period: the same child, once.
            berth_store::credentials::grants::use_grace(&mut *tx, token.id).await?;
            let child_expires = berth_store::credentials::grants::child_expiry(&mut *tx, token.id)
                .await?
                .unwrap_or(grant.expires_at);
            let user = self.family_user(&mut tx, &grant).await?;
            tx.commit().await?;
            return self
                .issue_for_grant(
                    user,
                    &grant,
                    client,
                    audience.as_deref(),
                    Some((child, child_expires)),
                )
                .await;
        }
        if token.expires_at <= now || grant.expires_at <= now {
            return Err(invalid());
        }
        let user = self.family_user(&mut tx, &grant).await?;
        let next = secret::generate(SecretKind::RefreshToken);
        let next_expires = (now + chrono_dur(self.refresh_ttl(&grant.kind))).min(grant.expires_at);
        let sealed = self
            .keyring()
            .seal(next.plaintext.as_bytes(), token.id.as_bytes());
        berth_store::credentials::grants::mark_rotated_with_child(&mut *tx, token.id, &sealed)
            .await?;
        berth_store::credentials::grants::insert_refresh(
            &mut *tx,
            Uuid::now_v7(),
            grant.id,
            &next.digest,
            Some(token.id),
            next_expires,
        )
        .await?;
        tx.commit().await?;
        self.audit(
            Event::new("auth.token.refreshed")
                .user(user.id, &user.username)
                .client(client)
                .target("grant", grant.id),
        )
        .await;
        self.issue_for_grant(
            user,
            &grant,
            client,
            audience.as_deref(),
            Some((next.plaintext, next_expires)),
        )
        .await
    }

    async fn family_user(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        grant: &GrantRow,
    ) -> Result<UserRow, AppError> {
        berth_store::identity::users::get(&mut **tx, grant.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(|| AppError::InvalidGrant("the user is disabled or gone".into()))
    }

    async fn issue_for_grant(
        &self,
        user: UserRow,
        grant: &GrantRow,
        client: Option<&str>,
        audience: Option<&str>,
        refresh: Option<(String, DateTime<Utc>)>,
    ) -> Result<TokenPair, AppError> {
        let spec = AccessSpec {
            grant_id: grant.id,
            kind: &grant.kind,
            ceiling: &grant.scopes,
            client_id: client,
            audience,
        };
        self.issue(user, &spec, refresh).await
    }

    /// Ends the caller's session or token family. Without a principal (an expired cookie, say)
    /// there is nothing to end.
    pub async fn logout(&self, principal: Option<&Principal>) -> Result<(), AppError> {
        match principal {
            Some(p) if p.method == AuthMethod::ApiKey => Err(AppError::Validation(
                "API keys are not signed out; revoke them with DELETE /api/v1/auth/api-keys/{id}"
                    .into(),
            )),
            Some(p) if p.method == AuthMethod::ClientCredentials => Err(AppError::Validation(
                "client-credential tokens are revoked at POST /oauth/revoke".into(),
            )),
            Some(p) => {
                self.revoke_grant(p.credential_id, "signed out").await?;
                self.audit(
                    Event::new("auth.logout")
                        .by(p)
                        .target("grant", p.credential_id),
                )
                .await;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Revokes a grant and tells every replica to forget it.
    pub(crate) async fn revoke_grant(&self, grant: Uuid, reason: &str) -> Result<(), AppError> {
        berth_store::credentials::grants::revoke(self.db(), grant, reason).await?;
        self.forget_credential(grant).await
    }

    fn family_lifetime(&self, kind: &str) -> Duration {
        match kind {
            "token" => self.settings().token_family_lifetime,
            "user_token" | "api_session" => {
                Duration::from_secs(self.settings().oauth.user_token_session_ttl_secs)
            }
            _ => Duration::from_secs(self.settings().oauth.refresh_family_lifetime_secs),
        }
    }

    fn refresh_ttl(&self, kind: &str) -> Duration {
        match kind {
            "token" => self.settings().refresh_token_ttl,
            _ => Duration::from_secs(self.settings().oauth.refresh_token_ttl_secs),
        }
    }

    fn access_ttl(&self, kind: &str) -> i64 {
        let s = self.settings();
        (match kind {
            "token" | "session" => s.access_token_ttl.as_secs(),
            "user_token" | "api_session" => s.oauth.user_token_session_ttl_secs,
            _ => s.oauth.access_token_ttl_secs,
        }) as i64
    }

    /// Signs an access token for a grant, claiming only what the user holds now within the
    /// grant's ceiling.
    pub(crate) async fn issue(
        &self,
        user: UserRow,
        spec: &AccessSpec<'_>,
        refresh: Option<(String, DateTime<Utc>)>,
    ) -> Result<TokenPair, AppError> {
        let now = self.now().timestamp();
        let ttl = self.access_ttl(spec.kind);
        // The grant's scopes are a ceiling; platform-wide ones need a platform admin now.
        let held = crate::authz::holdable(user.is_platform_admin);
        let user = self.user_with_permissions(user).await?;
        let scope = spec
            .ceiling
            .iter()
            .filter(|s| Permission::parse(s).is_some_and(|p| held.contains(&p)))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let claims = AccessClaims {
            iss: self.settings().issuer.clone(),
            sub: user.user.id.to_string(),
            aud: spec
                .audience
                .unwrap_or(&self.settings().audience)
                .to_owned(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: Uuid::new_v4().to_string(),
            scope: scope.clone(),
            sid: spec.grant_id.to_string(),
            client_id: spec.client_id.map(str::to_owned),
            gty: None,
            project_id: None,
        };
        let (refresh_token, refresh_expires_in) = match refresh {
            Some((t, exp)) => (Some(t), Some(exp.timestamp() - now)),
            None => (None, None),
        };
        Ok(TokenPair {
            access_token: self.keyring().sign(&claims),
            refresh_token,
            expires_in: ttl,
            refresh_expires_in,
            scope,
            user,
        })
    }
}

/// Which grant an access token is issued for.
pub(crate) struct AccessSpec<'a> {
    pub grant_id: Uuid,
    pub kind: &'a str,
    pub ceiling: &'a [String],
    pub client_id: Option<&'a str>,
    pub audience: Option<&'a str>,
}
