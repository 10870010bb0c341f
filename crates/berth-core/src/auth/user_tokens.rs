//! Long-lived user tokens (up to 999 days), for scripts that must not hold a password. A user
//! token cannot call the API itself: it is exchanged for a session access token at
//! `POST /api/v1/auth/token/refresh`, and is not rotated by that exchange.

use berth_auth::secret::{self, SecretKind};
use berth_store::credentials::user_tokens::UserTokenRow;
use berth_types::{CreateUserToken, CreatedUserToken, Page, Permission, UserToken};
use uuid::Uuid;

use crate::audit::Event;
use crate::auth::tokens::{all_scopes, NewFamily, TokenPair};
use crate::authz::principal::scope_names;
use crate::{validate, App, AppError, Principal};

const MAX_DAYS: i64 = 999;

fn view(r: UserTokenRow) -> UserToken {
    UserToken {
        id: r.id,
        user_id: r.user_id,
        name: r.name,
        prefix: r.display_prefix,
        created_at: r.created_at,
        expires_at: r.expires_at,
        last_used_at: r.last_used_at,
    }
}

impl App {
    /// Platform admins manage anyone's user tokens; users manage their own.
    fn authorize_user_tokens(
        &self,
        p: &Principal,
        user: Uuid,
        write: bool,
    ) -> Result<(), AppError> {
        if user == p.user_id {
            let need = if write {
                Permission::ApiKeysWrite
            } else {
                Permission::ApiKeysRead
            };
            self.require_global(p, need)
        } else {
            self.require_global(
                p,
                if write {
                    Permission::UsersWrite
                } else {
                    Permission::UsersRead
                },
            )
        }
    }

    pub async fn create_user_token(
        &self,
        p: &Principal,
        user: Uuid,
        req: &CreateUserToken,
    ) -> Result<CreatedUserToken, AppError> {
        self.authorize_user_tokens(p, user, true)?;
        let name = validate::name("name", &req.name, 100)?;
        let now = self.now();
        if req.expires_at <= now {
            return Err(AppError::Validation(
                "expires_at must be in the future".into(),
            ));
        }
        if req.expires_at > now + chrono::Duration::days(MAX_DAYS) {
            return Err(AppError::Validation(format!(
                "expires_at must be at most {MAX_DAYS} days ahead"
            )));
        }
        let owner = berth_store::identity::users::get(self.db(), user)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        // A user token is exchanged for everything its owner holds: only a credential that may
        // delegate all of that can create one (a narrowed API key cannot mint a full session).
        let carried = scope_names(
            &crate::authz::holdable(owner.is_platform_admin)
                .into_iter()
                .collect(),
        );
        crate::authz::delegated_scopes(p, Some(&carried), None)?;
        crate::authz::delegated_expiry(p, Some(req.expires_at))?;
        let token = secret::generate(SecretKind::UserToken);
        let row = berth_store::credentials::user_tokens::insert(
            self.db(),
            Uuid::now_v7(),
            owner.id,
            &name,
            &token.digest,
            &token.display_prefix,
            p.user_id,
            req.expires_at,
        )
        .await?;
        self.audit(Event::new("user_token.created").by(p).target("user_token", row.id).details(
            serde_json::json!({ "user_id": owner.id, "name": name, "expires_at": req.expires_at }),
        ))
        .await;
        Ok(CreatedUserToken {
            user_token: view(row),
            token: token.plaintext,
        })
    }

    pub async fn list_user_tokens(
        &self,
        p: &Principal,
        user: Uuid,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<UserToken>, AppError> {
        self.authorize_user_tokens(p, user, false)?;
        let (limit, offset) = validate::page(limit, offset)?;
        let count = berth_store::credentials::user_tokens::count_active(self.db(), user).await?;
        let rows =
            berth_store::credentials::user_tokens::list_active(self.db(), user, limit, offset)
                .await?;
        Ok(crate::page(
            count,
            limit,
            offset,
            rows.into_iter().map(view).collect(),
        ))
    }

    /// Revokes a user token and every session access token it was exchanged for.
    pub async fn revoke_user_token(
        &self,
        p: &Principal,
        user: Uuid,
        id: Uuid,
    ) -> Result<(), AppError> {
        self.authorize_user_tokens(p, user, true)?;
        let mut tx = self.db().begin().await?;
        if !berth_store::credentials::user_tokens::revoke(&mut *tx, user, id).await? {
            return Err(AppError::NotFound("user token"));
        }
        let grants = berth_store::credentials::grants::revoke_all_of_user_token(
            &mut *tx,
            id,
            "user token revoked",
        )
        .await?;
        tx.commit().await?;
        for g in grants {
            self.forget_credential(g).await?;
        }
        self.audit(
            Event::new("user_token.revoked")
                .by(p)
                .target("user_token", id),
        )
        .await;
        Ok(())
    }

    /// Exchanges a user token for a session access token (not rotated, no refresh token).
    pub async fn exchange_user_token(&self, presented: &str) -> Result<TokenPair, AppError> {
        let invalid =
            || AppError::InvalidGrant("the user token is invalid, expired or revoked".into());
        let digest = secret::parse(SecretKind::UserToken, presented).ok_or_else(invalid)?;
        let token = berth_store::credentials::user_tokens::find_by_digest(self.db(), &digest)
            .await?
            .ok_or_else(invalid)?;
        if token.revoked_at.is_some() || token.expires_at <= self.now() {
            return Err(invalid());
        }
        let user = berth_store::identity::users::get(self.db(), token.user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or_else(invalid)?;
        berth_store::credentials::user_tokens::touch(self.db(), token.id).await?;
        let family = NewFamily {
            kind: "user_token",
            scopes: &all_scopes(),
            client_id: None,
            audience: None,
            user_token_id: Some(token.id),
            refreshable: false,
        };
        self.start_family(user, &family, "user_token").await
    }
}
