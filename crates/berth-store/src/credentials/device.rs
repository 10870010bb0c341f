//! The `device_authorizations` table (RFC 8628).

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeviceRow {
    pub id: Uuid,
    pub user_code: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub interval_secs: i32,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub status: String,
    pub user_id: Option<Uuid>,
}

const COLUMNS: &str = "id, user_code, client_id, scopes, audience, created_at, expires_at, interval_secs, last_polled_at, status, user_id";

pub struct NewDevice<'a> {
    pub id: Uuid,
    pub device_code_digest: &'a [u8],
    pub user_code: &'a str,
    pub client_id: &'a str,
    pub scopes: &'a [String],
    pub audience: Option<&'a str>,
    pub expires_at: DateTime<Utc>,
    pub interval_secs: i32,
}

pub async fn insert<'e>(db: impl PgExecutor<'e>, d: &NewDevice<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO device_authorizations (id, device_code_digest, user_code, client_id, scopes, audience, expires_at, interval_secs)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(d.id)
    .bind(d.device_code_digest)
    .bind(d.user_code)
    .bind(d.client_id)
    .bind(d.scopes)
    .bind(d.audience)
    .bind(d.expires_at)
    .bind(d.interval_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// Finds a device authorization by device code and locks it for this poll.
pub async fn find_for_poll<'e>(
    db: impl PgExecutor<'e>,
    digest: &[u8],
) -> Result<Option<DeviceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM device_authorizations WHERE device_code_digest = $1 FOR UPDATE"
    ))
    .bind(digest)
    .fetch_optional(db)
    .await
}

/// The pending authorization a user code names, if it has not expired by `now` (the app's
/// clock, not the database's).
pub async fn find_pending_by_user_code<'e>(
    db: impl PgExecutor<'e>,
    user_code: &str,
    now: DateTime<Utc>,
) -> Result<Option<DeviceRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM device_authorizations WHERE user_code = $1 AND status = 'pending' AND expires_at > $2 FOR UPDATE"
    ))
    .bind(user_code)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Records a poll at `now` (the app's clock, which the next poll's cadence is measured on).
pub async fn record_poll<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    interval_secs: i32,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE device_authorizations SET last_polled_at = $3, interval_secs = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(interval_secs)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_status<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    status: &str,
    user: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE device_authorizations SET status = $2, user_id = coalesce($3, user_id),
            decided_at = CASE WHEN $2 IN ('approved', 'denied') THEN now() ELSE decided_at END
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(user)
    .execute(db)
    .await?;
    Ok(())
}
