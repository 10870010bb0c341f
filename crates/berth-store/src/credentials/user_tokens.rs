//! The `user_tokens` table.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserTokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub display_prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str =
    "id, user_id, name, display_prefix, created_at, expires_at, last_used_at, revoked_at";

#[allow(clippy::too_many_arguments)]
pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    user: Uuid,
    name: &str,
    digest: &[u8],
    display_prefix: &str,
    created_by: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<UserTokenRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO user_tokens (id, user_id, name, digest, display_prefix, created_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user)
    .bind(name)
    .bind(digest)
    .bind(display_prefix)
    .bind(created_by)
    .bind(expires_at)
    .fetch_one(db)
    .await
}

pub async fn find_by_digest<'e>(
    db: impl PgExecutor<'e>,
    digest: &[u8],
) -> Result<Option<UserTokenRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM user_tokens WHERE digest = $1"
    ))
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
) -> Result<Vec<UserTokenRow>, sqlx::Error> {
    super::owned::list_active(db, "user_tokens", COLUMNS, user, limit, offset).await
}

pub async fn count_active<'e>(db: impl PgExecutor<'e>, user: Uuid) -> Result<i64, sqlx::Error> {
    super::owned::count_active(db, "user_tokens", user).await
}

/// Revokes one of `user`'s; false when there is no such active one of theirs.
pub async fn revoke<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    super::owned::revoke(db, "user_tokens", user, id).await
}

pub async fn touch<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE user_tokens SET last_used_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}
