//! `/api/v1/regions`, `/api/v1/instances`, `/api/v1/jobs` and the CA certificate.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_types::{
    Accepted, CreateInstance, CreatedInstance, ErrorBody, Instance, InstanceQuery, Job, JobList,
    JobQuery, Page, Region, UpdateInstance,
};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;

/// Where instances can run, with the versions, memory and storage sizes each offers.
#[utoipa::path(get, path = "/api/v1/regions", operation_id = "list_regions", tag = "instances", responses((status = 200, body = Vec<Region>)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn regions(State(s): State<AppState>, Auth(_): Auth) -> axum::Json<Vec<Region>> {
    axum::Json(s.app.regions())
}

/// Creates an instance. Answers 202 at once with the connection URL and the owner's password
/// (shown only here); poll the instance until its status is `running`. Send an
/// `Idempotency-Key` header to make retries safe.
#[utoipa::path(post, path = "/api/v1/instances", operation_id = "create_instance", tag = "instances", request_body = CreateInstance,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
        description = "1–255 visible ASCII characters; retries with the same key return the original answer")),
    responses((status = 202, body = CreatedInstance), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Json(req): Json<CreateInstance>,
) -> ApiResult<Response> {
    let key = match headers.get("idempotency-key") {
        Some(v) => Some(v.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Idempotency-Key must be visible ASCII",
            )
        })?),
        None => None,
    };
    let created = s.app.create_instance(&p, &req, key).await?;
    Ok(crate::respond::no_store((
        StatusCode::ACCEPTED,
        axum::Json(created),
    )))
}

/// Instances the caller may see, filterable by project, status and name.
#[utoipa::path(get, path = "/api/v1/instances", operation_id = "list_instances", tag = "instances", params(InstanceQuery),
    responses((status = 200, body = Page<Instance>), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`project_id` names no project the caller may see")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<InstanceQuery>,
) -> ApiResult<axum::Json<Page<Instance>>> {
    let page = s.app.list_instances(&p, &q).await?;
    Ok(axum::Json(s.page("/api/v1/instances", page)))
}

/// One instance with its status, connection URL and current job.
#[utoipa::path(get, path = "/api/v1/instances/{id}", operation_id = "get_instance", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 200, body = Instance), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Instance>> {
    Ok(axum::Json(s.app.get_instance(&p, id).await?))
}

/// Renames, protects from deletion, or resizes (202, as a job) an instance.
#[utoipa::path(patch, path = "/api/v1/instances/{id}", operation_id = "update_instance", tag = "instances", params(("id" = Uuid, Path)), request_body = UpdateInstance,
    responses((status = 200, body = Instance), (status = 202, body = Accepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateInstance>,
) -> ApiResult<Response> {
    let (instance, job) = s.app.update_instance(&p, id, &req).await?;
    Ok(match job {
        Some(job_id) => (
            StatusCode::ACCEPTED,
            axum::Json(Accepted { instance, job_id }),
        )
            .into_response(),
        None => axum::Json(instance).into_response(),
    })
}

/// Deletes an instance and all its data (202, as a job). Refused while deletion protection is on.
#[utoipa::path(delete, path = "/api/v1/instances/{id}", operation_id = "delete_instance", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(s.app.delete_instance(&p, id).await?),
    )
        .into_response())
}

async fn action(
    s: AppState,
    p: berth_core::Principal,
    id: Uuid,
    what: &str,
) -> ApiResult<Response> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(s.app.instance_action(&p, id, what).await?),
    )
        .into_response())
}

/// Stops a running instance, keeping its data; it uses no memory while paused.
#[utoipa::path(post, path = "/api/v1/instances/{id}/pause", operation_id = "pause_instance", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn pause(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    action(s, p, id, "pause").await
}

/// Starts a paused (or failed) instance again.
#[utoipa::path(post, path = "/api/v1/instances/{id}/resume", operation_id = "resume_instance", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn resume(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    action(s, p, id, "resume").await
}

/// Restarts an instance's server.
#[utoipa::path(post, path = "/api/v1/instances/{id}/restart", operation_id = "restart_instance", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 202, body = Accepted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn restart(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Response> {
    action(s, p, id, "restart").await
}

/// Jobs the caller may see, with counts by type, state, creation day and site.
#[utoipa::path(get, path = "/api/v1/jobs", operation_id = "list_jobs", tag = "jobs", params(JobQuery),
    responses((status = 200, body = JobList), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn jobs(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<JobQuery>,
) -> ApiResult<axum::Json<JobList>> {
    let mut list = s.app.list_jobs(&p, &q).await?;
    list.next = list.next.map(|q| s.page_url("/api/v1/jobs", &q));
    list.previous = list.previous.map(|q| s.page_url("/api/v1/jobs", &q));
    Ok(axum::Json(list))
}

/// One job: type, state, target, timestamps, attempts and error.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", operation_id = "get_job", tag = "jobs", params(("id" = Uuid, Path)),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn job(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(s.app.get_job(&p, id).await?))
}

/// The certificate of Berth's CA, which signs every instance's server certificate: use it as
/// `sslrootcert` with `sslmode=verify-full`.
#[utoipa::path(get, path = "/api/v1/ca.pem", operation_id = "get_ca_certificate", tag = "instances", responses((status = 200, body = String, content_type = "application/x-pem-file")))]
pub async fn ca_pem(State(s): State<AppState>) -> Response {
    let pem = s.app.ca_pem();
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
}
