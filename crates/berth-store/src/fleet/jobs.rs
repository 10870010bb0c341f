//! The `jobs` table: long operations, claimed by runners with `FOR UPDATE SKIP LOCKED`, and
//! the notification channel that wakes runners when one is enqueued.

use berth_types::{JobState, JobType};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, QueryBuilder};
use uuid::Uuid;

/// Channel on which new jobs are announced to every replica's runners.
pub const CHANNEL: &str = "berth_jobs";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    #[sqlx(rename = "type")]
    pub job_type: JobType,
    pub state: JobState,
    pub instance_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub region: String,
    pub payload: serde_json::Value,
    pub step: Option<String>,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub deadline_at: Option<DateTime<Utc>>,
    pub progress_percent: Option<f32>,
    pub bytes_done: Option<i64>,
    pub bytes_total: Option<i64>,
    /// The workflow that started the job, if one did.
    pub workflow_id: Option<Uuid>,
    /// `[{"name", "attempt", "started_at"}]`, in the order the steps began.
    pub steps: serde_json::Value,
}

const COLUMNS: &str =
    "id, type, state, instance_id, project_id, region, payload, step, attempts, error, created_by,
    created_at, started_at, finished_at, deadline_at, progress_percent, bytes_done, bytes_total, workflow_id, steps";

pub struct NewJob<'a> {
    pub id: Uuid,
    pub job_type: JobType,
    pub instance_id: Uuid,
    pub project_id: Uuid,
    pub region: &'a str,
    pub payload: serde_json::Value,
    pub created_by: Option<Uuid>,
    pub workflow_id: Option<Uuid>,
}

/// Inserts a pending job. Fails with a unique violation when the instance already has an
/// active job (see `active_for_instance`); callers use [`enqueue`].
async fn insert<'e>(db: impl PgExecutor<'e>, j: &NewJob<'_>) -> Result<JobRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO jobs (id, type, instance_id, project_id, region, payload, created_by, workflow_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(j.id)
    .bind(j.job_type)
    .bind(j.instance_id)
    .bind(j.project_id)
    .bind(j.region)
    .bind(&j.payload)
    .bind(j.created_by)
    .bind(j.workflow_id)
    .fetch_one(db)
    .await
}

/// What enqueueing a job came to.
pub enum Enqueued {
    Inserted(JobRow),
    /// The instance already has an active job (None if it finished meanwhile).
    Busy(Option<JobRow>),
}

/// Inserts a pending job unless the instance already has an active one, without spoiling the
/// caller's transaction either way (a savepoint absorbs the unique violation).
pub async fn enqueue(conn: &mut PgConnection, j: &NewJob<'_>) -> Result<Enqueued, sqlx::Error> {
    sqlx::query("SAVEPOINT enqueue").execute(&mut *conn).await?;
    match insert(&mut *conn, j).await {
        Ok(row) => {
            sqlx::query("RELEASE SAVEPOINT enqueue")
                .execute(&mut *conn)
                .await?;
            Ok(Enqueued::Inserted(row))
        }
        Err(e) if crate::unique_violation(&e).is_some() => {
            sqlx::query("ROLLBACK TO SAVEPOINT enqueue")
                .execute(&mut *conn)
                .await?;
            // The job in the way: another backup for a backup, else the instance's operation.
            let blocking = if j.job_type == JobType::Backup {
                active_of_type(&mut *conn, j.instance_id, JobType::Backup).await?
            } else {
                active_for_instance(&mut *conn, j.instance_id).await?
            };
            Ok(Enqueued::Busy(blocking))
        }
        Err(e) => Err(e),
    }
}

/// Wakes the runners of every replica (through `LISTEN` on [`CHANNEL`]).
pub async fn announce<'e>(db: impl PgExecutor<'e>) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHANNEL)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn get<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn active_for_instance<'e>(
    db: impl PgExecutor<'e>,
    instance: Uuid,
) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE instance_id = $1 AND state IN ('PENDING', 'STARTED')
         ORDER BY type = 'backup', created_at LIMIT 1"
    ))
    .bind(instance)
    .fetch_optional(db)
    .await
}

/// The instance's active job of one type.
pub async fn active_of_type<'e>(
    db: impl PgExecutor<'e>,
    instance: Uuid,
    job_type: JobType,
) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE instance_id = $1 AND type = $2
           AND state IN ('PENDING', 'STARTED')"
    ))
    .bind(instance)
    .bind(job_type)
    .fetch_optional(db)
    .await
}

