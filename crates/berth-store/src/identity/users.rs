//! The `users` table.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_platform_admin: bool,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

pub struct NewUser<'a> {
    pub id: Uuid,
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub is_platform_admin: bool,
}

pub async fn insert<'e>(db: impl PgExecutor<'e>, u: &NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO users (id, username, email, password_hash, is_platform_admin)
         VALUES ($1, $2, $3, $4, $5) RETURNING *",
    )
    .bind(u.id)
    .bind(u.username)
    .bind(u.email)
    .bind(u.password_hash)
    .bind(u.is_platform_admin)
    .fetch_one(db)
    .await
}

pub async fn get<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Looks a user up by username or (case-insensitively) email.
pub async fn find_by_login<'e>(
    db: impl PgExecutor<'e>,
    login: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM users WHERE username = $1 OR lower(email) = lower($1) LIMIT 1")
        .bind(login)
        .fetch_optional(db)
        .await
}

/// Serialises bootstrapping across replicas until the transaction ends, so exactly one of them
/// creates the first administrator.
pub async fn lock_bootstrap<'e>(db: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(7460911)")
        .execute(db)
        .await?;
    Ok(())
}

pub async fn count<'e>(db: impl PgExecutor<'e>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(db)
        .await
}

pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    limit: i64,
    offset: i64,
) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2")
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await
}

#[derive(Default)]
pub struct UserChanges<'a> {
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub is_platform_admin: Option<bool>,
    pub disabled: Option<bool>,
}

pub async fn update<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    c: &UserChanges<'_>,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE users SET
            email = coalesce($2, email),
            password_hash = coalesce($3, password_hash),
            is_platform_admin = coalesce($4, is_platform_admin),
            disabled = coalesce($5, disabled),
            updated_at = now()
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(c.email)
    .bind(c.password_hash)
    .bind(c.is_platform_admin)
    .bind(c.disabled)
    .fetch_optional(db)
    .await
}

pub async fn record_login<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    new_hash: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET last_login_at = now(), password_hash = coalesce($2, password_hash) WHERE id = $1")
        .bind(id)
        .bind(new_hash)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn delete<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        > 0)
}

/// Number of enabled platform admins other than `except`, to refuse removing the last one.
pub async fn other_active_admins<'e>(
    db: impl PgExecutor<'e>,
    except: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM users WHERE is_platform_admin AND NOT disabled AND id <> $1",
    )
    .bind(except)
    .fetch_one(db)
    .await
}
