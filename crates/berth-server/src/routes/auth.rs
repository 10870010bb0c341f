//! Sign-in endpoints: cookie sessions, token pairs, API keys, and "who am I".

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_types::{
    ApiKey, AuthCheck, CreateApiKey, CreatedApiKey, ErrorBody, LoginRequest, Page, RefreshRequest,
    TokenRequest, TokenResponse, UserWithPermissions,
};
use uuid::Uuid;

use super::PageParams;
use crate::error::ApiResult;
use crate::extract::{session_cookie, Auth, Json, MaybeAuth, Path, Query, SESSION_COOKIE};
use crate::respond::no_store;
use crate::state::AppState;

pub(crate) fn session_cookie_header(value: &str, max_age_secs: u64) -> HeaderValue {
    let cookie = format!(
        "{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Lax"
    );
    HeaderValue::from_str(&cookie).expect("cookie value is ASCII")
}

/// Browser sign-in: returns the user and sets an `HttpOnly; Secure; SameSite=Lax` session
/// cookie. A session cookie sent along is replaced (the session id changes at every sign-in).
#[utoipa::path(post, path = "/api/v1/auth/login", operation_id = "login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = UserWithPermissions, headers(("set-cookie" = String))),
              (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    cookie_sign_in(&s, &headers, &req, axum::Json).await
}

/// Signs in with the session cookie (replacing one sent along) and answers with the user as
/// `shape` writes it: Berth's own, or another platform's (CCX).
pub(crate) async fn cookie_sign_in<B: IntoResponse>(
    s: &AppState,
    headers: &HeaderMap,
    req: &LoginRequest,
    shape: impl FnOnce(UserWithPermissions) -> B,
) -> ApiResult<Response> {
    let session = s
        .app
        .login_session(req, session_cookie(headers).as_deref())
        .await?;
    let mut resp = shape(session.user).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie_header(&session.secret, session.max_age.as_secs()),
    );
    Ok(no_store(resp))
}

/// Ends the caller's browser session or token family and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", operation_id = "logout", tag = "auth",
    responses((status = 204), (status = 400, body = ErrorBody, description = "API keys and client tokens are not signed out")),
    security((), ("bearer" = []), ("session" = [])))]
pub async fn logout(State(s): State<AppState>, MaybeAuth(p): MaybeAuth) -> ApiResult<Response> {
    s.app.logout(p.as_ref()).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header("", 0));
    Ok(resp)
}

/// Script sign-in: an access token (JWT, 1 h) and a single-use refresh token (24 h).
#[utoipa::path(post, path = "/api/v1/auth/token", operation_id = "create_token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn token(
    State(s): State<AppState>,
    Json(req): Json<TokenRequest>,
) -> ApiResult<Response> {
    let pair = s.app.login_tokens(&req).await?;
    Ok(no_store(
        axum::Json(TokenResponse::from(pair)).into_response(),
    ))
}

/// Exchanges a refresh token for a new pair. The presented token stops working; presenting it
/// again revokes every token of that sign-in.
#[utoipa::path(post, path = "/api/v1/auth/token/refresh", operation_id = "refresh_token", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(s): State<AppState>,
    Json(req): Json<RefreshRequest>,
) -> ApiResult<Response> {
    let pair = s.app.refresh(&req).await?;
    Ok(no_store(
        axum::Json(TokenResponse::from(pair)).into_response(),
    ))
}

/// Who the caller is, how they authenticated, and what their credential may do.
#[utoipa::path(get, path = "/api/v1/auth/check", operation_id = "check_auth", tag = "auth",
    responses((status = 200, body = AuthCheck), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn check(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<AuthCheck>> {
    Ok(axum::Json(s.app.auth_check(&p).await?))
}

/// Creates an API key for the caller. The key is in this response only.
#[utoipa::path(post, path = "/api/v1/auth/api-keys", operation_id = "create_api_key", tag = "auth", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn create_api_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<Response> {
    let created = s.app.create_api_key(&p, &req).await?;
    Ok(no_store(
        (StatusCode::CREATED, axum::Json(created)).into_response(),
    ))
}

/// The caller's active API keys, without secrets.
#[utoipa::path(get, path = "/api/v1/auth/api-keys", operation_id = "list_api_keys", tag = "auth", params(PageParams),
    responses((status = 200, body = Page<ApiKey>)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn list_api_keys(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<PageParams>,
) -> ApiResult<axum::Json<Page<ApiKey>>> {
    let page = s.app.list_api_keys(&p, q.limit, q.offset).await?;
    Ok(axum::Json(s.page("/api/v1/auth/api-keys", page)))
}

/// Revokes one of the caller's API keys, effective immediately.
#[utoipa::path(delete, path = "/api/v1/auth/api-keys/{id}", operation_id = "revoke_api_key", tag = "auth", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn revoke_api_key(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    s.app.revoke_api_key(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
