//! The console's jobs page: the jobs of the visitor's projects, newest first, filtered by type
//! and state, with the counts by state — `GET /api/v1/jobs` as a page.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use berth_types::{JobQuery, JobState, JobType};

use super::error_page;
use super::web::{page, to_login, visitor, Chrome};
use crate::state::AppState;

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
                    state_class: match j.state {
                        JobState::Success => "running",
                        JobState::Failure | JobState::Error => "failed",
                        JobState::Pending | JobState::Started => "busy",
                        _ => "",
                    },
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
