//! `/api/v1/instances/{id}/stats` and `…/logs`: how an instance is doing.

use axum::extract::State;
use berth_types::{ErrorBody, InstanceStats, LogPage, LogQuery, StatsQuery};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Path, Query};
use crate::state::AppState;

/// Statistics over time: one series per metric, a point per step (rates per second; `avg` or
/// `max` of the samples in the step, as each series says; null where no sample says).
#[utoipa::path(get, path = "/api/v1/instances/{id}/stats", operation_id = "get_instance_stats", tag = "instances", params(("id" = Uuid, Path), StatsQuery),
    responses((status = 200, body = InstanceStats),
        (status = 400, body = ErrorBody, description = "an unknown metric (the message lists them), a time that is not RFC 3339, `from` not before `to`, a bad step or too many points"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn stats(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<axum::Json<InstanceStats>> {
    Ok(axum::Json(s.app.instance_stats(&p, id, &q).await?))
}

/// The instance's PostgreSQL log, parsed (time, severity, message and the lines attached to
/// it), oldest first, without host paths. Without `since` or `cursor`: the latest entries.
#[utoipa::path(get, path = "/api/v1/instances/{id}/logs", operation_id = "get_instance_logs", tag = "instances", params(("id" = Uuid, Path), LogQuery),
    responses((status = 200, body = LogPage),
        (status = 400, body = ErrorBody, description = "a bad `since`, `cursor` or `limit`, or both `since` and `cursor`"),
        (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn logs(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<LogQuery>,
) -> ApiResult<axum::Json<LogPage>> {
    let mut page = s.app.instance_logs(&p, id, &q).await?;
    page.next = page
        .next
        .map(|q| s.url(&format!("/api/v1/instances/{id}/logs"), Some(&q)));
    Ok(axum::Json(page))
}
