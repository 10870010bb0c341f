//! The OAuth 2.0 endpoints under `/oauth`, and the discovery documents. Errors here use
//! RFC 6749 bodies; every response carrying a token is `no-store`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_types::{
    AuthProvider, DeviceAuthorization, DeviceForm, Introspection, OAuthErrorBody,
    OAuthTokenResponse, Permission, TokenActionForm, TokenForm,
};

use crate::error::OAuthError;
use crate::extract::{ClientBasic, OAuthForm};
use crate::state::AppState;

/// `no-store`, and the `Pragma` RFC 6749 asks of token responses for HTTP/1.0 caches.
fn no_store(resp: impl IntoResponse) -> Response {
    let mut resp = crate::respond::no_store(resp);
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// The token endpoint: `client_credentials`, `refresh_token`, the device code grant and token
/// exchange. Clients authenticate with HTTP Basic or `client_id`/`client_secret` in the form.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = OAuthTokenResponse), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody), (status = 429, body = OAuthErrorBody)))]
pub async fn token(
    State(s): State<AppState>,
    ClientBasic(basic): ClientBasic,
    OAuthForm(form): OAuthForm<TokenForm>,
) -> Result<Response, OAuthError> {
    Ok(no_store(axum::Json(
        s.app.oauth_token(&form, basic.as_ref()).await?,
    )))
}

/// RFC 8628 device authorization: returns a device code to poll with and a user code to
/// enter at `verification_uri`.
#[utoipa::path(post, path = "/oauth/device/code", tag = "oauth",
    request_body(content = DeviceForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = DeviceAuthorization), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody)))]
pub async fn device_code(
    State(s): State<AppState>,
    ClientBasic(basic): ClientBasic,
    OAuthForm(form): OAuthForm<DeviceForm>,
) -> Result<Response, OAuthError> {
    Ok(no_store(axum::Json(
        s.app.device_authorize(&form, basic.as_ref()).await?,
    )))
}

/// RFC 7662 token introspection, for confidential clients.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    request_body(content = TokenActionForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection), (status = 401, body = OAuthErrorBody)))]
pub async fn introspect(
    State(s): State<AppState>,
    ClientBasic(basic): ClientBasic,
    OAuthForm(form): OAuthForm<TokenActionForm>,
) -> Result<Response, OAuthError> {
    Ok(no_store(axum::Json(
        s.app.introspect(&form, basic.as_ref()).await?,
    )))
}

/// RFC 7009 token revocation: always 200 for a well-formed request.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    request_body(content = TokenActionForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200), (status = 400, body = OAuthErrorBody), (status = 401, body = OAuthErrorBody)))]
pub async fn revoke(
    State(s): State<AppState>,
    ClientBasic(basic): ClientBasic,
    OAuthForm(form): OAuthForm<TokenActionForm>,
) -> Result<Response, OAuthError> {
    s.app.revoke_token(&form, basic.as_ref()).await?;
    Ok(no_store(StatusCode::OK))
}

/// Exactly what this server supports, for RFC 8414 and OpenID Connect discovery alike.
fn metadata(s: &AppState) -> serde_json::Value {
    let issuer = &s.app.settings().issuer;
    let scopes: Vec<&str> = Permission::ALL.iter().map(|p| p.as_str()).collect();
    serde_json::json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/oauth/token"),
        "device_authorization_endpoint": format!("{issuer}/oauth/device/code"),
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "grant_types_supported": [
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": scopes,
        "token_endpoint_auth_signing_alg_values_supported": [],
        "subject_types_supported": ["public"],
        "access_token_signing_alg_values_supported": ["EdDSA"],
        "service_documentation": format!("{issuer}/api/docs"),
    })
}

/// RFC 8414 authorization server metadata.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "oauth", responses((status = 200, content_type = "application/json")))]
pub async fn authorization_server_metadata(State(s): State<AppState>) -> Response {
    axum::Json(metadata(&s)).into_response()
}

/// The same metadata at the OpenID Connect discovery location.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oauth", responses((status = 200, content_type = "application/json")))]
pub async fn openid_configuration(State(s): State<AppState>) -> Response {
    axum::Json(metadata(&s)).into_response()
}

/// What a CLI needs to sign in from the server URL alone: the public client id, the issuer,
/// and the scope and audience to request.
#[utoipa::path(get, path = "/api/v1/auth/provider", tag = "auth", responses((status = 200, body = AuthProvider)))]
pub async fn provider(State(s): State<AppState>) -> axum::Json<AuthProvider> {
    axum::Json(s.app.auth_provider())
}
