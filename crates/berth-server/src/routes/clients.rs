//! `/api/v1/auth/clients`: OAuth API clients (service accounts) and user tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use berth_types::{
    Client, CreateClient, CreateUserToken, CreatedClient, CreatedUserToken, ErrorBody, Page,
    UserToken,
};
use uuid::Uuid;

use super::PageParams;
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path, Query};
use crate::respond::no_store;
use crate::state::AppState;

fn created_no_store(body: impl serde::Serialize) -> Response {
    no_store((StatusCode::CREATED, axum::Json(body)))
}

/// Creates a confidential client acting as the caller, narrowed by its scopes (and project).
/// `expires_at` is required; the secret is in this response only.
#[utoipa::path(post, path = "/api/v1/auth/clients", operation_id = "create_client", tag = "auth", request_body = CreateClient,
    responses((status = 201, body = CreatedClient), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "`project_id` names no project the caller may see")),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateClient>,
) -> ApiResult<Response> {
    Ok(created_no_store(s.app.create_client(&p, &req).await?))
}

/// The caller's clients without secrets (every user's for platform admins).
#[utoipa::path(get, path = "/api/v1/auth/clients", operation_id = "list_clients", tag = "auth", params(PageParams),
    responses((status = 200, body = Page<Client>)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<Page<Client>>> {
    let page = s.app.list_clients(&p, q.limit, q.offset).await?;
    Ok(axum::Json(s.page("/api/v1/auth/clients", page)))
}

/// Revokes a client and every token issued to it, at once.
#[utoipa::path(delete, path = "/api/v1/auth/clients/{client_id}", operation_id = "revoke_client", tag = "auth", params(("client_id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn revoke(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(client_id): Path<String>,
) -> ApiResult<StatusCode> {
    s.app.revoke_client(&p, &client_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a long-lived user token (at most 999 days), shown once. Exchange it at
/// `POST /api/v1/auth/token/refresh` for a 24 h access token.
#[utoipa::path(post, path = "/api/v1/users/{id}/tokens", operation_id = "create_user_token", tag = "users", params(("id" = Uuid, Path)), request_body = CreateUserToken,
    responses((status = 201, body = CreatedUserToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create_user_token(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Json(req): Json<CreateUserToken>,
) -> ApiResult<Response> {
    Ok(created_no_store(
        s.app.create_user_token(&p, id, &req).await?,
    ))
}

/// A user's active user tokens, without secrets.
#[utoipa::path(get, path = "/api/v1/users/{id}/tokens", operation_id = "list_user_tokens", tag = "users", params(("id" = Uuid, Path), PageParams),
    responses((status = 200, body = Page<UserToken>), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list_user_tokens(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<Page<UserToken>>> {
    let page = s.app.list_user_tokens(&p, id, q.limit, q.offset).await?;
    Ok(axum::Json(
        s.page(&format!("/api/v1/users/{id}/tokens"), page),
    ))
}

/// Revokes a user token and the sessions it was exchanged for.
#[utoipa::path(delete, path = "/api/v1/users/{id}/tokens/{token_id}", operation_id = "revoke_user_token", tag = "users", params(("id" = Uuid, Path), ("token_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn revoke_user_token(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((id, token_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    s.app.revoke_user_token(&p, id, token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
