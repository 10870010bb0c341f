//! The `signing_keys` table.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub public_key: Vec<u8>,
    pub sealed_private_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// Keys still worth publishing: current ones and retired ones whose tokens may be alive.
pub async fn published<'e>(
    db: impl PgExecutor<'e>,
    now: DateTime<Utc>,
) -> Result<Vec<SigningKeyRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC")
        .bind(now)
        .fetch_all(db)
        .await
}

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    kid: &str,
    algorithm: &str,
    public: &[u8],
    sealed: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO signing_keys (kid, algorithm, public_key, sealed_private_key) VALUES ($1, $2, $3, $4)")
        .bind(kid)
        .bind(algorithm)
        .bind(public)
        .bind(sealed)
        .execute(db)
        .await?;
    Ok(())
}

/// Serialises key creation across replicas for the rest of the transaction.
pub async fn lock_table<'e>(db: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query("LOCK TABLE signing_keys IN EXCLUSIVE MODE")
        .execute(db)
        .await?;
    Ok(())
}

/// Retires every current key as of now, keeping it published until `publish_until`.
pub async fn retire_current<'e>(
    db: impl PgExecutor<'e>,
    publish_until: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
        .bind(publish_until)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn current_created_at<'e>(
    db: impl PgExecutor<'e>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(created_at) FROM signing_keys WHERE retired_at IS NULL")
        .fetch_one(db)
        .await
}
