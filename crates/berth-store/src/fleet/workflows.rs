//! The `workflows` and `workflow_targets` tables: one operation started on many instances, and
//! what became of each target (its job, or why it has none). A target's current state is its
//! job's, read with it.

use berth_types::{Discovery, JobState, TargetOutcome, WorkflowKind};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkflowRow {
    pub id: Uuid,
    pub workflow: WorkflowKind,
    pub region: Option<String>,
    pub discovery: Option<Discovery>,
    pub fields: serde_json::Value,
    pub project_ids: Vec<Uuid>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// A target with the state and error of its job, if it has one.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TargetRow {
    pub workflow_id: Uuid,
    pub position: i32,
    pub path: String,
    pub instance_id: Option<Uuid>,
    pub outcome: TargetOutcome,
    pub job_id: Option<Uuid>,
    pub error: Option<String>,
    pub job_state: Option<JobState>,
    pub job_error: Option<String>,
}

pub struct NewTarget<'a> {
    pub position: i32,
    pub path: &'a str,
    pub instance_id: Option<Uuid>,
    pub outcome: TargetOutcome,
    pub job_id: Option<Uuid>,
    pub error: Option<&'a str>,
}

const COLUMNS: &str =
    "id, workflow, region, discovery, fields, project_ids, created_by, created_at";

pub async fn insert<'e>(db: impl PgExecutor<'e>, w: &WorkflowRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO workflows (id, workflow, region, discovery, fields, project_ids, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(w.id)
    .bind(w.workflow)
    .bind(&w.region)
    .bind(w.discovery)
    .bind(&w.fields)
    .bind(&w.project_ids)
    .bind(w.created_by)
    .bind(w.created_at)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn insert_target<'e>(
    db: impl PgExecutor<'e>,
    workflow: Uuid,
    t: &NewTarget<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO workflow_targets (workflow_id, position, path, instance_id, outcome, job_id, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(workflow)
    .bind(t.position)
    .bind(t.path)
    .bind(t.instance_id)
    .bind(t.outcome)
    .bind(t.job_id)
    .bind(t.error)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<WorkflowRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM workflows WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Workflows all of whose projects are in `projects` (None: every workflow), newest first.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    projects: Option<&[Uuid]>,
    limit: i64,
    offset: i64,
) -> Result<Vec<WorkflowRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM workflows WHERE ($1::uuid[] IS NULL OR project_ids <@ $1)
         ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(projects)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

pub async fn count<'e>(
    db: impl PgExecutor<'e>,
    projects: Option<&[Uuid]>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM workflows WHERE ($1::uuid[] IS NULL OR project_ids <@ $1)",
    )
    .bind(projects)
    .fetch_one(db)
    .await
}

/// The targets of these workflows, in order, with their jobs' states.
pub async fn targets<'e>(
    db: impl PgExecutor<'e>,
    workflows: &[Uuid],
) -> Result<Vec<TargetRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.workflow_id, t.position, t.path, t.instance_id, t.outcome, t.job_id, t.error,
                j.state AS job_state, j.error AS job_error
         FROM workflow_targets t LEFT JOIN jobs j ON j.id = t.job_id
         WHERE t.workflow_id = ANY($1) ORDER BY t.workflow_id, t.position",
    )
    .bind(workflows)
    .fetch_all(db)
    .await
}
