//! `/api/v1/workflows`: one instance operation started on many instances, named by paths, and
//! where each target's job is.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{CreateWorkflow, ErrorBody, Page, PageParams, Workflow};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;

/// Starts a workflow (202): `restart`, `pause`, `resume` or `backup` on every instance the
/// paths name, one job per target. A target that cannot take it now is `skipped`, a path that
/// names nothing the caller can see `not_found`; the others go ahead.
#[utoipa::path(post, path = "/api/v1/workflows", operation_id = "create_workflow", tag = "workflows", request_body = CreateWorkflow,
    responses((status = 202, body = Workflow), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "no path names an instance the caller can see")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateWorkflow>,
) -> ApiResult<Response> {
    let workflow = s.app.create_workflow(&p, &req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(workflow)).into_response())
}

/// The workflows the caller may see (whose every project's jobs they may read), newest first.
#[utoipa::path(get, path = "/api/v1/workflows", operation_id = "list_workflows", tag = "workflows", params(PageParams),
    responses((status = 200, body = Page<Workflow>), (status = 400, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<Page<Workflow>>> {
    let page = s.app.list_workflows(&p, &q).await?;
    Ok(axum::Json(s.page("/api/v1/workflows", page)))
}

/// One workflow: its state and, per target, the instance, its job and the job's state.
#[utoipa::path(get, path = "/api/v1/workflows/{id}", operation_id = "get_workflow", tag = "workflows", params(("id" = Uuid, Path)),
    responses((status = 200, body = Workflow), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Workflow>> {
    Ok(axum::Json(s.app.get_workflow(&p, id).await?))
}
