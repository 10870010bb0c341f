//! The `backups` table (a mirror of what the backup tool's repository holds, plus backups in
//! progress and failed ones) and `backup_policies`.

use berth_types::{BackupStatus, BackupTrigger, BackupType};
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, QueryBuilder};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BackupRow {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub project_id: Uuid,
    pub label: Option<String>,
    #[sqlx(rename = "type")]
    pub backup_type: BackupType,
    pub status: BackupStatus,
    pub trigger: BackupTrigger,
    pub prior_label: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub size: Option<i64>,
    pub repository_size: Option<i64>,
    pub wal_start: Option<String>,
    pub wal_stop: Option<String>,
    pub lsn_start: Option<String>,
    pub lsn_stop: Option<String>,
    pub job_id: Option<Uuid>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    /// From the instance.
    pub instance_name: String,
    pub instance_deleted: bool,
}

const SELECT: &str =
    "SELECT b.*, i.name AS instance_name, i.deleted_at IS NOT NULL AS instance_deleted
     FROM backups b JOIN instances i ON i.id = b.instance_id";

pub struct NewBackup {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub project_id: Uuid,
    pub backup_type: BackupType,
    pub trigger: BackupTrigger,
    pub job_id: Option<Uuid>,
}

pub async fn insert_pending<'e>(db: impl PgExecutor<'e>, b: &NewBackup) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO backups (id, instance_id, project_id, type, trigger, job_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(b.id)
    .bind(b.instance_id)
    .bind(b.project_id)
    .bind(b.backup_type)
    .bind(b.trigger)
    .bind(b.job_id)
    .execute(db)
    .await?;
    Ok(())
}

/// What the repository says about one backup.
pub struct Recorded<'a> {
    pub label: &'a str,
    pub backup_type: BackupType,
    pub prior_label: Option<&'a str>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub size: i64,
    pub repository_size: i64,
    pub wal_start: &'a str,
    pub wal_stop: &'a str,
    pub lsn_start: &'a str,
    pub lsn_stop: &'a str,
}

/// Records a completed backup: the row `id` when given (the job's own), else a new row with
/// `trigger`; a label already known is only refreshed.
pub async fn record_completed<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    project_id: Uuid,
    id: Option<Uuid>,
    trigger: BackupTrigger,
    r: &Recorded<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO backups (id, instance_id, project_id, label, type, status, trigger, prior_label,
                              started_at, finished_at, size, repository_size, wal_start, wal_stop,
                              lsn_start, lsn_stop)
         VALUES ($1, $2, $3, $4, $5, 'completed', $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (id) DO UPDATE SET label = $4, type = $5, status = 'completed', prior_label = $7,
             started_at = $8, finished_at = $9, size = $10, repository_size = $11, wal_start = $12,
             wal_stop = $13, lsn_start = $14, lsn_stop = $15, error = NULL",
    )
    .bind(id.unwrap_or_else(Uuid::now_v7))
    .bind(instance_id)
    .bind(project_id)
    .bind(r.label)
    .bind(r.backup_type)
    .bind(trigger)
    .bind(r.prior_label)
    .bind(r.started_at)
    .bind(r.finished_at)
    .bind(r.size)
    .bind(r.repository_size)
    .bind(r.wal_start)
    .bind(r.wal_stop)
    .bind(r.lsn_start)
    .bind(r.lsn_stop)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_running<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE backups SET status = 'running', started_at = coalesce(started_at, now()), error = NULL
         WHERE id = $1",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_failed<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    error: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE backups SET status = 'failed', finished_at = now(), error = $2
         WHERE id = $1 AND status <> 'completed'",
    )
    .bind(id)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// Labels of the instance's completed backups.
pub async fn labels<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT label FROM backups WHERE instance_id = $1 AND status = 'completed' AND label IS NOT NULL",
    )
    .bind(instance_id)
    .fetch_all(db)
    .await
}

/// Forgets completed backups the repository no longer has (expired).
pub async fn forget_labels<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    labels: &[String],
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM backups WHERE instance_id = $1 AND label = ANY($2)")
            .bind(instance_id)
            .bind(labels)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

