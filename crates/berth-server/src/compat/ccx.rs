//! Severalnines CCX's authentication API: `POST /api/auth/login` with `{login, password}` (the
//! session cookie, and the user in CCX's shape), `POST /api/auth/oauth2/token` with form-encoded
//! client credentials, and `GET /api/auth/check`. Each is one of Berth's own sign-ins under
//! CCX's path: the same password checks, throttling, sessions and tokens. (Swagger UI is also
//! served at CCX's `/api/swagger/index.html`, from the router.)

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use berth_types::{
    AuthCheck, ErrorBody, LoginRequest, OAuthErrorBody, OAuthTokenResponse, TokenForm, User,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiResult, OAuthError};
use crate::extract::{Auth, ClientBasic, Json, OAuthForm};
use crate::state::AppState;

/// A moment as CCX writes it (protobuf's `Timestamp`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CcxTimestamp {
    pub seconds: i64,
    pub nanos: u32,
}

impl From<DateTime<Utc>> for CcxTimestamp {
    fn from(t: DateTime<Utc>) -> Self {
        CcxTimestamp {
            seconds: t.timestamp(),
            nanos: t.timestamp_subsec_nanos(),
        }
    }
}

/// The signed-in user as CCX describes it. Berth keeps no first or last name: `firstName` is
/// the username and `lastName` is empty.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CcxUser {
    pub id: String,
    pub login: String,
    pub first_name: String,
    pub last_name: String,
    /// Berth has no terms to accept: both are true.
    pub terms_accepted: BTreeMap<String, bool>,
    /// Where the account comes from: `berth`.
    pub origin: String,
    pub created_at: CcxTimestamp,
    pub updated_at: CcxTimestamp,
    /// Berth's own fields: `email`, `permissions`, `is_platform_admin`.
    pub additional_fields: serde_json::Value,
}

fn ccx_user(u: User, permissions: Vec<String>) -> CcxUser {
    CcxUser {
        id: u.id.to_string(),
        login: u.username.clone(),
        first_name: u.username,
        last_name: String::new(),
        terms_accepted: [
            ("TermsAndConditionsV1".to_owned(), true),
            ("PrivacyPolicyV1".to_owned(), true),
        ]
        .into(),
        origin: "berth".into(),
        created_at: u.created_at.into(),
        updated_at: u.updated_at.into(),
        additional_fields: serde_json::json!({
            "email": u.email,
            "is_platform_admin": u.is_platform_admin,
            "permissions": permissions,
        }),
    }
}

/// Signs in with a username (or email) and password: the user, and Berth's session cookie
/// (`HttpOnly; Secure; SameSite=Lax`), as `POST /api/v1/auth/login` does.
#[utoipa::path(post, path = "/api/auth/login", operation_id = "ccx_login", tag = "compat-ccx", request_body = LoginRequest,
    responses((status = 200, body = CcxUser, headers(("set-cookie" = String))),
              (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Response> {
    crate::routes::auth::cookie_sign_in(&s, &headers, &req, |u| {
        axum::Json(ccx_user(u.user, u.permissions))
    })
    .await
}

/// Berth's token endpoint (`/oauth/token`) under CCX's path: client credentials in the form
/// (`client_id`, `client_secret`, `grant_type=client_credentials`) or with HTTP Basic.
#[utoipa::path(post, path = "/api/auth/oauth2/token", operation_id = "ccx_oauth2_token", tag = "compat-ccx",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = OAuthTokenResponse), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody), (status = 429, body = OAuthErrorBody)))]
pub async fn token(
    State(s): State<AppState>,
    ClientBasic(basic): ClientBasic,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, OAuthError> {
    Ok(crate::routes::oauth::no_store(axum::Json(
        s.app.oauth_token(&form, basic.as_ref()).await?,
    )))
}

/// Who the caller is and what their credential may do (Berth's `GET /api/v1/auth/check`).
#[utoipa::path(get, path = "/api/auth/check", operation_id = "ccx_check", tag = "compat-ccx",
    responses((status = 200, body = AuthCheck), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn check(State(s): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<AuthCheck>> {
    Ok(axum::Json(s.app.auth_check(&p).await?))
}
