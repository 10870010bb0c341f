//! Sign-in results: browser sessions and access/refresh token pairs, refresh rotation with
//! reuse detection, and sign-out.
//!
//! Each sign-in creates a grant. A browser session is a grant found by its cookie secret; a
//! token family is a grant whose id every access token carries as `sid` and to which every
//! refresh token belongs. Presenting a refresh token that was already exchanged means it was
//! copied: the whole family is revoked.

use std::time::Duration;

use berth_auth::jwt::AccessClaims;
use berth_auth::secret::{self, SecretKind};
use berth_store::grants::NewGrant;
use berth_store::users::UserRow;
use berth_types::{
    AuthMethod, LoginRequest, Permission, RefreshRequest, TokenRequest, UserWithPermissions,
};
use chrono::Utc;
use uuid::Uuid;

use crate::{App, AppError, ClientInfo, Principal};

/// The result of a browser sign-in: the cookie value (shown once) and the user.
pub struct NewSession {
    pub secret: String,
    pub max_age: Duration,
    pub user: UserWithPermissions,
}

#[derive(Debug)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub refresh_expires_in: i64,
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

fn all_scopes() -> Vec<String> {
    Permission::ALL
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect()
}

fn chrono_dur(d: Duration) -> chrono::Duration {
    chrono::Duration::seconds(d.as_secs() as i64)
}

impl App {
    /// Cookie sign-in. A session presented with the request is ended first, so the session id
    /// always changes at sign-in (no session fixation).
    pub async fn login_session(
        &self,
        req: &LoginRequest,
        client: &ClientInfo,
        previous: Option<&str>,
    ) -> Result<NewSession, AppError> {
        let user = self
            .check_password(&req.login, &req.password, client)
            .await?;
        if let Some(digest) = previous.and_then(|s| secret::parse(SecretKind::Session, s)) {
            if let Some(old) = berth_store::grants::find_session(self.db(), &digest).await? {
                self.revoke_grant(old.id, "replaced by a new sign-in")
                    .await?;
            }
        }
        let session = secret::generate(SecretKind::Session);
        let ttl = self.settings().session_ttl;
        berth_store::grants::insert(
            self.db(),
            &NewGrant {
                id: Uuid::now_v7(),
                user_id: user.id,
                kind: "session",
                scopes: &all_scopes(),
                session_digest: Some(&session.digest),
                expires_at: Utc::now() + chrono_dur(ttl),
            },
        )
        .await?;
        Ok(NewSession {
            secret: session.plaintext,
            max_age: ttl,
            user: self.user_with_permissions(user).await?,
        })
    }

    /// Script sign-in: a new token family.
    pub async fn login_tokens(
        &self,
        req: &TokenRequest,
        client: &ClientInfo,
    ) -> Result<TokenPair, AppError> {
        let user = self
            .check_password(&req.username, &req.password, client)
            .await?;
        let grant_id = Uuid::now_v7();
        let scopes = all_scopes();
        let s = self.settings();
        let refresh = secret::generate(SecretKind::RefreshToken);
        let now = Utc::now();
        let refresh_expires = now + chrono_dur(s.refresh_token_ttl.min(s.token_family_lifetime));
        let mut tx = self.db().begin().await?;
        berth_store::grants::insert(
            &mut *tx,
            &NewGrant {
                id: grant_id,
                user_id: user.id,
                kind: "token",
                scopes: &scopes,
                session_digest: None,
                expires_at: now + chrono_dur(s.token_family_lifetime),
            },
        )
        .await?;
        berth_store::grants::insert_refresh(
            &mut *tx,
            Uuid::now_v7(),
            grant_id,
            &refresh.digest,
            None,
            refresh_expires,
        )
        .await?;
        tx.commit().await?;
        self.token_pair(user, grant_id, &scopes, refresh.plaintext, refresh_expires)
            .await
    }

    /// Exchanges a refresh token for a new pair, retiring it.
    pub async fn refresh(&self, req: &RefreshRequest) -> Result<TokenPair, AppError> {
        let invalid =
            || AppError::InvalidGrant("the refresh token is invalid, expired or revoked".into());
        let digest = secret::parse(SecretKind::RefreshToken, req.refresh_token.trim())
            .ok_or_else(invalid)?;
        let mut tx = self.db().begin().await?;
        let token = berth_store::grants::find_refresh_for_update(&mut *tx, &digest)
            .await?
            .ok_or_else(invalid)?;
        let grant = berth_store::grants::get(&mut *tx, token.grant_id)
            .await?
            .ok_or_else(invalid)?;
        if grant.revoked_at.is_some() {
            return Err(invalid());
        }
        if token.rotated_at.is_some() {
            drop(tx);
            self.revoke_grant(grant.id, "refresh token reuse detected")
                .await?;
            tracing::warn!(grant = %grant.id, user = %grant.user_id, "refresh token reuse detected; token family revoked");
            return Err(AppError::InvalidGrant(
                "this refresh token was already used; every token of this sign-in has been revoked"
                    .into(),
            ));
        }
        let now = Utc::now();
        if token.expires_at <= now || grant.expires_at <= now {
            return Err(invalid());
        }
        let user = berth_store::users::get(&mut *tx, grant.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(invalid)?;
        berth_store::grants::mark_rotated(&mut *tx, token.id).await?;
        let next = secret::generate(SecretKind::RefreshToken);
        let next_expires =
            (now + chrono_dur(self.settings().refresh_token_ttl)).min(grant.expires_at);
        berth_store::grants::insert_refresh(
            &mut *tx,
            Uuid::now_v7(),
            grant.id,
            &next.digest,
            Some(token.id),
            next_expires,
        )
        .await?;
        tx.commit().await?;
        self.token_pair(user, grant.id, &grant.scopes, next.plaintext, next_expires)
            .await
    }

    /// Ends the caller's session or token family. Without a principal (an expired cookie, say)
    /// there is nothing to end.
    pub async fn logout(&self, principal: Option<&Principal>) -> Result<(), AppError> {
        match principal {
            Some(p) if p.method == AuthMethod::ApiKey => Err(AppError::Validation(
                "API keys are not signed out; revoke them with DELETE /api/v1/auth/api-keys/{id}"
                    .into(),
            )),
            Some(p) => {
                self.revoke_grant(p.credential_id, "signed out").await?;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Revokes a grant and tells every replica to forget it.
    pub(crate) async fn revoke_grant(&self, grant: Uuid, reason: &str) -> Result<(), AppError> {
        berth_store::grants::revoke(self.db(), grant, reason).await?;
        self.forget_credential(grant).await
    }

    async fn token_pair(
        &self,
        user: UserRow,
        grant_id: Uuid,
        scopes: &[String],
        refresh_token: String,
        refresh_expires: chrono::DateTime<Utc>,
    ) -> Result<TokenPair, AppError> {
        let now = Utc::now().timestamp();
        let ttl = self.settings().access_token_ttl.as_secs() as i64;
        let user = self.user_with_permissions(user).await?;
        // The grant's scopes are a ceiling; the token claims only what the user holds now.
        let scope = scopes
            .iter()
            .filter(|s| user.permissions.contains(s))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let claims = AccessClaims {
            iss: self.settings().issuer.clone(),
            sub: user.user.id.to_string(),
            aud: self.settings().audience.clone(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: Uuid::new_v4().to_string(),
            scope: scope.clone(),
            sid: grant_id.to_string(),
            client_id: None,
        };
        Ok(TokenPair {
            access_token: self.keyring().sign(&claims),
            refresh_token,
            expires_in: ttl,
            refresh_expires_in: refresh_expires.timestamp() - now,
            scope,
            user,
        })
    }
}
