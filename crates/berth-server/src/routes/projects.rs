//! `/api/v1/projects`: tenants and their members.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{CreateProject, ErrorBody, Member, Page, Project, PutMember, UpdateProject};
use uuid::Uuid;

use super::PageParams;
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;

/// Projects the caller belongs to (every project for platform admins).
#[utoipa::path(get, path = "/api/v1/projects", operation_id = "list_projects", tag = "projects", params(PageParams),
    responses((status = 200, body = Page<Project>)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<Page<Project>>> {
    let page = s.app.list_projects(&p, q.limit, q.offset).await?;
    Ok(axum::Json(s.page("/api/v1/projects", page)))
}

/// Creates a project owned by the caller.
#[utoipa::path(post, path = "/api/v1/projects", operation_id = "create_project", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = Project), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateProject>,
) -> ApiResult<Response> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.app.create_project(&p, &req).await?),
    )
        .into_response())
}

/// One project. Projects the caller does not belong to are not found.
#[utoipa::path(get, path = "/api/v1/projects/{id}", operation_id = "get_project", tag = "projects", params(("id" = Uuid, Path)),
    responses((status = 200, body = Project), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Project>> {
    Ok(axum::Json(s.app.get_project(&p, id).await?))
}

/// Renames or describes a project (owners and admins).
#[utoipa::path(patch, path = "/api/v1/projects/{id}", operation_id = "update_project", tag = "projects", params(("id" = Uuid, Path)), request_body = UpdateProject,
    responses((status = 200, body = Project), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateProject>,
) -> ApiResult<axum::Json<Project>> {
    Ok(axum::Json(s.app.update_project(&p, id, &req).await?))
}

/// Deletes a project (owners).
#[utoipa::path(delete, path = "/api/v1/projects/{id}", operation_id = "delete_project", tag = "projects", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    s.app.delete_project(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project's members and their roles.
#[utoipa::path(get, path = "/api/v1/projects/{id}/members", operation_id = "list_members", tag = "projects", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<Member>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn members(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<Page<Member>>> {
    let page = s.app.list_members(&p, id, q.limit, q.offset).await?;
    Ok(axum::Json(
        s.page(&format!("/api/v1/projects/{id}/members"), page),
    ))
}

/// Adds a member or changes their role (owners and admins; only owners touch ownership).
#[utoipa::path(put, path = "/api/v1/projects/{id}/members/{user_id}", operation_id = "put_member", tag = "projects",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = PutMember,
    responses((status = 200, body = Member), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn put_member(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
    Json(req): Json<PutMember>,
) -> ApiResult<axum::Json<Member>> {
    Ok(axum::Json(s.app.put_member(&p, id, user_id, &req).await?))
}

/// Removes a member.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/members/{user_id}", operation_id = "remove_member", tag = "projects",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn remove_member(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, user_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    s.app.remove_member(&p, id, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