/// Claims the next pending job of `region` for `runner`, or none: creates first (someone waits
/// for each), then the oldest. `only` limits the claim to one kind (a lane of runners of its
/// own). Only kinds this build knows are claimed: a job of a newer kind (enqueued by a newer
/// replica) waits for a runner that can do it.
pub async fn claim<'e>(
    db: impl PgExecutor<'e>,
    region: &str,
    runner: &str,
    only: Option<JobType>,
) -> Result<Option<JobRow>, sqlx::Error> {
    let kinds: Vec<&str> = match only {
        Some(kind) => vec![kind.as_str()],
        None => JobType::ALL.iter().map(|t| t.as_str()).collect(),
    };
    sqlx::query_as(&format!(
        "UPDATE jobs SET state = 'STARTED', started_at = coalesce(started_at, now()), attempts = attempts + 1,
            claimed_by = $2, heartbeat_at = now()
         WHERE id = (SELECT id FROM jobs WHERE state = 'PENDING' AND region = $1 AND type = ANY($3)
                     ORDER BY type <> 'create', created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(region)
    .bind(runner)
    .bind(kinds)
    .fetch_optional(db)
    .await
}

/// Claims this one job for `runner`, if it is still pending and nobody else is claiming it
/// (also in the transaction that enqueues it).
pub async fn claim_id<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    runner: &str,
) -> Result<Option<JobRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE jobs SET state = 'STARTED', started_at = coalesce(started_at, now()), attempts = attempts + 1,
            claimed_by = $2, heartbeat_at = now()
         WHERE id = (SELECT id FROM jobs WHERE id = $1 AND state = 'PENDING' FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(runner)
    .fetch_optional(db)
    .await
}

pub async fn set_step<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    step: &str,
    deadline: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET step = $2, deadline_at = $3, heartbeat_at = now(),
                        progress_percent = NULL, bytes_done = NULL, bytes_total = NULL,
                        steps = steps || jsonb_build_object(
                            'name', $2::text, 'attempt', attempts, 'started_at', now())
                 WHERE id = $1",
    )
    .bind(id)
    .bind(step)
    .bind(deadline)
    .execute(db)
    .await?;
    Ok(())
}

/// Records how far the current step is, where the tool doing it says so.
pub async fn set_progress<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    percent: f32,
    bytes_done: Option<i64>,
    bytes_total: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET progress_percent = $2, bytes_done = $3, bytes_total = $4, heartbeat_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(percent)
    .bind(bytes_done)
    .bind(bytes_total)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn finish<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    state: JobState,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE jobs SET state = $2, error = $3, finished_at = now(), claimed_by = NULL, payload = '{}' WHERE id = $1")
        .bind(id)
        .bind(state)
        .bind(error)
        .execute(db)
        .await?;
    Ok(())
}

/// Jobs a runner of `region` was working on when it stopped (every started job of the region
/// when only one Berth serves it): they go back to pending to be resumed.
pub async fn requeue_interrupted<'e>(
    db: impl PgExecutor<'e>,
    region: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("UPDATE jobs SET state = 'PENDING', claimed_by = NULL WHERE state = 'STARTED' AND region = $1 RETURNING id")
        .bind(region)
        .fetch_all(db)
        .await
}

/// Puts one started job back to pending (its run was cut short by the store going away).
pub async fn requeue<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE jobs SET state = 'PENDING', claimed_by = NULL WHERE id = $1 AND state = 'STARTED'",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Which jobs a list shows. `projects` None means every project (platform admins).
#[derive(Debug, Default, Clone)]
pub struct JobFilter {
    pub projects: Option<Vec<Uuid>>,
    pub job_type: Option<String>,
    pub state: Option<String>,
    pub instance_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

fn push_filter(q: &mut QueryBuilder<'_, sqlx::Postgres>, f: &JobFilter) {
    q.push(" WHERE true");
    if let Some(ps) = &f.projects {
        q.push(" AND project_id = ANY(")
            .push_bind(ps.clone())
            .push(")");
    }
    if let Some(t) = &f.job_type {
        q.push(" AND type = ").push_bind(t.clone());
    }
    if let Some(s) = &f.state {
        q.push(" AND state = ").push_bind(s.clone());
    }
    if let Some(i) = f.instance_id {
        q.push(" AND instance_id = ").push_bind(i);
    }
    if let Some(s) = f.since {
        q.push(" AND created_at >= ").push_bind(s);
    }
    if let Some(u) = f.until {
        q.push(" AND created_at < ").push_bind(u);
    }
}

pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    f: &JobFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<JobRow>, sqlx::Error> {
    let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM jobs"));
    push_filter(&mut q, f);
    q.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    q.build_query_as().fetch_all(db).await
}

pub async fn count<'e>(db: impl PgExecutor<'e>, f: &JobFilter) -> Result<i64, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT count(*) FROM jobs");
    push_filter(&mut q, f);
    q.build_query_scalar().fetch_one(db).await
}

/// Counts of the filtered jobs grouped by one column expression (`type`, `state`, `region`,
/// or the creation day).
pub async fn counts_by<'e>(
    db: impl PgExecutor<'e>,
    f: &JobFilter,
    group: JobGroup,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let expr = match group {
        JobGroup::Type => "type",
        JobGroup::State => "state",
        JobGroup::Region => "region",
        JobGroup::Day => "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    };
    let mut q = QueryBuilder::new(format!("SELECT {expr} AS k, count(*) FROM jobs"));
    push_filter(&mut q, f);
    q.push(" GROUP BY k");
    q.build_query_as().fetch_all(db).await
}

#[derive(Debug, Clone, Copy)]
pub enum JobGroup {
    Type,
    State,
    Region,
    Day,
}
