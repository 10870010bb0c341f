//! The `api_keys` table.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub display_prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, user_id, name, display_prefix, scopes, created_at, expires_at, last_used_at, revoked_at";

pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: &'a str,
    pub digest: &'a [u8],
    pub display_prefix: &'a str,
    pub scopes: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    k: &NewApiKey<'_>,
) -> Result<ApiKeyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO api_keys (id, user_id, name, digest, display_prefix, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(k.id)
    .bind(k.user_id)
    .bind(k.name)
    .bind(k.digest)
    .bind(k.display_prefix)
    .bind(k.scopes)
    .bind(k.expires_at)
    .fetch_one(db)
    .await
}

pub async fn find_by_digest<'e>(
    db: impl PgExecutor<'e>,
    digest: &[u8],
) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE digest = $1"))
        .bind(digest)
        .fetch_optional(db)
        .await
}

/// A user's active (not revoked) ones, newest first.
pub async fn list_active<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    super::owned::list_active(db, "api_keys", COLUMNS, user, limit, offset).await
}

pub async fn count_active<'e>(db: impl PgExecutor<'e>, user: Uuid) -> Result<i64, sqlx::Error> {
    super::owned::count_active(db, "api_keys", user).await
}

/// Revokes one of `user`'s; false when there is no such active one of theirs.
pub async fn revoke<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    super::owned::revoke(db, "api_keys", user, id).await
}

/// Records use at most once a minute per key, so hot keys don't turn every read into a write.
pub async fn touch<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now()
         WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}
