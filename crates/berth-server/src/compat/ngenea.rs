//! Ngenea Hub's API: `POST /api/auth/token/` (an access and a refresh token for a username and
//! password), `POST /api/auth/token/refresh/`, `POST /api/auth/clientkeys/` (an API key, sent
//! as `Authorization: Api-Key …`), `GET /api/jobs/` and `POST /api/file/workflow/`. Each is one
//! of Berth's own operations under Ngenea's path and in its field names: Berth's token pair
//! sign-in (the same password checks and throttling), refresh-token rotation, API keys, the
//! jobs list, and workflows (a path names an instance or a project, not a file).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{
    CreateApiKey, CreateWorkflow, Discovery, ErrorBody, Job, JobQuery, JobState, RefreshRequest,
    TokenRequest, WorkflowKind, WorkflowState, WorkflowTarget,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Query};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct NgeneaTokenPair {
    /// A Berth access token (JWT, 1 h): `Authorization: Bearer <access>`.
    pub access: String,
    /// Single use (24 h): refreshing returns a new one and spends this one.
    pub refresh: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NgeneaRefreshRequest {
    pub refresh: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NgeneaRefreshed {
    pub access: String,
    /// The refresh token that replaces the one presented (Berth rotates them: the presented
    /// one is spent). Absent when a user token was presented (those are not rotated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NgeneaClientKey {
    /// Berth's URL of the key (`DELETE` revokes it).
    pub url: String,
    pub id: Uuid,
    pub name: String,
    /// Send as `Authorization: Api-Key <api_key>`. Shown only in this response.
    pub api_key: String,
}

/// A Berth job under Ngenea's field names.
#[derive(Debug, Serialize, ToSchema)]
pub struct NgeneaJob {
    pub id: Uuid,
    pub url: String,
    /// Berth's job type (`restart`, `backup`, …).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub job_type: berth_types::JobType,
    /// The Berth workflow that started it, if one did.
    pub workflow: Option<Uuid>,
    pub state: JobState,
    /// The region it runs in.
    pub site: String,
    pub instance_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub completed: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// Counts of the listed jobs, as Ngenea's `stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct NgeneaJobStats {
    #[serde(rename = "type")]
    pub job_type: BTreeMap<String, i64>,
    pub state: BTreeMap<String, i64>,
    pub created: BTreeMap<String, i64>,
    pub site: BTreeMap<String, i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NgeneaJobList {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<NgeneaJob>,
    pub stats: NgeneaJobStats,
}

/// Ngenea's workflow submission. Fields Ngenea may send besides these are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NgeneaSubmitWorkflow {
    /// Berth's operations: `restart`, `pause`, `resume` or `backup`.
    #[schema(example = "backup")]
    pub workflow: WorkflowKind,
    /// `/projects/<project>/instances/<instance>`, or `/projects/<project>` with recursive
    /// discovery.
    pub paths: Vec<String>,
    /// A Berth region (e.g. `local`).
    #[serde(default)]
    pub site: Option<String>,
    /// `recursive`, or null.
    #[serde(default)]
    pub discovery: Option<Discovery>,
    /// Options of the operation (a backup's `type`); null is none.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<BTreeMap<String, serde_json::Value>>,
}

/// The workflow started, in Ngenea's terms.
#[derive(Debug, Serialize, ToSchema)]
pub struct NgeneaWorkflowRun {
    pub id: Uuid,
    /// Berth's URL of the workflow (`GET` shows where each target is).
    pub url: String,
    pub workflow: WorkflowKind,
    /// Ngenea's (Celery's) state: `STARTED` while a job runs, then `SUCCESS`, or `FAILURE`
    /// when a target's job failed or a target was skipped or not found.
    pub state: JobState,
    pub site: Option<String>,
    pub discovery: Option<Discovery>,
    /// The jobs started, one per target that took the operation.
    pub jobs: Vec<Uuid>,
    pub targets: Vec<WorkflowTarget>,
}

fn job_view(s: &AppState, j: Job) -> NgeneaJob {
    NgeneaJob {
        url: s.url(&format!("/api/v1/jobs/{}", j.id), None),
        id: j.id,
        job_type: j.job_type,
        workflow: j.workflow_id,
        state: j.state,
        site: j.region,
        instance_id: j.instance_id,
        project_id: j.project_id,
        created: j.created_at,
        started: j.started_at,
        completed: j.finished_at,
        error: j.error,
    }
}

/// Signs in with a username (or email) and password for an access and a refresh token
/// (Berth's `POST /api/v1/auth/token`: the same checks and throttling).
#[utoipa::path(post, path = "/api/auth/token", operation_id = "ngenea_create_token", tag = "compat-ngenea", request_body = TokenRequest,
    responses((status = 200, body = NgeneaTokenPair), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn token(
    State(s): State<AppState>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Response> {
    let pair = s.app.login_tokens(&req).await?;
    Ok(crate::respond::no_store(axum::Json(NgeneaTokenPair {
        access: pair.access_token,
        refresh: pair.refresh_token.unwrap_or_default(),
    })))
}

/// Exchanges a refresh token for a new access token and a new refresh token; the presented one
/// is spent (presenting it again revokes every token of that sign-in).
#[utoipa::path(post, path = "/api/auth/token/refresh", operation_id = "ngenea_refresh_token", tag = "compat-ngenea", request_body = NgeneaRefreshRequest,
    responses((status = 200, body = NgeneaRefreshed), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(s): State<AppState>,
    Json(req): Json<NgeneaRefreshRequest>,
) -> ApiResult<Response> {
    let pair = s
        .app
        .refresh(&RefreshRequest {
            refresh_token: req.refresh,
        })
        .await?;
    Ok(crate::respond::no_store(axum::Json(NgeneaRefreshed {
        access: pair.access_token,
        refresh: pair.refresh_token,
    })))
}

/// Creates an API key for the caller (Berth's `POST /api/v1/auth/api-keys`); the key is in
/// this response only.
#[utoipa::path(post, path = "/api/auth/clientkeys", operation_id = "ngenea_create_client_key", tag = "compat-ngenea", request_body = CreateApiKey,
    responses((status = 201, body = NgeneaClientKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn client_keys(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<Response> {
    let created = s.app.create_api_key(&p, &req).await?;
    Ok(crate::respond::no_store((
        StatusCode::CREATED,
        axum::Json(NgeneaClientKey {
            url: s.url(&format!("/api/v1/auth/api-keys/{}", created.key.id), None),
            id: created.key.id,
            name: created.key.name,
            api_key: created.api_key,
        }),
    )))
}

/// The jobs the caller may see, with counts by type, state, creation day and site (Berth's
/// `GET /api/v1/jobs`).
#[utoipa::path(get, path = "/api/jobs", operation_id = "ngenea_list_jobs", tag = "compat-ngenea", params(JobQuery),
    responses((status = 200, body = NgeneaJobList), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn jobs(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<JobQuery>,
) -> ApiResult<axum::Json<NgeneaJobList>> {
    let list = s.app.list_jobs(&p, &q).await?;
    Ok(axum::Json(NgeneaJobList {
        count: list.count,
        next: list.next.map(|q| s.page_url("/api/jobs", &q)),
        previous: list.previous.map(|q| s.page_url("/api/jobs", &q)),
        results: list.results.into_iter().map(|j| job_view(&s, j)).collect(),
        stats: NgeneaJobStats {
            job_type: list.stats.job_type,
            state: list.stats.state,
            created: list.stats.created,
            site: list.stats.region,
        },
    }))
}

/// Starts a workflow on the instances the paths name (Berth's `POST /api/v1/workflows`).
#[utoipa::path(post, path = "/api/file/workflow", operation_id = "ngenea_submit_workflow", tag = "compat-ngenea", request_body = NgeneaSubmitWorkflow,
    responses((status = 202, body = NgeneaWorkflowRun), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no path names an instance the caller can see")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn submit_workflow(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<NgeneaSubmitWorkflow>,
) -> ApiResult<Response> {
    let w = s
        .app
        .create_workflow(
            &p,
            &CreateWorkflow {
                workflow: req.workflow,
                paths: req.paths,
                site: req.site,
                discovery: req.discovery,
                fields: req.fields.unwrap_or_default(),
            },
        )
        .await?;
    let state = match w.state {
        WorkflowState::Running => JobState::Started,
        WorkflowState::Succeeded => JobState::Success,
        _ => JobState::Failure,
    };
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(NgeneaWorkflowRun {
            url: s.url(&format!("/api/v1/workflows/{}", w.id), None),
            id: w.id,
            workflow: w.workflow,
            state,
            site: w.site,
            discovery: w.discovery,
            jobs: w.targets.iter().filter_map(|t| t.job_id).collect(),
            targets: w.targets,
        }),
    )
        .into_response())
}
