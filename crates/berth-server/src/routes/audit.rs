//! `/api/v1/audit-events` and signing-key rotation.

use axum::extract::State;
use berth_types::{AuditEvent, AuditQuery, ErrorBody, Page};

use crate::error::ApiResult;
use crate::extract::{Auth, Query};
use crate::state::AppState;

/// Authentication and administration events, newest first. Platform admins see all; project
/// owners and admins see their projects'.
#[utoipa::path(get, path = "/api/v1/audit-events", operation_id = "list_audit_events", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEvent>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`project_id` names no project the caller may see")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Page<AuditEvent>>> {
    let page = s.app.list_audit_events(&p, &q).await?;
    Ok(axum::Json(s.page("/api/v1/audit-events", page)))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RotatedKey {
    /// The id of the new signing key.
    pub kid: String,
}

/// Makes a new signing key current (platform admins). Old keys stay in the JWKS until the
/// tokens they signed have expired.
#[utoipa::path(post, path = "/api/v1/auth/keys/rotate", operation_id = "rotate_signing_key", tag = "auth",
    responses((status = 200, body = RotatedKey), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn rotate_key(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<axum::Json<RotatedKey>> {
    Ok(axum::Json(RotatedKey {
        kid: s.app.rotate_signing_key(&p).await?,
    }))
}
