//! BigID's sign-in API: `POST /api/v1/sessions` with a username and password (JSON, or
//! form-encoded as its Python sample sends them) for a session token that lasts a day and is
//! sent as a bare `Authorization` header, and `GET /api/v1/refresh-access-token`, which trades
//! a user token (in `Authorization`) for such a token. Both are Berth's own sign-ins: the same
//! password checks and throttling, user tokens and grants. `GET /api/v1/ds-connections` lists
//! the caller's data sources in BigID's envelope.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use berth_types::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::Auth;
use crate::state::AppState;

/// The credentials, as JSON or form fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BigIdCredentials {
    /// A username or email address.
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BigIdSession {
    pub success: bool,
    pub message: String,
    /// A Berth access token valid for 24 hours; send it as `Authorization: <token>` (or with
    /// `Bearer`).
    #[serde(rename = "auth_token")]
    pub auth_token: String,
    pub username: String,
    /// Berth keeps no display name: the username.
    pub first_name: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BigIdSystemToken {
    pub success: bool,
    /// A Berth access token valid for 24 hours.
    pub system_token: String,
}

fn bad(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// The credentials from a JSON or a form-encoded body.
fn credentials(headers: &HeaderMap, body: &[u8]) -> Result<BigIdCredentials, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let (mut username, mut password) = (None, None);
        for (k, v) in url::form_urlencoded::parse(body) {
            match k.as_ref() {
                "username" => username = Some(v.into_owned()),
                "password" => password = Some(v.into_owned()),
                other => {
                    return Err(bad(&format!(
                        "unknown field `{}`",
                        other.chars().take(40).collect::<String>()
                    )))
                }
            }
        }
        return match (username, password) {
            (Some(username), Some(password)) => Ok(BigIdCredentials { username, password }),
            _ => Err(bad("username and password are required")),
        };
    }
    if content_type.starts_with("application/json") {
        return serde_json::from_slice(body).map_err(|e| bad(&format!("invalid body: {e}")));
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the credentials as application/json or application/x-www-form-urlencoded",
    ))
}

/// Signs in for a session token valid 24 hours (no refresh token: sign in again).
#[utoipa::path(post, path = "/api/v1/sessions", operation_id = "bigid_create_session", tag = "compat-bigid",
    request_body(content = BigIdCredentials, content_type = "application/json",
        description = "also accepted form-encoded (`application/x-www-form-urlencoded`)"),
    responses((status = 200, body = BigIdSession), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn sessions(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let req = credentials(&headers, &body)?;
    let pair = s
        .app
        .login_session_token(&req.username, &req.password)
        .await?;
    Ok(crate::respond::no_store(axum::Json(BigIdSession {
        success: true,
        message: "Enjoy your token!".into(),
        auth_token: pair.access_token,
        username: pair.user.user.username.clone(),
        first_name: pair.user.user.username,
        permissions: pair.user.permissions,
    })))
}

/// Trades a user token (`Authorization: <user token>`, with or without `Bearer`) for a session
/// token valid 24 hours, as `POST /api/v1/auth/token/refresh` does with user tokens.
#[utoipa::path(get, path = "/api/v1/refresh-access-token", operation_id = "bigid_refresh_access_token", tag = "compat-bigid",
    responses((status = 200, body = BigIdSystemToken), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn refresh_access_token(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send a user token in the Authorization header",
            )
        })?;
    let pair = s.app.exchange_user_token(presented).await?;
    Ok(crate::respond::no_store(axum::Json(BigIdSystemToken {
        success: true,
        system_token: pair.access_token,
    })))
}

/// A data source as BigID lists its data-source connections.
#[derive(Debug, Serialize, ToSchema)]
pub struct BigIdDsConnection {
    #[serde(rename = "_id")]
    pub id: uuid::Uuid,
    pub name: String,
    /// Always `rdb-postgresql`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always `yes`: Berth has no disabled data sources.
    pub enabled: &'static str,
    /// `host:port`.
    pub rdb_url: String,
    /// The database.
    pub rdb_name: String,
    pub username: String,
    pub sslmode: berth_types::SslMode,
    pub project_id: uuid::Uuid,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Whether the last test connected (null: never tested).
    pub last_test_ok: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BigIdDsConnectionList {
    pub ds_connections: Vec<BigIdDsConnection>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BigIdDsConnections {
    /// Always `success` (errors are Berth's error bodies).
    pub status: &'static str,
    pub status_code: u16,
    pub data: BigIdDsConnectionList,
}

/// Every data source of the projects the caller may see (`GET /api/v1/data-sources`, all
/// pages), in BigID's envelope.
#[utoipa::path(get, path = "/api/v1/ds-connections", operation_id = "bigid_list_ds_connections", tag = "compat-bigid",
    responses((status = 200, body = BigIdDsConnections), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn ds_connections(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<axum::Json<BigIdDsConnections>> {
    let mut all = Vec::new();
    let mut q = berth_types::DataSourceQuery {
        limit: Some(500),
        ..Default::default()
    };
    loop {
        let page = s.app.list_data_sources(&p, &q).await?;
        let got = page.results.len() as i64;
        all.extend(page.results);
        if page.next.is_none() || got == 0 {
            break;
        }
        q.offset = Some(q.offset.unwrap_or(0) + got);
    }
    let ds_connections = all
        .into_iter()
        .map(|d| BigIdDsConnection {
            rdb_url: if d.host.contains(':') {
                format!("[{}]:{}", d.host, d.port)
            } else {
                format!("{}:{}", d.host, d.port)
            },
            id: d.id,
            name: d.name,
            kind: "rdb-postgresql",
            enabled: "yes",
            rdb_name: d.database,
            username: d.username,
            sslmode: d.sslmode,
            project_id: d.project_id,
            created_at: d.created_at,
            updated_at: d.updated_at,
            last_test_ok: d.last_test.map(|t| t.ok),
        })
        .collect();
    Ok(axum::Json(BigIdDsConnections {
        status: "success",
        status_code: 200,
        data: BigIdDsConnectionList { ds_connections },
    }))
}
