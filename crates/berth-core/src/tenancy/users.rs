//! User accounts: administered by platform admins; every user can see themself.

use berth_store::identity::users::{NewUser, UserChanges, UserRow};
use berth_types::{AuthCheck, CreateUser, Page, Permission, UpdateUser, User, UserWithPermissions};
use uuid::Uuid;

use crate::audit::Event;
use crate::authz::principal::scope_names;
use crate::{validate, App, AppError, Principal};

pub(crate) fn user_view(row: UserRow) -> User {
    User {
        id: row.id,
        username: row.username,
        email: row.email,
        is_platform_admin: row.is_platform_admin,
        disabled: row.disabled,
        created_at: row.created_at,
        updated_at: row.updated_at,
        last_login_at: row.last_login_at,
    }
}

impl App {
    pub(crate) async fn user_with_permissions(
        &self,
        row: UserRow,
    ) -> Result<UserWithPermissions, AppError> {
        let perms = self.capabilities(row.id, row.is_platform_admin).await?;
        Ok(UserWithPermissions {
            user: user_view(row),
            permissions: perms.iter().map(|p| p.as_str().to_owned()).collect(),
        })
    }

    /// The user and what they hold, from the cache when fresh.
    pub(crate) async fn user_snapshot(
        &self,
        id: Uuid,
    ) -> Result<std::sync::Arc<crate::auth::cache::UserSnapshot>, AppError> {
        if let Some(s) = self.inner.cache.user(id) {
            return Ok(s);
        }
        let generation = self.inner.cache.generation();
        let row = berth_store::identity::users::get(self.db(), id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let capabilities = self.capabilities(row.id, row.is_platform_admin).await?;
        Ok(self
            .inner
            .cache
            .insert_user(user_view(row), capabilities, generation))
    }

    /// Who the caller is and what their credential may do.
    pub async fn auth_check(&self, p: &Principal) -> Result<AuthCheck, AppError> {
        let snapshot = self.user_snapshot(p.user_id).await?;
        let effective = p
            .scopes
            .iter()
            .copied()
            .filter(|s| snapshot.capabilities.contains(s))
            .collect();
        Ok(AuthCheck {
            user: snapshot.user.clone(),
            auth_method: p.method,
            permissions: scope_names(&effective),
            expires_at: p.expires_at,
            credential_id: p.credential_id,
            client_id: p.client_id.clone(),
            project_id: p.project_id,
        })
    }

    pub async fn list_users(
        &self,
        p: &Principal,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<User>, AppError> {
        self.require_global(p, Permission::UsersRead)?;
        let (limit, offset) = validate::page(limit, offset)?;
        let count = berth_store::identity::users::count(self.db()).await?;
        let rows = berth_store::identity::users::list(self.db(), limit, offset).await?;
        Ok(crate::page(
            count,
            limit,
            offset,
            rows.into_iter().map(user_view).collect(),
        ))
    }

    /// One's own account needs `account:read` (or, for platform admins, `users:read`), so a
    /// credential narrowed to other scopes cannot read it.
    pub async fn get_user(&self, p: &Principal, id: Uuid) -> Result<UserWithPermissions, AppError> {
        self.require_account(p, id, Permission::AccountRead, Permission::UsersRead)?;
        let row = berth_store::identity::users::get(self.db(), id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        self.user_with_permissions(row).await
    }

    pub async fn create_user(&self, p: &Principal, req: &CreateUser) -> Result<User, AppError> {
        self.require_global(p, Permission::UsersWrite)?;
        validate::username(&req.username)?;
        validate::email(&req.email)?;
        validate::password(&req.password)?;
        let hash = self.inner.hasher.hash(&req.password).await?;
        let new = NewUser {
            id: Uuid::now_v7(),
            username: &req.username,
            email: &req.email,
            password_hash: &hash,
            is_platform_admin: req.is_platform_admin,
        };
        match berth_store::identity::users::insert(self.db(), &new).await {
            Ok(row) => {
                self.audit(Event::new("user.created").by(p).target("user", row.id).details(
                    serde_json::json!({ "username": row.username, "is_platform_admin": row.is_platform_admin }),
                ))
                .await;
                Ok(user_view(row))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Platform admins change anything; users change their own email and password. Disabling
    /// a user or changing their password ends all their sessions and tokens.
    pub async fn update_user(
        &self,
        p: &Principal,
        id: Uuid,
        req: &UpdateUser,
    ) -> Result<User, AppError> {
        let admin_fields = req.is_platform_admin.is_some() || req.disabled.is_some();
        if admin_fields {
            self.require_global(p, Permission::UsersWrite)?;
        } else {
            self.require_account(p, id, Permission::AccountWrite, Permission::UsersWrite)?;
        }
        if let Some(e) = &req.email {
            validate::email(e)?;
        }
        if let Some(pw) = &req.password {
            validate::password(pw)?;
        }
        let demotes = req.is_platform_admin == Some(false) || req.disabled == Some(true);
        let hash = match &req.password {
            Some(pw) => Some(self.inner.hasher.hash(pw).await?),
            None => None,
        };
        // The password is confirmed before the transaction opens: confirming takes connections
        // of its own (the attempt counter) and a hash's time, and holding one across it let a
        // burst of self-service changes drain the pool for every tenant.
        let confirmed = if id == p.user_id && (req.password.is_some() || req.email.is_some()) {
            // A stolen token or API key must not be enough to take the account over.
            let Some(given) = &req.current_password else {
                return Err(AppError::Validation(
                    "current_password is required to change your own password or email".into(),
                ));
            };
            let user = berth_store::identity::users::get(self.db(), id)
                .await?
                .ok_or(AppError::NotFound("user"))?;
            if !self.confirm_password(&user, given).await? {
                return Err(AppError::Forbidden("current_password is incorrect".into()));
            }
            Some(user.password_hash)
        } else {
            None
        };
        let mut tx = self.db().begin().await?;
        let current = berth_store::identity::users::get(&mut *tx, id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        if confirmed.is_some_and(|h| h != current.password_hash) {
            // The password changed while we checked the old one: what was confirmed is stale.
            return Err(AppError::Forbidden("current_password is incorrect".into()));
        }
        if demotes
            && current.is_platform_admin
            && berth_store::identity::users::other_active_admins(&mut *tx, id).await? == 0
        {
            return Err(AppError::conflict(
                "user",
                "this is the last active platform admin",
            ));
        }
        let changes = UserChanges {
            email: req.email.as_deref(),
            password_hash: hash.as_deref(),
            is_platform_admin: req.is_platform_admin,
            disabled: req.disabled,
        };
        let row = match berth_store::identity::users::update(&mut *tx, id, &changes).await {
            Ok(row) => row.ok_or(AppError::NotFound("user"))?,
            Err(e) => return Err(e.into()),
        };
        let end_sessions = req.disabled == Some(true) || req.password.is_some();
        if end_sessions {
            berth_store::credentials::grants::revoke_all_of_user(
                &mut *tx,
                id,
                "credentials changed",
            )
            .await?;
        }
        tx.commit().await?;
        self.forget_credential(id).await?;
        let changed: Vec<&str> = [
            ("email", req.email.is_some()),
            ("password", req.password.is_some()),
            ("is_platform_admin", req.is_platform_admin.is_some()),
            ("disabled", req.disabled.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        self.audit(
            Event::new("user.updated")
                .by(p)
                .target("user", id)
                .details(serde_json::json!({ "changed": changed })),
        )
        .await;
        Ok(user_view(row))
    }

    pub async fn delete_user(&self, p: &Principal, id: Uuid) -> Result<(), AppError> {
        self.require_global(p, Permission::UsersWrite)?;
        if id == p.user_id {
            return Err(AppError::conflict("user", "you cannot delete yourself"));
        }
        let mut tx = self.db().begin().await?;
        let user = berth_store::identity::users::get(&mut *tx, id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        if user.is_platform_admin
            && berth_store::identity::users::other_active_admins(&mut *tx, id).await? == 0
        {
            return Err(AppError::conflict(
                "user",
                "this is the last active platform admin",
            ));
        }
        let sole = berth_store::identity::projects::sole_owned_by(&mut *tx, id).await?;
        if !sole.is_empty() {
            return Err(AppError::conflict(
                "user",
                format!(
                    "the user is the only owner of project(s) {}; transfer ownership first",
                    sole.join(", ")
                ),
            ));
        }
        berth_store::identity::users::delete(&mut *tx, id).await?;
        self.audit(
            Event::new("user.deleted")
                .by(p)
                .target("user", id)
                .details(serde_json::json!({ "username": user.username })),
        )
        .await;
        tx.commit().await?;
        self.forget_credential(id).await
    }
}
