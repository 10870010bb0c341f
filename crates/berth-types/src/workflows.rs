//! Workflows: one of Berth's instance operations (restart, pause, resume, backup) started on
//! many instances at once, named by paths (`/projects/<project>/instances/<instance>`, or a
//! whole project with recursive discovery), as Ngenea Hub runs a workflow over many paths. A
//! workflow starts one job per target and shows where each one is; its own state is derived
//! from theirs.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{JobState, UnknownValue};

string_enum! {
    /// The operation a workflow runs on each target: the instance operation of the same name.
    WorkflowKind ("workflow") {
        Restart = "restart",
        Pause = "pause",
        Resume = "resume",
        /// Takes a backup (`fields`: `{"type": "full" | "diff" | "incr"}`, full by default).
        Backup = "backup",
        /// Replaces each instance's database with a copy of a data source's (`fields`:
        /// `{"data_source_id": …}`, a data source of the instance's project).
        Import = "import",
        ..
        /// A workflow this build does not know (refused in requests; from a newer server in
        /// answers).
        Unknown = "unknown",
    }
}

string_enum! {
    /// How a project path is expanded into instances.
    Discovery ("discovery") {
        /// Every instance of the project.
        Recursive = "recursive",
    }
}

string_enum! {
    /// What became of a target when the workflow was started (as stored; the API shows a
    /// [`TargetState`]).
    TargetOutcome ("target outcome") {
        /// A job was started: its state is the target's.
        Accepted = "accepted",
        /// The instance could not take the operation now (its status, or another job).
        Skipped = "skipped",
        /// The operation was refused for another reason (the error says which).
        Failed = "failed",
        /// The path names nothing the caller can see.
        NotFound = "not_found",
    }
}

string_enum! {
    /// Where one target of a workflow is.
    TargetState ("target state") {
        /// Its job waits for a runner.
        Pending = "pending",
        /// Its job is running.
        Running = "running",
        /// Its job succeeded.
        Succeeded = "succeeded",
        /// Its job failed, or the operation was refused (the error says why).
        Failed = "failed",
        /// The instance could not take the operation when the workflow started.
        Skipped = "skipped",
        /// The path names nothing the caller can see.
        NotFound = "not_found",
        ..
        /// A state this client does not know (from a newer server); never sent by this one.
        Unknown = "unknown",
    }
}

string_enum! {
    /// Where a workflow is, derived from its targets.
    WorkflowState ("workflow state") {
        /// Some target's job has not ended yet.
        Running = "running",
        /// Every target's job succeeded.
        Succeeded = "succeeded",
        /// Some targets' jobs succeeded, others failed or were skipped or not found.
        Partial = "partial",
        /// No target's job succeeded.
        Failed = "failed",
        ..
        /// A state this client does not know (from a newer server); never sent by this one.
        Unknown = "unknown",
    }
}

impl TargetState {
    /// The state of a target from its stored outcome and, when it has one, its job's state.
    pub fn of(outcome: TargetOutcome, job: Option<JobState>) -> TargetState {
        match outcome {
            TargetOutcome::Skipped => TargetState::Skipped,
            TargetOutcome::Failed => TargetState::Failed,
            TargetOutcome::NotFound => TargetState::NotFound,
            TargetOutcome::Accepted => match job {
                Some(JobState::Pending) => TargetState::Pending,
                Some(JobState::Started) => TargetState::Running,
                Some(JobState::Success) => TargetState::Succeeded,
                // A job that failed, errored, or is gone (its instance was deleted).
                _ => TargetState::Failed,
            },
        }
    }

    pub const fn is_active(self) -> bool {
        matches!(self, TargetState::Pending | TargetState::Running)
    }
}

impl WorkflowState {
    /// The state of a workflow whose targets are in `targets`.
    pub fn of(targets: impl IntoIterator<Item = TargetState>) -> WorkflowState {
        let (mut active, mut ok, mut not_ok) = (false, 0, 0);
        for t in targets {
            match t {
                t if t.is_active() => active = true,
                TargetState::Succeeded => ok += 1,
                _ => not_ok += 1,
            }
        }
        match (active, ok, not_ok) {
            (true, _, _) => WorkflowState::Running,
            (false, 0, _) => WorkflowState::Failed,
            (false, _, 0) => WorkflowState::Succeeded,
            _ => WorkflowState::Partial,
        }
    }
}

/// `POST /api/v1/workflows`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkflow {
    /// The operation: `restart`, `pause`, `resume` or `backup`.
    #[schema(example = "restart")]
    pub workflow: WorkflowKind,
    /// `/projects/<project name or id>/instances/<instance name or id>`, or
    /// `/projects/<project name or id>` with `"discovery": "recursive"` for all its instances.
    /// 1–100 paths.
    #[schema(example = json!(["/projects/shop/instances/orders"]))]
    pub paths: Vec<String>,
    /// A region: only the targets in it are worked on (the others are `skipped`).
    #[serde(default)]
    pub site: Option<String>,
    /// `recursive` expands project paths into their instances; null or absent expands nothing.
    #[serde(default)]
    pub discovery: Option<Discovery>,
    /// Options of the operation: `backup` takes `type` (`full`, `diff` or `incr`); the others
    /// take none. Other fields are refused (400).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// One target of a workflow.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WorkflowTarget {
    /// The path as the request named it; an instance found by recursive discovery has its own
    /// path (`/projects/<project id>/instances/<instance id>`).
    pub path: String,
    pub instance_id: Option<Uuid>,
    pub state: TargetState,
    /// The job started for it, and that job's state.
    pub job_id: Option<Uuid>,
    pub job_state: Option<JobState>,
    /// Why it was skipped, refused or not found, or why its job failed.
    pub error: Option<String>,
}

/// A workflow and its targets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Workflow {
    pub id: Uuid,
    pub workflow: WorkflowKind,
    pub state: WorkflowState,
    /// The region the request was limited to.
    pub site: Option<String>,
    pub discovery: Option<Discovery>,
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, serde_json::Value>,
    /// Targets by state (every state appears, with 0 when none is in it).
    pub counts: BTreeMap<String, i64>,
    pub targets: Vec<WorkflowTarget>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workflow_state_follows_its_targets() {
        use TargetState::*;
        assert_eq!(
            WorkflowState::of([Succeeded, Running]),
            WorkflowState::Running
        );
        assert_eq!(
            WorkflowState::of([Succeeded, Succeeded]),
            WorkflowState::Succeeded
        );
        assert_eq!(
            WorkflowState::of([Succeeded, Skipped]),
            WorkflowState::Partial
        );
        assert_eq!(
            WorkflowState::of([Skipped, NotFound]),
            WorkflowState::Failed
        );
        assert_eq!(WorkflowState::of([]), WorkflowState::Failed);
        assert_eq!(
            TargetState::of(TargetOutcome::Accepted, Some(JobState::Error)),
            Failed
        );
        let w: WorkflowKind = serde_json::from_str("\"migrate\"").unwrap();
        assert_eq!(w, WorkflowKind::Unknown);
    }
}
