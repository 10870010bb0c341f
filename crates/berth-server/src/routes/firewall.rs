//! `/api/v1/instances/{id}/firewall-rules`: who may connect to an instance over TCP.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_types::{
    CreateFirewallRule, ErrorBody, FirewallChange, FirewallRule, FirewallRuleAccepted, Page,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;

/// The networks the instance accepts TCP connections from (none: nobody over TCP).
#[utoipa::path(get, path = "/api/v1/instances/{id}/firewall-rules", operation_id = "list_firewall_rules", tag = "instances", params(("id" = Uuid, Path)),
    responses((status = 200, body = Page<FirewallRule>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Page<FirewallRule>>> {
    Ok(axum::Json(s.app.list_firewall_rules(&p, id).await?))
}

/// Adds a rule (202: a `firewall` job applies it, within a second for a running instance).
#[utoipa::path(post, path = "/api/v1/instances/{id}/firewall-rules", operation_id = "create_firewall_rule", tag = "instances", params(("id" = Uuid, Path)), request_body = CreateFirewallRule,
    responses((status = 202, body = FirewallRuleAccepted), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the same network is a rule already, or the instance is busy")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateFirewallRule>,
) -> ApiResult<Response> {
    let accepted = s.app.add_firewall_rule(&p, id, &req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(accepted)).into_response())
}

/// Removes a rule (202: a `firewall` job applies it; connections already made stay).
#[utoipa::path(delete, path = "/api/v1/instances/{id}/firewall-rules/{rule_id}", operation_id = "delete_firewall_rule", tag = "instances",
    params(("id" = Uuid, Path), ("rule_id" = Uuid, Path)),
    responses((status = 202, body = FirewallChange), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn delete(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, rule)): Path<(Uuid, Uuid)>,
) -> ApiResult<Response> {
    let change = s.app.delete_firewall_rule(&p, id, rule).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(change)).into_response())
}
