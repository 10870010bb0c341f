//! The OAuth 2.0 endpoints under `/oauth`, and the discovery documents. Errors here use
//! RFC 6749 bodies; every response carrying a token is `no-store`.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_types::{
    AuthProvider, AuthorizationServerMetadata, DeviceAuthorization, DeviceForm, Introspection,
    OAuthErrorBody, OAuthTokenResponse, TokenActionForm, TokenForm,
};

use crate::error::OAuthError;
use crate::extract::{ClientBasic, OAuthForm};
use crate::state::AppState;

/// `no-store`, and the `Pragma` RFC 6749 asks of token responses for HTTP/1.0 caches.
pub(crate) fn no_store(resp: impl IntoResponse) -> Response {
    let mut resp = crate::respond::no_store(resp);
    resp.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// The token endpoint: `client_credentials`, `refresh_token`, the device code grant and token
/// exchange. Clients authenticate with HTTP Basic or `client_id`/`client_secret` in the form.
#[utoipa::path(post, path = "/oauth/token", operation_id = "oauth_token", tag = "oauth",
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
#[utoipa::path(post, path = "/oauth/device/code", operation_id = "oauth_device_authorization", tag = "oauth",
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
#[utoipa::path(post, path = "/oauth/introspect", operation_id = "oauth_introspect", tag = "oauth",
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
#[utoipa::path(post, path = "/oauth/revoke", operation_id = "oauth_revoke", tag = "oauth",
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

/// RFC 8414 authorization server metadata.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", operation_id = "get_authorization_server_metadata", tag = "oauth",
    responses((status = 200, body = AuthorizationServerMetadata)))]
pub async fn authorization_server_metadata(
    State(s): State<AppState>,
) -> axum::Json<AuthorizationServerMetadata> {
    axum::Json(s.app.authorization_server_metadata())
}

/// The same metadata at the OpenID Connect discovery location.
#[utoipa::path(get, path = "/.well-known/openid-configuration", operation_id = "get_openid_configuration", tag = "oauth",
    responses((status = 200, body = AuthorizationServerMetadata)))]
pub async fn openid_configuration(
    State(s): State<AppState>,
) -> axum::Json<AuthorizationServerMetadata> {
    axum::Json(s.app.authorization_server_metadata())
}

/// What a CLI needs to sign in from the server URL alone: the public client id, the issuer,
/// and the scope and audience to request.
#[utoipa::path(get, path = "/api/v1/auth/provider", operation_id = "get_auth_provider", tag = "auth", responses((status = 200, body = AuthProvider)))]
pub async fn provider(State(s): State<AppState>) -> axum::Json<AuthProvider> {
    axum::Json(s.app.auth_provider())
}
