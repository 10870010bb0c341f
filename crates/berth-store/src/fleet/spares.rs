//! The `spares` table: pre-started clusters waiting to become instances.

use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpareRow {
    pub id: Uuid,
    pub version: String,
    pub memory: String,
    pub port: i32,
    pub region: String,
    pub state: SpareState,
    /// Whether it holds a first backup (then its instance is restorable from its first second).
    pub backed_up: bool,
}

/// Where a spare is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum SpareState {
    /// Being provisioned: not claimable, and discarded if Berth restarts meanwhile.
    Warming,
    /// Accepting connections: claimable.
    Ready,
    /// Ready, and being backed up: not claimable until the backup is done.
    BackingUp,
}

impl SpareRow {
    /// Started and complete (whether or not a backup is being taken of it).
    pub fn is_ready(&self) -> bool {
        self.state != SpareState::Warming
    }
}

/// Takes a ready spare of this shape out of the pool, one with its backup first (the caller's
/// transaction decides).
pub async fn claim<'e>(
    db: impl PgExecutor<'e>,
    region: &str,
    version: &str,
    memory: &str,
) -> Result<Option<SpareRow>, sqlx::Error> {
    sqlx::query_as(
        "DELETE FROM spares WHERE id = (
            SELECT id FROM spares WHERE region = $1 AND version = $2 AND memory = $3 AND state = 'ready'
            ORDER BY backed_up DESC, created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING *",
    )
    .bind(region)
    .bind(version)
    .bind(memory)
    .fetch_optional(db)
    .await
}

/// A spare to make, on a port the caller claimed (`ports::try_claim`).
pub struct NewSpare<'a> {
    pub id: Uuid,
    pub region: &'a str,
    pub version: &'a str,
    pub memory: &'a str,
    pub port: i32,
}

pub async fn insert<'e>(db: impl PgExecutor<'e>, n: &NewSpare<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO spares (id, region, version, memory, port) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(n.id)
    .bind(n.region)
    .bind(n.version)
    .bind(n.memory)
    .bind(n.port)
    .execute(db)
    .await?;
    Ok(())
}

/// A warming spare is ready (false: it is not in the pool any more).
pub async fn mark_ready<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE spares SET state = 'ready' WHERE id = $1 AND state = 'warming'")
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Keeps a ready spare from being claimed while it is backed up (false: it was claimed).
pub async fn begin_backup<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE spares SET state = 'backing_up' WHERE id = $1 AND state = 'ready'")
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Puts a spare back in the pool after its backup (or after a backup a restart cut short).
pub async fn end_backup<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    backed_up: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE spares SET state = 'ready', backed_up = backed_up OR $2
         WHERE id = $1 AND state = 'backing_up'",
    )
    .bind(id)
    .bind(backed_up)
    .execute(db)
    .await?;
    Ok(())
}

/// Takes a ready spare out of the pool to remove it (false: a create claimed it first).
pub async fn take<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM spares WHERE id = $1 AND state = 'ready'")
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn delete<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM spares WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn all<'e>(db: impl PgExecutor<'e>, region: &str) -> Result<Vec<SpareRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM spares WHERE region = $1 ORDER BY created_at")
        .bind(region)
        .fetch_all(db)
        .await
}
