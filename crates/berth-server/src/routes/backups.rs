//! `/api/v1/instances/{id}/backups`, `…/backup-policy`, `…/restore-window` and
//! `/api/v1/projects/{id}/backups`. Restores and clones are creates with a `source`
//! (`POST /api/v1/instances`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{
    Backup, BackupAccepted, BackupPolicy, BackupQuery, CreateBackup, ErrorBody, Page, RestoreWindow,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::state::AppState;

/// An instance's backups, newest first (also of a deleted instance, while they are kept).
#[utoipa::path(get, path = "/api/v1/instances/{id}/backups", operation_id = "list_backups", tag = "backups", params(("id" = Uuid, Path), BackupQuery),
    responses((status = 200, body = Page<Backup>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<BackupQuery>,
) -> ApiResult<axum::Json<Page<Backup>>> {
    let page = s.app.list_backups(&p, id, &q).await?;
    Ok(axum::Json(
        s.page(&format!("/api/v1/instances/{id}/backups"), page),
    ))
}

/// Takes a backup now (202, as a `backup` job): `full` by default, or `diff` / `incr`.
#[utoipa::path(post, path = "/api/v1/instances/{id}/backups", operation_id = "create_backup", tag = "backups", params(("id" = Uuid, Path)), request_body = CreateBackup,
    responses((status = 202, body = BackupAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the instance is not running, or busy with another job")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateBackup>,
) -> ApiResult<Response> {
    let accepted = s.app.create_backup(&p, id, &req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)).into_response())
}

/// One backup.
#[utoipa::path(get, path = "/api/v1/instances/{id}/backups/{backup_id}", operation_id = "get_backup", tag = "backups",
    params(("id" = Uuid, Path), ("backup_id" = Uuid, Path)),
    responses((status = 200, body = Backup), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, backup)): Path<(Uuid, Uuid)>,
) -> ApiResult<axum::Json<Backup>> {
    Ok(axum::Json(s.app.get_backup(&p, id, backup).await?))
}

/// Deletes a backup; refused (409, naming them) while a newer backup is based on it.
#[utoipa::path(delete, path = "/api/v1/instances/{id}/backups/{backup_id}", operation_id = "delete_backup", tag = "backups",
    params(("id" = Uuid, Path), ("backup_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, backup)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    s.app.delete_backup(&p, id, backup).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// When the instance is backed up and how long backups are kept.
#[utoipa::path(get, path = "/api/v1/instances/{id}/backup-policy", operation_id = "get_backup_policy", tag = "backups", params(("id" = Uuid, Path)),
    responses((status = 200, body = BackupPolicy), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get_policy(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<BackupPolicy>> {
    Ok(axum::Json(s.app.get_backup_policy(&p, id).await?))
}

/// Replaces the backup policy (schedule and retention; a new retention applies from the next
/// backup).
#[utoipa::path(put, path = "/api/v1/instances/{id}/backup-policy", operation_id = "put_backup_policy", tag = "backups", params(("id" = Uuid, Path)), request_body = BackupPolicy,
    responses((status = 200, body = BackupPolicy), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn put_policy(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<BackupPolicy>,
) -> ApiResult<axum::Json<BackupPolicy>> {
    Ok(axum::Json(s.app.put_backup_policy(&p, id, &req).await?))
}

/// The earliest and latest moments the instance can be restored to.
#[utoipa::path(get, path = "/api/v1/instances/{id}/restore-window", operation_id = "get_restore_window", tag = "backups", params(("id" = Uuid, Path)),
    responses((status = 200, body = RestoreWindow), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn window(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<RestoreWindow>> {
    Ok(axum::Json(s.app.restore_window(&p, id).await?))
}

/// The backups of every instance of a project, deleted instances' included.
#[utoipa::path(get, path = "/api/v1/projects/{id}/backups", operation_id = "list_project_backups", tag = "backups", params(("id" = Uuid, Path), BackupQuery),
    responses((status = 200, body = Page<Backup>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list_for_project(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<BackupQuery>,
) -> ApiResult<axum::Json<Page<Backup>>> {
    let page = s.app.list_project_backups(&p, id, &q).await?;
    Ok(axum::Json(
        s.page(&format!("/api/v1/projects/{id}/backups"), page),
    ))
}
