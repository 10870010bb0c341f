//! The console's jobs pages: the jobs of the visitor's projects, newest first, filtered by type
//! and state, with the counts by state — `GET /api/v1/jobs` as a page — and one job's page
//! (`GET /api/v1/jobs/{id}`), which follows an active job until it ends.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_core::AppError;
use berth_types::{JobQuery, JobState, JobType};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::web::{page, to_login, visitor, Chrome};
use super::{error_page, Access};
use crate::state::AppState;

/// How a job's state is drawn.
fn state_class(state: JobState) -> &'static str {
    match state {
        JobState::Success => "running",
        JobState::Failure | JobState::Error => "failed",
        JobState::Pending | JobState::Started => "busy",
        _ => "",
    }
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

struct JobRow {
    id: uuid::Uuid,
    kind: String,
    state: String,
    state_class: &'static str,
    instance: Option<String>,
    instance_label: String,
    step: String,
    created: String,
    error: String,
}

#[derive(Template)]
#[template(path = "console/jobs.html")]
struct JobsPage {
    chrome: Chrome,
    types: Vec<(&'static str, bool)>,
    states: Vec<(&'static str, bool)>,
    count: i64,
    stats: Vec<(String, i64)>,
    jobs: Vec<JobRow>,
}

pub(super) async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    let job_type = q
        .get("type")
        .and_then(|t| JobType::ALL.iter().find(|k| k.as_str() == t))
        .copied();
    let state = q
        .get("state")
        .and_then(|t| JobState::ALL.iter().find(|k| k.as_str() == t))
        .copied();
    let query = JobQuery {
        job_type: job_type.map(|t| t.as_str().to_owned()),
        state: state.map(|t| t.as_str().to_owned()),
        limit: Some(100),
        ..Default::default()
    };
    let list = match s.app.list_jobs(&v.principal, &query).await {
        Ok(l) => l,
        Err(e) => return error_page(Some(&v), e),
    };
    page(
        StatusCode::OK,
        &JobsPage {
            chrome: v.chrome("Jobs", "jobs"),
            types: JobType::ALL
                .iter()
                .filter(|t| **t != JobType::Unknown)
                .map(|t| (t.as_str(), Some(*t) == job_type))
                .collect(),
            states: JobState::ALL
                .iter()
                .filter(|t| **t != JobState::Unknown)
                .map(|t| (t.as_str(), Some(*t) == state))
                .collect(),
            count: list.count,
            stats: list.stats.state.into_iter().collect(),
            jobs: list
                .results
                .into_iter()
                .map(|j| JobRow {
                    id: j.id,
                    kind: j.job_type.to_string(),
                    state_class: state_class(j.state),
                    state: j.state.to_string(),
                    instance: j.instance_id.map(|i| i.to_string()),
                    instance_label: j
                        .instance_id
                        .map(|i| i.to_string()[..8].to_owned())
                        .unwrap_or_default(),
                    step: j.step.unwrap_or_default(),
                    created: j.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    error: j.error.unwrap_or_default(),
                })
                .collect(),
        },
    )
}

struct JobView {
    id: Uuid,
    short: String,
    kind: String,
    state: String,
    state_class: &'static str,
    active: bool,
    instance: Option<Uuid>,
    instance_label: String,
    project: String,
    step: String,
    progress: Option<String>,
    attempts: i32,
    created: String,
    started: String,
    finished: String,
    deadline: Option<String>,
    error: Option<String>,
    /// The instance's status message while this job is its current one (a failure's advice).
    status_message: Option<String>,
    /// Each step started: where the job's time went.
    steps: Vec<StepView>,
}

struct StepView {
    name: String,
    attempt: i32,
    started: String,
    /// `12 ms`, or `running` / `cut short` when it has no duration.
    took: String,
}

#[derive(Template)]
#[template(path = "console/job.html")]
struct JobPage {
    chrome: Chrome,
    j: JobView,
}

/// One job. Another tenant's job, like a job that does not exist, is "not found".
pub(super) async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        // (The page polls itself while the job runs.)
        return if headers.contains_key("hx-request") {
            super::web::fragment_to_login()
        } else {
            to_login()
        };
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), AppError::NotFound("job"));
    };
    let job = match s.app.get_job(&v.principal, id).await {
        Ok(j) => j,
        Err(e) => return error_page(Some(&v), e),
    };
    // The instance may be gone (a delete job); the job page still shows.
    let instance = match job.instance_id {
        Some(i) => s.app.get_instance(&v.principal, i).await.ok(),
        None => None,
    };
    let project = match (job.project_id, Access::of(&s, &v).await) {
        (Some(p), Ok(access)) => access.name(p),
        (Some(p), Err(_)) => p.to_string(),
        (None, _) => String::new(),
    };
    let status_message = instance
        .as_ref()
        .filter(|i| i.current_job.as_ref().is_some_and(|c| c.id == job.id))
        .and_then(|i| i.status_message.clone());
    let never = |t: Option<DateTime<Utc>>, what: &str| t.map_or_else(|| what.to_owned(), when);
    let progress = match (job.progress_percent, job.bytes_done, job.bytes_total) {
        (Some(p), _, _) => Some(format!("{p:.0} %")),
        (None, Some(d), Some(t)) if t > 0 => Some(format!("{d} of {t} bytes")),
        _ => None,
    };
    let j = JobView {
        id: job.id,
        short: job.id.to_string()[..8].to_owned(),
        kind: job.job_type.to_string(),
        state: job.state.to_string(),
        state_class: state_class(job.state),
        active: job.state.is_active(),
        instance: job.instance_id,
        instance_label: match (&instance, job.instance_id) {
            (Some(i), _) => i.name.clone(),
            (None, Some(i)) => i.to_string()[..8].to_owned(),
            (None, None) => String::new(),
        },
        project,
        step: job.step.unwrap_or_default(),
        progress,
        attempts: job.attempts,
        created: when(job.created_at),
        started: never(job.started_at, "not yet"),
        finished: never(job.finished_at, "not yet"),
        deadline: job.deadline_at.filter(|_| job.state.is_active()).map(when),
        error: job.error,
        status_message,
        steps: job
            .steps
            .iter()
            .map(|st| StepView {
                name: st.name.clone(),
                attempt: st.attempt,
                started: when(st.started_at),
                took: match st.duration_ms {
                    Some(ms) => format!("{ms} ms"),
                    None if job.state.is_active() => "running".into(),
                    None => "cut short".into(),
                },
            })
            .collect(),
    };
    page(
        StatusCode::OK,
        &JobPage {
            chrome: v.chrome(format!("Job {}", j.short), "jobs"),
            j,
        },
    )
}