/// Forgets every backup of an instance (its repository stanza is gone).
pub async fn forget_instance<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM backups WHERE instance_id = $1")
        .bind(instance_id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn delete<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM backups WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Which backups a list shows.
#[derive(Debug, Default, Clone)]
pub struct BackupFilter {
    pub instance_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub status: Option<BackupStatus>,
}

fn push_filter(q: &mut QueryBuilder<'_, sqlx::Postgres>, f: &BackupFilter) {
    q.push(" WHERE true");
    if let Some(i) = f.instance_id {
        q.push(" AND b.instance_id = ").push_bind(i);
    }
    if let Some(p) = f.project_id {
        q.push(" AND b.project_id = ").push_bind(p);
    }
    if let Some(s) = f.status {
        q.push(" AND b.status = ").push_bind(s);
    }
}

/// Newest first.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    f: &BackupFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<BackupRow>, sqlx::Error> {
    let mut q = QueryBuilder::new(SELECT);
    push_filter(&mut q, f);
    q.push(" ORDER BY coalesce(b.finished_at, b.created_at) DESC, b.id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    q.build_query_as().fetch_all(db).await
}

pub async fn count<'e>(db: impl PgExecutor<'e>, f: &BackupFilter) -> Result<i64, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT count(*) FROM backups b");
    push_filter(&mut q, f);
    q.build_query_scalar().fetch_one(db).await
}

/// Every backup of the instance, oldest first.
pub async fn all_for_instance<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Vec<BackupRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE b.instance_id = $1 ORDER BY coalesce(b.finished_at, b.created_at), b.id"
    ))
    .bind(instance_id)
    .fetch_all(db)
    .await
}

/// The newest scheduled (or initial) backup of each type's start, for the scheduler.
pub async fn last_started<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    backup_type: BackupType,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(coalesce(started_at, created_at)) FROM backups
         WHERE instance_id = $1 AND type = $2 AND status <> 'failed'",
    )
    .bind(instance_id)
    .bind(backup_type)
    .fetch_one(db)
    .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub instance_id: Uuid,
    pub enabled: bool,
    pub full_backup_minute: i32,
    pub full_backup_days: Vec<i32>,
    pub differential_every_hours: Option<i32>,
    pub retention_days: Option<i32>,
    pub retention_full_backups: Option<i32>,
}

pub async fn policy<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Option<PolicyRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT instance_id, enabled, full_backup_minute, full_backup_days, differential_every_hours,
                retention_days, retention_full_backups
         FROM backup_policies WHERE instance_id = $1",
    )
    .bind(instance_id)
    .fetch_optional(db)
    .await
}

pub async fn put_policy<'e>(db: impl PgExecutor<'e>, p: &PolicyRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO backup_policies (instance_id, enabled, full_backup_minute, full_backup_days,
                                      differential_every_hours, retention_days, retention_full_backups)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (instance_id) DO UPDATE SET enabled = $2, full_backup_minute = $3,
             full_backup_days = $4, differential_every_hours = $5, retention_days = $6,
             retention_full_backups = $7, updated_at = now()",
    )
    .bind(p.instance_id)
    .bind(p.enabled)
    .bind(p.full_backup_minute)
    .bind(&p.full_backup_days)
    .bind(p.differential_every_hours)
    .bind(p.retention_days)
    .bind(p.retention_full_backups)
    .execute(db)
    .await?;
    Ok(())
}

/// When the instance's newest backup row (of any status) was made.
pub async fn last_created<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(created_at) FROM backups WHERE instance_id = $1")
        .bind(instance_id)
        .fetch_one(db)
        .await
}

/// When the instance's newest failed backup failed, if its newest attempt failed.
pub async fn last_failed<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CASE WHEN status = 'failed' THEN coalesce(finished_at, created_at) END
         FROM backups WHERE instance_id = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(instance_id)
    .fetch_optional(db)
    .await
    .map(Option::flatten)
}
