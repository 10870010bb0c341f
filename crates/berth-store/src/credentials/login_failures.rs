//! Sign-in throttling state: `login_failures` holds fixed-window counters of *verified* failures
//! per key (an account or a client address), `login_attempts` the reservations of attempts whose
//! password is being checked right now. Reserving locks each key's counter row, so on any number
//! of replicas the failures plus the checks in flight never exceed a key's limit.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

/// One key an attempt counts against, and how many failures it may have per window.
#[derive(Debug, Clone, Copy)]
pub struct Limit<'a> {
    pub key: &'a str,
    pub max: i32,
}

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may be checked; its reservations are held until [`finish`].
    Reserved,
    /// A key has used up its failures; the window ends at `until`.
    LockedOut { until: DateTime<Utc> },
    /// Failures plus checks in flight reach a key's limit: the answer depends on attempts that
    /// have not finished yet.
    Pending,
}

/// Reserves a check of attempt `id` against every limit (in the order given, which must be the
/// same for every caller), or says why not. Reservations expire after `hold_secs`.
pub async fn reserve(
    db: &PgPool,
    id: Uuid,
    limits: &[Limit<'_>],
    window_secs: i64,
    hold_secs: i64,
) -> Result<Reservation, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut answer = Reservation::Reserved;
    for limit in limits {
        // Locks the key's row (creating it) for the rest of the transaction, starting a new
        // window if the old one is over.
        let (failures, window_start): (i32, DateTime<Utc>) = sqlx::query_as(
            "INSERT INTO login_failures (key, failures, window_start) VALUES ($1, 0, now())
             ON CONFLICT (key) DO UPDATE SET
                failures = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2)
                                THEN 0 ELSE login_failures.failures END,
                window_start = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2)
                                THEN now() ELSE login_failures.window_start END
             RETURNING failures, window_start",
        )
        .bind(limit.key)
        .bind(window_secs as f64)
        .fetch_one(&mut *tx)
        .await?;
        if failures >= limit.max {
            let until = window_start + chrono::Duration::seconds(window_secs);
            answer = match answer {
                Reservation::LockedOut { until: other } => Reservation::LockedOut {
                    until: other.max(until),
                },
                _ => Reservation::LockedOut { until },
            };
            continue;
        }
        let in_flight: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM login_attempts WHERE key = $1 AND expires_at > now()",
        )
        .bind(limit.key)
        .fetch_one(&mut *tx)
        .await?;
        if i64::from(failures) + in_flight >= i64::from(limit.max) {
            if answer == Reservation::Reserved {
                answer = Reservation::Pending;
            }
            continue;
        }
        sqlx::query(
            "INSERT INTO login_attempts (key, id, expires_at)
             VALUES ($1, $2, now() + make_interval(secs => $3))",
        )
        .bind(limit.key)
        .bind(id)
        .bind(hold_secs as f64)
        .execute(&mut *tx)
        .await?;
    }
    if answer == Reservation::Reserved {
        tx.commit().await?;
    }
    Ok(answer)
}

/// How a reserved attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The password was wrong: every key counts a failure.
    Failed,
    /// The password was right: `clear`'s failures are forgotten, nothing is counted.
    Succeeded { clear: &'a str },
    /// The check did not finish (overload, cancelled request): nothing is counted.
    Abandoned,
}

/// Releases attempt `id`'s reservations and records its outcome. Returns false when a
/// reservation had expired first: the check then outlived its slot, so its answer must not be
/// given (and nothing is counted).
pub async fn finish(
    db: &PgPool,
    id: Uuid,
    keys: usize,
    outcome: Outcome<'_>,
    window_secs: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let rows = sqlx::query(
        "DELETE FROM login_attempts WHERE id = $1 RETURNING key, expires_at > now() AS live",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let held = rows.len() == keys && rows.iter().all(|r| r.get::<bool, _>("live"));
    if held {
        match outcome {
            Outcome::Failed => {
                // Same order as `reserve` (the rows come back in no particular order).
                let mut keys: Vec<String> = rows.iter().map(|r| r.get("key")).collect();
                keys.sort_by_key(|k| k.starts_with("ip:"));
                for key in keys {
                    increment(&mut *tx, &key, window_secs).await?;
                }
            }
            Outcome::Succeeded { clear } => {
                sqlx::query("DELETE FROM login_failures WHERE key = $1")
                    .bind(clear)
                    .execute(&mut *tx)
                    .await?;
            }
            Outcome::Abandoned => {}
        }
    }
    tx.commit().await?;
    Ok(held)
}

/// Adds one failure, starting a new window if the old one is older than `window_secs`.
async fn increment<'e>(
    db: impl sqlx::PgExecutor<'e>,
    key: &str,
    window_secs: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO login_failures (key, failures, window_start) VALUES ($1, 1, now())
         ON CONFLICT (key) DO UPDATE SET
            failures = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2)
                            THEN 1 ELSE login_failures.failures + 1 END,
            window_start = CASE WHEN login_failures.window_start < now() - make_interval(secs => $2)
                            THEN now() ELSE login_failures.window_start END",
    )
    .bind(key)
    .bind(window_secs as f64)
    .execute(db)
    .await?;
    Ok(())
}
