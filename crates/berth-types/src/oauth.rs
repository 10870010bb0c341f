//! OAuth 2.0 shapes: API clients, token endpoint responses (RFC 6749, 8628, 8693), introspection
//! (RFC 7662), the CLI bootstrap document, user tokens, and audit events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Permission;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    /// 1–100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// Required, in the future: machine credentials always expire.
    pub expires_at: DateTime<Utc>,
    /// Permission names the client is limited to; defaults to everything its owner may do.
    #[schema(value_type = Option<Vec<Permission>>)]
    pub scopes: Option<Vec<String>>,
    /// Limit the client to one project.
    pub project_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Client {
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    pub owner_id: Option<Uuid>,
    pub project_id: Option<Uuid>,
    pub scopes: Vec<String>,
    pub grant_types: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Only the creation response carries the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedClient {
    #[serde(flatten)]
    pub client: Client,
    /// Shown only in this response.
    pub client_secret: String,
}

/// A successful `POST /oauth/token`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OAuthTokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// RFC 8693 token exchange only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
}

/// RFC 6749 §5.2 error body, used by every `/oauth` endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OAuthErrorBody {
    pub error: String,
    pub error_description: String,
}

/// RFC 8628 §3.2 device authorization response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeviceAuthorization {
    pub device_code: String,
    /// `XXXX-XXXX`; case-insensitive, the dash is optional.
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
}

/// RFC 7662 introspection response; only `active` when the token is not active.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// `GET /api/v1/auth/provider`: what a CLI needs to sign in, from the server URL alone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthProvider {
    pub client_id: String,
    pub issuer_uri: String,
    pub scope: String,
    pub audience: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserToken {
    /// 1–100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// In the future, at most 999 days ahead.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserToken {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedUserToken {
    #[serde(flatten)]
    pub user_token: UserToken,
    /// Exchange at `POST /api/v1/auth/token/refresh` for a 24 h access token. Shown once.
    pub token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// e.g. `auth.login.succeeded`, `auth.refresh.reuse_detected`, `client.created`.
    pub event_type: String,
    pub actor_user_id: Option<Uuid>,
    pub actor_username: Option<String>,
    pub client_id: Option<String>,
    pub project_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

/// Filters of `GET /api/v1/audit-events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// An event type, or a prefix ending in `*` (`auth.*`).
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// A user id or username.
    pub actor: Option<String>,
    pub project_id: Option<Uuid>,
    /// Events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Events before this time (RFC 3339).
    pub until: Option<DateTime<Utc>>,
    /// Items per page (1–500, default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

/// A `POST /oauth/token` request (form-encoded). Unrecognised fields are ignored (RFC 6749 §3.2).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenForm {
    /// `client_credentials`, `refresh_token`, `urn:ietf:params:oauth:grant-type:device_code` or
    /// `urn:ietf:params:oauth:grant-type:token-exchange`.
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub device_code: Option<String>,
    pub refresh_token: Option<String>,
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// A `POST /oauth/device/code` request (RFC 8628 §3.1).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DeviceForm {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    pub audience: Option<String>,
}

/// A `POST /oauth/introspect` or `POST /oauth/revoke` request (RFC 7662, RFC 7009).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TokenActionForm {
    pub token: Option<String>,
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// What the activation page shows about a pending device authorization.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceRequest {
    pub user_code: String,
    pub client_id: String,
    pub client_name: String,
    /// Requested permissions with their descriptions.
    pub scopes: Vec<(String, String)>,
    pub expires_at: DateTime<Utc>,
}

/// RFC 8414 authorization server metadata, also served as the OpenID Connect discovery
/// document. It lists what Berth implements and nothing more.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub device_authorization_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<String>,
    /// `["none"]`: Berth has no authorization endpoint, so no response type issues anything
    /// (RFC 8414 requires the field and strict libraries refuse an empty list).
    pub response_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub scopes_supported: Vec<Permission>,
    pub subject_types_supported: Vec<String>,
    pub access_token_signing_alg_values_supported: Vec<String>,
    pub service_documentation: String,
}

/// RFC 7517 JSON Web Key Set: the public keys that verify Berth's access tokens.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// An Ed25519 public key (RFC 8037).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}
