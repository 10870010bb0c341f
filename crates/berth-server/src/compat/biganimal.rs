//! EDB BigAnimal's authentication and projects API (`/api/v3/…`): the provider document its
//! scripts start from, the exchange of a raw token for the platform's, and projects with its
//! field names. The device flow and the refresh its documentation describes are Berth's own
//! `/oauth/device/code` and `/oauth/token` (the provider names Berth as the issuer), so
//! `contrib/get-token.sh` works against Berth unchanged in its steps.

use axum::extract::State;
use axum::response::Response;
use berth_types::ErrorBody;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Json};
use crate::state::AppState;

/// What BigAnimal's `get-token.sh` reads first.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BigAnimalProvider {
    /// Berth's public client, for the device flow.
    pub client_id: String,
    /// Berth itself: `<issuerUri>/oauth/device/code`, `<issuerUri>/oauth/token`.
    pub issuer_uri: String,
    /// The scopes to ask for (OpenID scopes such as `openid profile email offline_access` are
    /// accepted too, and ignored).
    pub scope: String,
    /// `<issuerUri>/api`: the projects are at `<audience>/v3/projects`.
    pub audience: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BigAnimalTokenRequest {
    /// The raw access token from the device flow (or a trusted external issuer's).
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BigAnimalToken {
    /// A Berth access token for the API.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloudProvider {
    pub cloud_provider_id: String,
    pub cloud_provider_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BigAnimalProject {
    pub project_id: uuid::Uuid,
    pub project_name: String,
    /// Instances, not counting deleted ones.
    pub cluster_count: i64,
    /// Members.
    pub user_count: i64,
    pub cloud_providers: Vec<CloudProvider>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BigAnimalProjects {
    pub data: Vec<BigAnimalProject>,
}

/// Where to sign in: client, issuer, scope and audience (Berth's `GET /api/v1/auth/provider`
/// with BigAnimal's field names).
#[utoipa::path(get, path = "/api/v3/auth/provider", operation_id = "biganimal_auth_provider", tag = "compat-biganimal",
    responses((status = 200, body = BigAnimalProvider)))]
pub async fn provider(State(s): State<AppState>) -> axum::Json<BigAnimalProvider> {
    let p = s.app.auth_provider();
    axum::Json(BigAnimalProvider {
        client_id: p.client_id,
        issuer_uri: p.issuer_uri,
        scope: p.scope,
        audience: p.audience,
    })
}

/// Exchanges a raw access token for a Berth access token (RFC 8693 underneath, through Berth's
/// public client).
#[utoipa::path(post, path = "/api/v3/auth/token", operation_id = "biganimal_exchange_token", tag = "compat-biganimal", request_body = BigAnimalTokenRequest,
    responses((status = 200, body = BigAnimalToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn token(
    State(s): State<AppState>,
    Json(req): Json<BigAnimalTokenRequest>,
) -> ApiResult<Response> {
    if req.token.is_empty() || req.token.len() > 16 * 1024 {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_request",
            "token must be a non-empty access token",
        ));
    }
    let exchanged = s
        .app
        .exchange_presented_token(&req.token)
        .await
        .map_err(|e| match e {
            // A token that is not valid here is the caller's credential failing: 401.
            berth_core::AppError::OAuth { .. } => ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token is invalid, expired, revoked, or of an issuer this server does not trust",
            ),
            other => other.into(),
        })?;
    Ok(crate::respond::no_store(axum::Json(BigAnimalToken {
        token: exchanged.access_token,
    })))
}

/// The caller's projects with BigAnimal's field names.
#[utoipa::path(get, path = "/api/v3/projects", operation_id = "biganimal_list_projects", tag = "compat-biganimal",
    responses((status = 200, body = BigAnimalProjects), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("api_key" = []), ("session" = [])))]
pub async fn projects(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> ApiResult<axum::Json<BigAnimalProjects>> {
    let mut data = Vec::new();
    loop {
        let page = s
            .app
            .list_projects(&p, Some(500), Some(data.len() as i64))
            .await?;
        let last = page.next.is_none() || page.results.is_empty();
        data.extend(page.results.into_iter().map(|p| BigAnimalProject {
            project_id: p.id,
            project_name: p.name,
            cluster_count: p.instance_count,
            user_count: p.user_count,
            cloud_providers: vec![CloudProvider {
                cloud_provider_id: "berth".into(),
                cloud_provider_name: "Berth (self-hosted)".into(),
            }],
        }));
        if last {
            return Ok(axum::Json(BigAnimalProjects { data }));
        }
    }
}
