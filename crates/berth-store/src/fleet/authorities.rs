//! The `certificate_authorities` table: Berth's CA for instance certificates.

use sqlx::PgExecutor;
use uuid::Uuid;

/// The CA's certificate and sealed private key, if one exists.
pub async fn current<'e>(
    db: impl PgExecutor<'e>,
) -> Result<Option<(Uuid, String, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, cert_pem, sealed_key FROM certificate_authorities ORDER BY created_at LIMIT 1",
    )
    .fetch_optional(db)
    .await
}

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    cert_pem: &str,
    sealed_key: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO certificate_authorities (id, cert_pem, sealed_key) VALUES ($1, $2, $3)",
    )
    .bind(id)
    .bind(cert_pem)
    .bind(sealed_key)
    .execute(db)
    .await?;
    Ok(())
}

/// Serialises CA creation across replicas for the rest of the transaction.
pub async fn lock_table<'e>(db: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query("LOCK TABLE certificate_authorities IN EXCLUSIVE MODE")
        .execute(db)
        .await?;
    Ok(())
}
