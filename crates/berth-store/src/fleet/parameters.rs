//! The `instance_parameters` table: the configuration parameters users set, per instance.

use sqlx::PgExecutor;
use uuid::Uuid;

/// The instance's overrides, by name.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, value FROM instance_parameters WHERE instance_id = $1 ORDER BY name",
    )
    .bind(instance_id)
    .fetch_all(db)
    .await
}

pub async fn set<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    name: &str,
    value: &str,
    by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO instance_parameters (instance_id, name, value, updated_by)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (instance_id, name)
         DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now()",
    )
    .bind(instance_id)
    .bind(name)
    .bind(value)
    .bind(by)
    .execute(db)
    .await?;
    Ok(())
}

/// Back to the default.
pub async fn reset<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM instance_parameters WHERE instance_id = $1 AND name = $2")
        .bind(instance_id)
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}
