//! The queries the tables of credentials a user holds and revokes one by one (`api_keys`,
//! `user_tokens`) answer alike, written once: a user's active ones, a page at a time, and
//! revoking one of them. `table` and `columns` are the calling module's constants, never input.

use sqlx::postgres::PgRow;
use sqlx::PgExecutor;
use uuid::Uuid;

/// `user`'s credentials in `table` that are not revoked, newest first.
pub(super) async fn list_active<'e, R>(
    db: impl PgExecutor<'e>,
    table: &'static str,
    columns: &'static str,
    user: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<R>, sqlx::Error>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as(&format!(
        "SELECT {columns} FROM {table} WHERE user_id = $1 AND revoked_at IS NULL
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3"
    ))
    .bind(user)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

pub(super) async fn count_active<'e>(
    db: impl PgExecutor<'e>,
    table: &'static str,
    user: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE user_id = $1 AND revoked_at IS NULL"
    ))
    .bind(user)
    .fetch_one(db)
    .await
}

/// Revokes one of `user`'s credentials; false when there is no such active one of theirs.
pub(super) async fn revoke<'e>(
    db: impl PgExecutor<'e>,
    table: &'static str,
    user: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(&format!(
        "UPDATE {table} SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL"
    ))
    .bind(id)
    .bind(user)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}
