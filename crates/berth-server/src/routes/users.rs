//! `/api/v1/users`: accounts, administered by platform admins.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{CreateUser, ErrorBody, Page, UpdateUser, User, UserWithPermissions};
use uuid::Uuid;

use super::PageParams;
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;

/// All users (platform admins).
#[utoipa::path(get, path = "/api/v1/users", operation_id = "list_users", tag = "users", params(PageParams),
    responses((status = 200, body = Page<User>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<Page<User>>> {
    let page = s.app.list_users(&p, q.limit, q.offset).await?;
    Ok(axum::Json(s.page("/api/v1/users", page)))
}

/// Creates a user (platform admins).
#[utoipa::path(post, path = "/api/v1/users", operation_id = "create_user", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateUser>,
) -> ApiResult<Response> {
    Ok((
        StatusCode::CREATED,
        axum::Json(s.app.create_user(&p, &req).await?),
    )
        .into_response())
}

/// One user (platform admins, or the user themself) with their permissions.
#[utoipa::path(get, path = "/api/v1/users/{id}", operation_id = "get_user", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserWithPermissions), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<UserWithPermissions>> {
    Ok(axum::Json(s.app.get_user(&p, id).await?))
}

/// Changes a user. Users may change their own email and password; the rest is for platform
/// admins. Disabling a user or changing a password ends their sessions and tokens.
#[utoipa::path(patch, path = "/api/v1/users/{id}", operation_id = "update_user", tag = "users", params(("id" = Uuid, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateUser>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(s.app.update_user(&p, id, &req).await?))
}

/// Deletes a user (platform admins), with all their credentials.
#[utoipa::path(delete, path = "/api/v1/users/{id}", operation_id = "delete_user", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    s.app.delete_user(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
