//! Database instances, regions and jobs.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{InstanceStatus, JobState, JobType};

/// Where instances can run and what they offer there.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Region {
    pub id: String,
    pub engine: String,
    /// Installed PostgreSQL major versions, newest first.
    pub versions: Vec<String>,
    pub memory_sizes: Vec<String>,
    pub storage_sizes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInstance {
    /// 1–63 characters: letters, digits, `-` and `_`; unique in the project.
    #[schema(min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_-]+$")]
    pub name: String,
    pub project_id: Uuid,
    /// `postgres`.
    #[schema(example = "postgres")]
    pub engine: String,
    /// A major version the region offers, e.g. `15`.
    #[schema(min_length = 1)]
    pub version: String,
    /// One of `GET /api/v1/regions`.
    #[schema(min_length = 1)]
    pub region: String,
    /// One of the region's `memory_sizes`.
    #[schema(min_length = 1)]
    pub memory: String,
    /// One of the region's `storage_sizes` (default the smallest).
    #[schema(min_length = 1)]
    pub storage: Option<String>,
    /// Restore or clone: the new instance starts from another instance's backups instead of
    /// empty. Its version must be the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::InstanceSource>,
    /// Who may connect over TCP; default the server's `[instances] default_firewall_rules`
    /// (this host only). An empty list: nobody over TCP until a rule is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall_rules: Option<Vec<crate::CreateFirewallRule>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateInstance {
    /// 1–63 characters: letters, digits, `-` and `_`; unique in the project.
    #[schema(min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_-]+$")]
    pub name: Option<String>,
    /// Resizing restarts the instance with the new memory settings.
    #[schema(min_length = 1)]
    pub memory: Option<String>,
    /// A larger storage size (one of the region's `storage_sizes`); storage only grows. It
    /// takes effect at once, without a restart.
    #[schema(min_length = 1)]
    pub storage: Option<String>,
    pub deletion_protection: Option<bool>,
}

/// A job in progress or done, as referenced from an instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobRef {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub state: JobState,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Instance {
    pub id: Uuid,
    pub name: String,
    pub project_id: Uuid,
    pub engine: String,
    pub version: String,
    pub region: String,
    pub memory: String,
    pub storage: String,
    pub status: InstanceStatus,
    /// Why the instance is in its status, and what to do, when that is not obvious.
    pub status_message: Option<String>,
    /// `postgresql://user@host:port/db?sslmode=verify-full` (the password is not in it).
    pub connection_url: Option<String>,
    pub username: String,
    pub database: String,
    pub host: String,
    pub port: Option<i32>,
    pub deletion_protection: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The job currently changing the instance, if any.
    pub current_job: Option<JobRef>,
    /// Where a restored or cloned instance came from, and what it recovered to.
    #[serde(default)]
    pub restored_from: Option<crate::RestoredFrom>,
    /// The data source an imported instance is a logical copy of.
    #[serde(default)]
    pub imported_from: Option<Uuid>,
}

/// Only the creation response carries the password.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedInstance {
    #[serde(flatten)]
    pub instance: Instance,
    /// The owner's password. Shown only in this response.
    pub password: String,
    pub job_id: Uuid,
}

/// An operation that was accepted and runs as a job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Accepted {
    pub instance: Instance,
    pub job_id: Uuid,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    /// Only this project's instances.
    pub project_id: Option<Uuid>,
    /// Only instances in this status.
    pub status: Option<String>,
    /// Only the instance of this name.
    pub name: Option<String>,
    /// Items per page (1–500, default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub state: JobState,
    pub instance_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    /// The region the job runs in.
    pub region: String,
    /// The same as `region`, under its earlier name: kept so that clients written against it go
    /// on working. Deprecated.
    #[schema(deprecated)]
    #[serde(default)]
    pub site: String,
    /// The step being worked on (or where it stopped).
    pub step: Option<String>,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// When the current step fails if it has not finished.
    pub deadline_at: Option<DateTime<Utc>>,
    /// How far the current step is (0–100), where the tool doing it reports that.
    #[serde(default)]
    pub progress_percent: Option<f32>,
    /// Bytes done and to do in the current step, where known.
    #[serde(default)]
    pub bytes_done: Option<i64>,
    #[serde(default)]
    pub bytes_total: Option<i64>,
    /// The workflow that started the job (`POST /api/v1/workflows`), if one did.
    #[serde(default)]
    pub workflow_id: Option<Uuid>,
    /// Every step started, in order, with how long it took: where a job's time went.
    #[serde(default)]
    pub steps: Vec<JobStep>,
}

/// One step of a job's run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobStep {
    pub name: String,
    /// The run it belongs to (a job interrupted by a restart runs again from its first step).
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    /// Until the next step began, or the job finished; absent while it runs (or if the run
    /// was cut short).
    #[serde(default)]
    pub duration_ms: Option<i64>,
}

/// Counts of the listed jobs (all pages) by type, state, creation day and region.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct JobStats {
    #[serde(rename = "type")]
    pub job_type: BTreeMap<String, i64>,
    pub state: BTreeMap<String, i64>,
    pub created: BTreeMap<String, i64>,
    pub region: BTreeMap<String, i64>,
    /// The same as `region`, under its earlier name. Deprecated.
    #[schema(deprecated)]
    #[serde(default)]
    pub site: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<Job>,
    pub stats: JobStats,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs of this type (`create`, `pause`, …).
    #[serde(rename = "type")]
    pub job_type: Option<String>,
    /// Only jobs in this state (`PENDING`, `STARTED`, …).
    pub state: Option<String>,
    /// Only this instance's jobs.
    pub instance_id: Option<Uuid>,
    /// Jobs created at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Jobs created before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Items per page (1–500, default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}
