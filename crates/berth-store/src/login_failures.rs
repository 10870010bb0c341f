//! The `login_failures` table: fixed-window counters, incremented atomically in one statement so
//! concurrent attempts (on any replica) are all counted.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// Adds one failure, starting a new window if the old one is older than `window_secs`.
pub async fn increment<'e>(
    db: impl PgExecutor<'e>,
    key: &str,
    window_secs: i64,
) -> Result<(i32, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO login_failures (key, failures, window_start) VALUES ($1, 1, now())
         ON CONFLICT (key) DO UPDATE SET
            failures = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2)
                            THEN 1 ELSE login_failures.failures + 1 END,
            window_start = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2)
                            THEN now() ELSE login_failures.window_start END
         RETURNING failures, window_start",
    )
    .bind(key)
    .bind(window_secs as f64)
    .fetch_one(db)
    .await
}

pub async fn clear<'e>(db: impl PgExecutor<'e>, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes back one counted attempt (it succeeded, or was refused before being tried).
pub async fn decrement<'e>(db: impl PgExecutor<'e>, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE login_failures SET failures = greatest(failures - 1, 0) WHERE key = $1")
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}
