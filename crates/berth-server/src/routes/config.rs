//! `/api/v1/instances/{id}/config`: the PostgreSQL parameters users may set.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{ConfigChange, ErrorBody, InstanceParameter, Page, UpdateConfig};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;

/// Every parameter that can be set, with its value, default, range, and the running server's
/// value.
#[utoipa::path(get, path = "/api/v1/instances/{id}/config", operation_id = "get_instance_config", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<InstanceParameter>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn get(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Page<InstanceParameter>>> {
    Ok(axum::Json(s.app.get_config(&p, id).await?))
}

/// Sets several parameters at once (202: a `config` job applies them; reloadable ones at
/// once, the others at the next restart, or now with `"apply": "restart"`).
#[utoipa::path(patch, path = "/api/v1/instances/{id}/config", operation_id = "update_instance_config", tag = "instances", params(("id" = Uuid, Path)), request_body = UpdateConfig,
    responses((status = 202, body = ConfigChange),
        (status = 400, body = ErrorBody, description = "an unknown or protected parameter, or a value out of range"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the instance is busy, or neither running nor paused")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn update(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateConfig>,
) -> ApiResult<Response> {
    let change = s.app.update_config(&p, id, &req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(change)).into_response())
}
