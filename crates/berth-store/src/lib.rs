//! Berth's state in PostgreSQL: connecting, migrating, and the queries for each aggregate, one
//! module per table family. Functions take any executor so the app layer decides what runs in
//! one transaction. Only plain SQL lives here; decisions belong to the app layer.
//!
//! The table families are grouped as the app layer is (`berth-core`):
//! * [`identity`]: users, projects and memberships (core's `tenancy`);
//! * [`credentials`]: grants and refresh tokens, API keys, clients, user tokens, device
//!   authorizations, signing keys, sign-in throttling (core's `auth`);
//! * [`fleet`]: instances, jobs, spares, idempotency keys and the certificate authority (core's
//!   `fleet`, `jobs` and `background`);
//! * at the top, what serves every group: [`audit`], [`health`], [`system`], connecting and
//!   migrating, and [`unique_violation`], the one place a unique violation is
//!   recognised.
//!
//! The store also owns the database it stores in: [`system`] runs and supervises Berth's own
//! PostgreSQL when no external one is given, and [`health`] tells everyone whether the store
//! answers right now.

pub mod audit;
pub mod credentials;
pub mod fleet;
pub mod health;
pub mod identity;
pub mod system;

use std::time::Duration;

pub use sqlx::postgres::PgConnectOptions;
pub use sqlx::{PgPool, Postgres, Transaction};

/// Channel on which credential revocations are announced to every replica.
pub const REVOCATION_CHANNEL: &str = "berth_revocations";

/// How long a query waits for a pooled connection. Short, so that a store that stopped
/// answering (before [`health`] notices) or a saturated pool costs a request a few seconds, not
/// ten.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

pub use health::StoreHealth;

/// Opens a pool against `url` and brings the schema up to date.
pub async fn connect(
    options: PgConnectOptions,
    max_connections: u32,
) -> Result<PgPool, sqlx::Error> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        // A connection whose server died (or restarted) is found out and replaced before it is
        // handed to a query, so the pool heals by itself once the store is back.
        .test_before_acquire(true)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The constraint (or unique index) a write broke, when `err` is a unique violation. The one
/// place a unique violation is recognised: the app layer maps the name to what clashed.
pub fn unique_violation(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
            Some(db.constraint().unwrap_or(""))
        }
        _ => None,
    }
}

/// Tells every replica (including this one) that a credential was revoked.
pub async fn announce_revocation<'e>(
    db: impl sqlx::PgExecutor<'e>,
    what: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(REVOCATION_CHANNEL)
        .bind(what)
        .execute(db)
        .await?;
    Ok(())
}

/// Listens on `channel` on a connection of its own that does not reconnect by itself: a lost
/// connection ends the listener's stream, so its owner learns that notifications may have been
/// missed (and waits for the store before listening again).
pub async fn listen(db: &PgPool, channel: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(db).await?;
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

/// Deletes rows that can no longer matter: expired device authorizations, revoked-token
/// markers past their token's expiry, old failure counters and sign-in reservations, and
/// long-expired grants.
pub async fn prune_expired(db: &PgPool) -> Result<(), sqlx::Error> {
    for sql in [
        "DELETE FROM device_authorizations WHERE expires_at < now() - interval '1 day'",
        "DELETE FROM revoked_access_tokens WHERE expires_at < now()",
        "DELETE FROM login_failures WHERE window_start < now() - interval '1 day'",
        "DELETE FROM login_attempts WHERE expires_at < now() - interval '1 hour'",
        "DELETE FROM grants WHERE expires_at < now() - interval '7 days'",
        "DELETE FROM idempotency_keys WHERE created_at < now() - interval '1 day'",
    ] {
        sqlx::query(sql).execute(db).await?;
    }
    Ok(())
}
