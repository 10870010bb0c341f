//! Sampling a local instance's statistics. Each running instance keeps one connection of
//! Berth's (superuser `postgres`, database `postgres`, `application_name = berth-stats`, over
//! its private socket) between samples: a new connection per sample would fork and start a
//! backend every time, which at a thousand instances costs more than the sampling itself. The
//! connection is dropped when a sample fails and when the instance is stopped or destroyed;
//! the next sample connects again. One round trip reads everything; the statement is prepared
//! once per connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_pg::socket_dir_for;
use sqlx::{ConnectOptions, Row};
use uuid::Uuid;

use super::{LocalEngine, SUPERUSER};
use crate::{EngineError, InstanceSpec, Sample};

/// A sample that takes longer than this is abandoned (and its connection dropped).
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);
pub(super) const APPLICATION_NAME: &str = "berth-stats";

/// Everything in one statement. Connections are client backends other than this one; the
/// counters are sums over every database; the WAL position is the replay position on a
/// replica; `$1` asks for the databases' sizes (not the templates'), which stats every file of
/// them: about 5 ms of the backend's time, against 0.15 ms for the rest (bench/stats.sh).
const SAMPLE_SQL: &str = "
SELECT clock_timestamp() AS at,
       a.total, a.active, a.idle_in_transaction,
       current_setting('max_connections')::bigint AS max_connections,
       d.commits, d.rollbacks, d.rows_read, d.rows_written, d.blocks_hit, d.blocks_read,
       coalesce(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
                     ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn, 0)::bigint AS wal_bytes,
       CASE WHEN $1 THEN (SELECT sum(pg_database_size(oid))::bigint FROM pg_database
                         WHERE NOT datistemplate) END
           AS database_size,
       CASE WHEN pg_is_in_recovery()
            THEN extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8
            ELSE (SELECT extract(epoch FROM max(replay_lag))::float8 FROM pg_stat_replication)
       END AS replication_lag
FROM (SELECT count(*) AS total,
             count(*) FILTER (WHERE state = 'active') AS active,
             count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction
      FROM pg_stat_activity
      WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()) a,
     (SELECT coalesce(sum(xact_commit), 0)::bigint AS commits,
             coalesce(sum(xact_rollback), 0)::bigint AS rollbacks,
             coalesce(sum(tup_returned), 0)::bigint AS rows_read,
             coalesce(sum(tup_inserted + tup_updated + tup_deleted), 0)::bigint AS rows_written,
             coalesce(sum(blks_hit), 0)::bigint AS blocks_hit,
             coalesce(sum(blks_read), 0)::bigint AS blocks_read
      FROM pg_stat_database) d";

type Slot = Arc<tokio::sync::Mutex<Option<sqlx::PgConnection>>>;

/// The sampling connection of each instance that has one.
#[derive(Default)]
pub(super) struct Samplers {
    slots: std::sync::Mutex<HashMap<Uuid, Slot>>,
}

impl Samplers {
    fn slot(&self, id: Uuid) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(id).or_default().clone()
    }

    /// Drops the instance's sampling connection (it is being stopped or destroyed).
    pub(super) fn forget(&self, id: Uuid) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.remove(&id);
    }
}

impl LocalEngine {
    pub(super) async fn sample_instance(
        &self,
        s: &InstanceSpec,
        database_size: bool,
    ) -> Result<Sample, EngineError> {
        let slot = self.samplers.slot(s.id);
        let mut conn = slot.lock().await;
        let result = tokio::time::timeout(SAMPLE_TIMEOUT, async {
            // A kept connection may have been cut meanwhile (the server restarted under it):
            // then one fresh try, so a restart costs no sample.
            if let Some(c) = conn.as_mut() {
                if let Ok(sample) = read_sample(c, database_size).await {
                    return Ok(sample);
                }
            }
            *conn = Some(self.sampling_connection(s).await?);
            let c = conn.as_mut().expect("connected above");
            read_sample(c, database_size).await
        })
        .await
        .unwrap_or_else(|_| {
            Err(EngineError::Failed(format!(
                "sampling took longer than {} s",
                SAMPLE_TIMEOUT.as_secs()
            )))
        });
        if result.is_err() {
            // A broken or stuck connection is not reused; the next sample connects again.
            *conn = None;
        }
        result
    }

    async fn sampling_connection(
        &self,
        s: &InstanceSpec,
    ) -> Result<sqlx::PgConnection, EngineError> {
        let socket = socket_dir_for(&self.dir(s.id).join("run"));
        Ok(sqlx::postgres::PgConnectOptions::new()
            .host(&socket.to_string_lossy())
            .port(s.port)
            .username(SUPERUSER)
            .database("postgres")
            .application_name(APPLICATION_NAME)
            // A kept session: users' idle_session_timeout must not end it.
            .options(super::UNLIMITED_SESSION)
            .disable_statement_logging()
            .connect()
            .await?)
    }
}

async fn read_sample(
    conn: &mut sqlx::PgConnection,
    database_size: bool,
) -> Result<Sample, EngineError> {
    let row = sqlx::query(SAMPLE_SQL)
        .bind(database_size)
        .fetch_one(conn)
        .await?;
    Ok(Sample {
        at: row.try_get("at")?,
        connections_total: row.try_get("total")?,
        connections_active: row.try_get("active")?,
        connections_idle_in_transaction: row.try_get("idle_in_transaction")?,
        max_connections: row.try_get("max_connections")?,
        commits: row.try_get("commits")?,
        rollbacks: row.try_get("rollbacks")?,
        rows_read: row.try_get("rows_read")?,
        rows_written: row.try_get("rows_written")?,
        blocks_hit: row.try_get("blocks_hit")?,
        blocks_read: row.try_get("blocks_read")?,
        wal_bytes: row.try_get("wal_bytes")?,
        database_size_bytes: row.try_get("database_size")?,
        replication_lag_seconds: row.try_get("replication_lag")?,
    })
}
