//! What Berth shows of how an instance is doing: statistics over time (sampled on an interval,
//! served as series per step) and its PostgreSQL log, parsed into entries.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How the points of one step are combined from the samples in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The mean of the samples (rates, ratios, connection counts).
    Avg,
    /// The largest sample (sizes, limits, lag: the worst moment counts).
    Max,
}

/// One statistic Berth samples, with its unit and how steps combine it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricInfo {
    pub name: &'static str,
    pub unit: &'static str,
    pub aggregation: Aggregation,
    pub help: &'static str,
}

const fn metric(
    name: &'static str,
    unit: &'static str,
    aggregation: Aggregation,
    help: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        unit,
        aggregation,
        help,
    }
}

/// Every statistic, in the order the API lists them (also the column order of the store).
pub const METRICS: &[MetricInfo] = &[
    metric(
        "connections_total",
        "connections",
        Aggregation::Avg,
        "Client connections (Berth's own sampling connection not counted)",
    ),
    metric(
        "connections_active",
        "connections",
        Aggregation::Avg,
        "Client connections running a statement",
    ),
    metric(
        "connections_idle_in_transaction",
        "connections",
        Aggregation::Avg,
        "Client connections idle inside an open transaction",
    ),
    metric(
        "connections_max",
        "connections",
        Aggregation::Max,
        "max_connections",
    ),
    metric(
        "commits_per_second",
        "transactions/s",
        Aggregation::Avg,
        "Transactions committed per second",
    ),
    metric(
        "rollbacks_per_second",
        "transactions/s",
        Aggregation::Avg,
        "Transactions rolled back per second",
    ),
    metric(
        "rows_read_per_second",
        "rows/s",
        Aggregation::Avg,
        "Rows read per second (returned by sequential and index scans)",
    ),
    metric(
        "rows_written_per_second",
        "rows/s",
        Aggregation::Avg,
        "Rows inserted, updated or deleted per second",
    ),
    metric(
        "cache_hit_ratio",
        "ratio",
        Aggregation::Avg,
        "Share of block reads served from shared buffers (0 to 1)",
    ),
    metric(
        "database_size_bytes",
        "bytes",
        Aggregation::Max,
        "Size of all the instance's databases",
    ),
    metric(
        "wal_bytes_per_second",
        "bytes/s",
        Aggregation::Avg,
        "WAL generated per second",
    ),
    metric(
        "replication_lag_seconds",
        "seconds",
        Aggregation::Max,
        "Replay lag of the slowest replica (or of this one, on a replica); null without replication",
    ),
];

/// `GET /api/v1/instances/{id}/stats`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Comma-separated metric names (default: all of them).
    #[param(example = "connections_total,commits_per_second")]
    pub metric: Option<String>,
    /// Start of the range, RFC 3339 (default: an hour before `to`).
    #[param(example = "2025-01-01T00:00:00Z")]
    pub from: Option<String>,
    /// End of the range, RFC 3339 (default: now).
    #[param(example = "2025-01-01T01:00:00Z")]
    pub to: Option<String>,
    /// Seconds per point (default: the range over about 120 points, at least the sampling
    /// interval). At most 1,000 points per series.
    #[param(minimum = 1, example = 60)]
    pub step: Option<i64>,
}

/// One point of a series: the start of its step and the combined value (null: no sample in
/// that step, or none that could say, such as a rate right after a restart).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsPoint {
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StatsSeries {
    pub metric: String,
    pub unit: String,
    pub aggregation: Aggregation,
    /// One per step from `from`, oldest first.
    pub points: Vec<StatsPoint>,
}

/// Series of an instance over a range.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceStats {
    pub instance_id: Uuid,
    /// The range, `from` aligned down to a multiple of the step.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub step_seconds: i64,
    /// How often Berth samples the instance.
    pub interval_seconds: i64,
    pub series: Vec<StatsSeries>,
}

/// `GET /api/v1/instances/{id}/logs`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// Entries logged at or after this moment, RFC 3339 (without `since` or `cursor`: the
    /// most recent `limit` entries).
    #[param(example = "2025-01-01T00:00:00Z")]
    pub since: Option<String>,
    /// Continue after the entries already read: the `cursor` of an earlier answer.
    pub cursor: Option<String>,
    /// Entries per page (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000, default = 100)]
    pub limit: Option<i64>,
}

/// One entry of an instance's PostgreSQL log; the lines PostgreSQL adds to it (DETAIL, HINT,
/// CONTEXT, STATEMENT, QUERY) are attached to it. Host paths read `<instances>`, `<socket>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    pub time: DateTime<Utc>,
    /// `LOG`, `WARNING`, `ERROR`, `FATAL`, `PANIC`, `INFO`, `NOTICE`, `DEBUG1`…
    pub severity: String,
    /// The server process that logged it.
    pub pid: Option<i32>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub statement: Option<String>,
}

/// A page of log entries, oldest first. `next` is the URL of the following page while more
/// entries are already there; `cursor` always marks the position after this page, so polling
/// with it (`--follow`) returns each entry once, even when several share a timestamp.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    /// Entries from this page's start to the end of the log (this page's and those after it).
    pub count: i64,
    pub next: Option<String>,
    /// Always null: pages go forward (ask with an earlier `since` to go back).
    pub previous: Option<String>,
    pub results: Vec<LogEntry>,
    pub cursor: String,
}
