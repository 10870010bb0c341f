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

pub async fn mark_rotated<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_tokens SET rotated_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
