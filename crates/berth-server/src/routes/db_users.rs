//! `/api/v1/instances/{id}/users` and `…/databases`: the database users and databases inside
//! an instance.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{
    CreateDatabase, CreateDbUser, Database, DatabaseAccepted, DbChange, DbUser, DbUserCreated,
    ErrorBody, Page, PasswordReset,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;

/// The instance's owner role and the users made through the API.
#[utoipa::path(get, path = "/api/v1/instances/{id}/users", operation_id = "list_db_users", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<DbUser>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list_users(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Page<DbUser>>> {
    Ok(axum::Json(s.app.list_db_users(&p, id).await?))
}

/// Makes a user with a generated password, shown this once (202: a `db_users` job makes the
/// role).
#[utoipa::path(post, path = "/api/v1/instances/{id}/users", operation_id = "create_db_user", tag = "instances", params(("id" = Uuid, Path)), request_body = CreateDbUser,
    responses((status = 202, body = DbUserCreated), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the name is taken, or the instance is busy or not running")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create_user(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateDbUser>,
) -> ApiResult<Response> {
    let created = s.app.create_db_user(&p, id, &req).await?;
    Ok(crate::respond::no_store((
        StatusCode::ACCEPTED,
        axum::Json(created),
    )))
}

/// Removes a user; what it owned goes to the owner role (202: a `db_users` job).
#[utoipa::path(delete, path = "/api/v1/instances/{id}/users/{name}", operation_id = "delete_db_user", tag = "instances",
    params(("id" = Uuid, Path), ("name" = String, Path)),
    responses((status = 202, body = DbChange), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the owner or a system role, a user that owns a database, or the instance is busy or not running")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete_user(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, name)): Path<(Uuid, String)>,
) -> ApiResult<Response> {
    let change = s.app.delete_db_user(&p, id, &name).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(change)).into_response())
}

/// A new password for a user or the owner role, shown this once; the old one stops working
/// when the `db_users` job has run.
#[utoipa::path(post, path = "/api/v1/instances/{id}/users/{name}/reset-password", operation_id = "reset_db_user_password", tag = "instances",
    params(("id" = Uuid, Path), ("name" = String, Path)),
    responses((status = 202, body = PasswordReset), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the instance is busy or not running")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn reset_password(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, name)): Path<(Uuid, String)>,
) -> ApiResult<Response> {
    let reset = s.app.reset_db_user_password(&p, id, &name).await?;
    Ok(crate::respond::no_store((
        StatusCode::ACCEPTED,
        axum::Json(reset),
    )))
}

/// The owner's database and the databases made through the API.
#[utoipa::path(get, path = "/api/v1/instances/{id}/databases", operation_id = "list_databases", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<Database>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list_databases(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Page<Database>>> {
    Ok(axum::Json(s.app.list_databases(&p, id).await?))
}

/// Makes a database owned by a user of the instance (202: a `databases` job).
#[utoipa::path(post, path = "/api/v1/instances/{id}/databases", operation_id = "create_database", tag = "instances", params(("id" = Uuid, Path)), request_body = CreateDatabase,
    responses((status = 202, body = DatabaseAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the name is taken, or the instance is busy or not running")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create_database(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateDatabase>,
) -> ApiResult<Response> {
    let accepted = s.app.create_database(&p, id, &req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)).into_response())
}

/// Drops a database made through the API, ending its sessions (202: a `databases` job).
#[utoipa::path(delete, path = "/api/v1/instances/{id}/databases/{name}", operation_id = "delete_database", tag = "instances",
    params(("id" = Uuid, Path), ("name" = String, Path)),
    responses((status = 202, body = DbChange), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the instance's own database, or the instance is busy or not running")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete_database(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, name)): Path<(Uuid, String)>,
) -> ApiResult<Response> {
    let change = s.app.delete_database(&p, id, &name).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(change)).into_response())
}
