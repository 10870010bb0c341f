//! The `instance_stats` table: one batch insert per sampling round, series aggregated per step,
//! and the maintenance pass (downsampling, retention, rows of deleted instances).
//!
//! The statistic columns are named like the API's metrics (`berth_types::METRICS`); queries are
//! built only from that list, never from the caller's text.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Row};
use uuid::Uuid;

use berth_types::{Aggregation, METRICS};

/// Raw rows older than a day become averages over buckets this long.
pub const DOWNSAMPLE_SECS: i64 = 300;

/// One round's samples, column by column: `values[m][i]` is metric `METRICS[m]` of
/// `instances[i]`.
pub struct Round {
    pub at: DateTime<Utc>,
    pub instances: Vec<Uuid>,
    pub values: Vec<Vec<Option<f64>>>,
}

fn columns() -> String {
    METRICS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes a round in one statement (another replica's sample of the same moment is kept).
pub async fn insert_round<'e>(db: impl PgExecutor<'e>, round: &Round) -> Result<u64, sqlx::Error> {
    if round.instances.is_empty() {
        return Ok(0);
    }
    let arrays: Vec<String> = METRICS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let ty = if m.name == "database_size_bytes" {
                "float8"
            } else {
                "float4"
            };
            format!("${}::{ty}[]", i + 3)
        })
        .collect();
    // unnest's columns come in its arguments' order: the instance, then the metrics.
    let sql = format!(
        "INSERT INTO instance_stats (instance_id, {}, at)
         SELECT u.*, $2::timestamptz FROM unnest($1::uuid[], {}) AS u
         ON CONFLICT DO NOTHING",
        columns(),
        arrays.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(&round.instances).bind(round.at);
    for (i, m) in METRICS.iter().enumerate() {
        let column = &round.values[i];
        q = if m.name == "database_size_bytes" {
            q.bind(column.clone())
        } else {
            q.bind(
                column
                    .iter()
                    .map(|v| v.map(|x| x as f32))
                    .collect::<Vec<Option<f32>>>(),
            )
        };
    }
    Ok(q.execute(db).await?.rows_affected())
}

/// One bucket of a series query: its start and a value per asked metric.
pub struct Bucket {
    pub at: DateTime<Utc>,
    pub values: Vec<Option<f64>>,
}

/// The instance's rows in `[from, to)` combined per `step_secs` bucket (buckets start at
/// `from` + k·step), for `metrics` (indexes into `METRICS`). Buckets without a row are absent.
pub async fn series<'e>(
    db: impl PgExecutor<'e>,
    instance: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    step_secs: i64,
    metrics: &[usize],
) -> Result<Vec<Bucket>, sqlx::Error> {
    let aggregates: Vec<String> = metrics
        .iter()
        .map(|&i| {
            let m = &METRICS[i];
            let f = match m.aggregation {
                Aggregation::Avg => "avg",
                Aggregation::Max => "max",
            };
            format!("{f}({})::float8", m.name)
        })
        .collect();
    let sql = format!(
        "SELECT date_bin(make_interval(secs => $4), at, $2) AS bucket, {}
         FROM instance_stats WHERE instance_id = $1 AND at >= $2 AND at < $3
         GROUP BY bucket ORDER BY bucket",
        if aggregates.is_empty() {
            "1".to_owned()
        } else {
            aggregates.join(", ")
        }
    );
    let rows = sqlx::query(&sql)
        .bind(instance)
        .bind(from)
        .bind(to)
        .bind(step_secs as f64)
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Bucket {
                at: r.try_get(0)?,
                values: (0..metrics.len())
                    .map(|i| r.try_get(i + 1))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

/// What a maintenance pass did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Maintained {
    pub downsampled: u64,
    pub expired: u64,
}

/// In one transaction: raw rows older than `raw_until` (a multiple of the bucket length)
/// become one averaged row per instance and 5-minute bucket; every row older than
/// `keep_from` goes, and so do the rows of deleted instances.
pub async fn maintain(
    db: &sqlx::PgPool,
    raw_until: DateTime<Utc>,
    keep_from: DateTime<Utc>,
) -> Result<Maintained, sqlx::Error> {
    let mut tx = db.begin().await?;
    let averages: Vec<String> = METRICS.iter().map(|m| format!("avg({})", m.name)).collect();
    sqlx::query(&format!(
        "INSERT INTO instance_stats (instance_id, at, downsampled, {})
         SELECT instance_id, date_bin(make_interval(secs => {DOWNSAMPLE_SECS}), at, 'epoch'), true, {}
         FROM instance_stats WHERE NOT downsampled AND at < $1
         GROUP BY 1, 2
         ON CONFLICT DO NOTHING",
        columns(),
        averages.join(", ")
    ))
    .bind(raw_until)
    .execute(&mut *tx)
    .await?;
    let downsampled = sqlx::query("DELETE FROM instance_stats WHERE NOT downsampled AND at < $1")
        .bind(raw_until)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    let expired = sqlx::query("DELETE FROM instance_stats WHERE at < $1")
        .bind(keep_from)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    // Instances deleted before the retention began have no rows left (the delete above).
    let gone = sqlx::query(
        "DELETE FROM instance_stats WHERE instance_id IN
            (SELECT id FROM instances WHERE deleted_at >= $1 - interval '1 day')",
    )
    .bind(keep_from)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Maintained {
        downsampled,
        expired: expired + gone,
    })
}
