//! The `clients` table: OAuth API clients.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClientRow {
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    pub owner_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub secret_digest: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewClient<'a> {
    pub id: Uuid,
    pub client_id: &'a str,
    pub name: &'a str,
    pub owner_id: Uuid,
    pub project_id: Option<Uuid>,
    pub scopes: &'a [String],
    pub grant_types: &'a [String],
    pub secret_digest: &'a [u8],
    pub expires_at: DateTime<Utc>,
}

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    c: &NewClient<'_>,
) -> Result<ClientRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO clients (id, client_id, name, owner_id, project_id, scopes, grant_types, secret_digest, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
    )
    .bind(c.id)
    .bind(c.client_id)
    .bind(c.name)
    .bind(c.owner_id)
    .bind(c.project_id)
    .bind(c.scopes)
    .bind(c.grant_types)
    .bind(c.secret_digest)
    .bind(c.expires_at)
    .fetch_one(db)
    .await
}

pub async fn find<'e>(
    db: impl PgExecutor<'e>,
    client_id: &str,
) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM clients WHERE client_id = $1")
        .bind(client_id)
        .fetch_optional(db)
        .await
}

pub async fn get<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<Option<ClientRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM clients WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Active clients of `owner` (every owner's when `owner` is None), newest first.
pub async fn list_active<'e>(
    db: impl PgExecutor<'e>,
    owner: Option<Uuid>,
    limit: i64,
    offset: i64,
) -> Result<Vec<ClientRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM clients WHERE revoked_at IS NULL AND owner_id IS NOT NULL AND ($1::uuid IS NULL OR owner_id = $1)
         ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
    )
    .bind(owner)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

pub async fn count_active<'e>(
    db: impl PgExecutor<'e>,
    owner: Option<Uuid>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM clients WHERE revoked_at IS NULL AND owner_id IS NOT NULL AND ($1::uuid IS NULL OR owner_id = $1)",
    )
    .bind(owner)
    .fetch_one(db)
    .await
}

pub async fn revoke<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<bool, sqlx::Error> {
    let r =
        sqlx::query("UPDATE clients SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .execute(db)
            .await?;
    Ok(r.rows_affected() > 0)
}
