//! What one sample of a running instance reads: gauges as they are, and cumulative counters
//! that the caller turns into rates by comparing consecutive samples (an engine keeps no
//! history).

use chrono::{DateTime, Utc};

/// One reading of an instance, taken in one round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// When the instance took it (its own clock: rates divide by the difference of two).
    pub at: DateTime<Utc>,
    /// Client connections, without the engine's own sampling connection.
    pub connections_total: i64,
    pub connections_active: i64,
    pub connections_idle_in_transaction: i64,
    pub max_connections: i64,
    /// Cumulative since the server's statistics were last reset (they go back to 0 then).
    pub commits: i64,
    pub rollbacks: i64,
    pub rows_read: i64,
    pub rows_written: i64,
    pub blocks_hit: i64,
    pub blocks_read: i64,
    /// The WAL position, in bytes from the start: grows with every write.
    pub wal_bytes: i64,
    /// Only when asked for: summing the databases' sizes walks their files.
    pub database_size_bytes: Option<i64>,
    /// Replay lag of the slowest replica, or of this server if it is one; None without
    /// replication.
    pub replication_lag_seconds: Option<f64>,
}
