//! The `firewall_rules` table.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleRow {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub cidr: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    instance_id: Uuid,
    cidr: &str,
    description: &str,
    by: Option<Uuid>,
) -> Result<RuleRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO firewall_rules (id, instance_id, cidr, description, created_by)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, instance_id, cidr, description, created_at",
    )
    .bind(id)
    .bind(instance_id)
    .bind(cidr)
    .bind(description)
    .bind(by)
    .fetch_one(db)
    .await
}

/// The instance's rules, oldest first.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Vec<RuleRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, instance_id, cidr, description, created_at FROM firewall_rules
         WHERE instance_id = $1 ORDER BY created_at, id",
    )
    .bind(instance_id)
    .fetch_all(db)
    .await
}

/// Removes one rule; false if the instance has no such rule.
pub async fn delete<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM firewall_rules WHERE instance_id = $1 AND id = $2")
            .bind(instance_id)
            .bind(id)
            .execute(db)
            .await?
            .rows_affected()
            > 0,
    )
}
