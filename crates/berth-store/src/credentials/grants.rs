//! The `grants` and `refresh_tokens` tables: browser sessions and token families.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GrantRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const GRANT_COLUMNS: &str = "id, user_id, kind, scopes, created_at, expires_at, revoked_at";

pub struct NewGrant<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub kind: &'a str,
    pub scopes: &'a [String],
    pub session_digest: Option<&'a [u8]>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert<'e>(db: impl PgExecutor<'e>, g: &NewGrant<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO grants (id, user_id, kind, scopes, session_digest, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(g.id)
    .bind(g.user_id)
    .bind(g.kind)
    .bind(g.scopes)
    .bind(g.session_digest)
    .bind(g.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<Option<GrantRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn find_session<'e>(
    db: impl PgExecutor<'e>,
    digest: &[u8],
) -> Result<Option<GrantRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE session_digest = $1"
    ))
    .bind(digest)
    .fetch_optional(db)
    .await
}

/// Revokes one grant; returns false when it was already revoked or does not exist.
pub async fn revoke<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE grants SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(reason)
        .execute(db)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn revoke_all_of_user<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("UPDATE grants SET revoked_at = now(), revoked_reason = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user)
        .bind(reason)
        .execute(db)
        .await?;
    Ok(r.rows_affected())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub grant_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
}

pub async fn insert_refresh<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    grant: Uuid,
    digest: &[u8],
    parent: Option<Uuid>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (id, grant_id, digest, parent_id, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(grant)
        .bind(digest)
        .bind(parent)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

/// Finds a refresh token by digest and locks it, so two concurrent exchanges of the same token
/// cannot both succeed.
pub async fn find_refresh_for_update<'e>(
    db: impl PgExecutor<'e>,
    digest: &[u8],
) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, grant_id, created_at, expires_at, rotated_at FROM refresh_tokens WHERE digest = $1 FOR UPDATE")
        .bind(digest)
        .fetch_optional(db)
        .await
}

/// Grant columns added for OAuth clients.
pub struct GrantOrigin<'a> {
    pub client_id: Option<&'a str>,
    pub audience: Option<&'a str>,
    pub user_token_id: Option<Uuid>,
}

pub async fn set_origin<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    o: &GrantOrigin<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE grants SET client_id = $2, audience = $3, user_token_id = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(o.client_id)
    .bind(o.audience)
    .bind(o.user_token_id)
    .execute(db)
    .await?;
    Ok(())
}

/// The client and audience a grant was issued to.
pub async fn origin<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<(Option<String>, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT client_id, audience FROM grants WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn revoke_all_of_client<'e>(
    db: impl PgExecutor<'e>,
    client_id: &str,
    reason: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE grants SET revoked_at = now(), revoked_reason = $2 WHERE client_id = $1 AND revoked_at IS NULL RETURNING id",
    )
    .bind(client_id)
    .bind(reason)
    .fetch_all(db)
    .await
}

pub async fn revoke_all_of_user_token<'e>(
    db: impl PgExecutor<'e>,
    user_token: Uuid,
    reason: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE grants SET revoked_at = now(), revoked_reason = $2 WHERE user_token_id = $1 AND revoked_at IS NULL RETURNING id",
    )
    .bind(user_token)
    .bind(reason)
    .fetch_all(db)
    .await
}

/// Marks a refresh token exchanged and keeps its child, sealed, for the grace period.
pub async fn mark_rotated_with_child<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    child_sealed: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET rotated_at = now(), child_sealed = $2 WHERE id = $1")
        .bind(id)
        .bind(child_sealed)
        .execute(db)
        .await?;
    Ok(())
}

/// The retry state of a rotated refresh token: its sealed child, whether the grace retry was
/// used, and whether the child itself has been rotated since.
pub async fn grace_state<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<(Option<Vec<u8>>, bool, bool)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.child_sealed, p.grace_used, EXISTS (SELECT 1 FROM refresh_tokens c WHERE c.parent_id = p.id AND c.rotated_at IS NOT NULL)
         FROM refresh_tokens p WHERE p.id = $1",
    )
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn use_grace<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET grace_used = true, child_sealed = NULL WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// A refresh token's grant and expiry, for introspection (no lock).
pub async fn find_refresh<'e>(
    db: impl PgExecutor<'e>,
    digest: &[u8],
) -> Result<Option<RefreshTokenRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, grant_id, created_at, expires_at, rotated_at FROM refresh_tokens WHERE digest = $1")
        .bind(digest)
        .fetch_optional(db)
        .await
}

pub async fn revoke_access_token<'e>(
    db: impl PgExecutor<'e>,
    jti: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(jti)
        .bind(expires_at)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn is_access_token_revoked<'e>(
    db: impl PgExecutor<'e>,
    jti: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1)")
        .bind(jti)
        .fetch_one(db)
        .await
}

/// When the child of a rotated refresh token expires.
pub async fn child_expiry<'e>(
    db: impl PgExecutor<'e>,
    parent: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT expires_at FROM refresh_tokens WHERE parent_id = $1")
        .bind(parent)
        .fetch_optional(db)
        .await
}
