//! The `idempotency_keys` table: a retried create returns the original response.

use sqlx::PgExecutor;
use uuid::Uuid;

/// The stored request digest and sealed response for `(user, key)`.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
    key: &str,
) -> Result<Option<(Vec<u8>, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_hash, response FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .fetch_optional(db)
    .await
}

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
    key: &str,
    request_hash: &[u8],
    sealed_response: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO idempotency_keys (user_id, key, request_hash, response) VALUES ($1, $2, $3, $4)")
        .bind(user)
        .bind(key)
        .bind(request_hash)
        .bind(sealed_response)
        .execute(db)
        .await?;
    Ok(())
}

/// Serialises creates with the same key for the rest of the transaction.
pub async fn lock<'e>(db: impl PgExecutor<'e>, user: Uuid, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text || ':' || $2, 0))")
        .bind(user.to_string())
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}
