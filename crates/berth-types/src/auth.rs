//! Sign-in requests and the credentials they return.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Permission, User, UserWithPermissions};

/// Browser sign-in; answers with the user and a session cookie.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Username or email address.
    pub login: String,
    pub password: String,
}

/// Script sign-in; answers with an access/refresh token pair.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Username or email address.
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Single use: exchanging it returns a new one and retires this one. Absent when a user
    /// token was exchanged (user tokens are not rotated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Seconds until the refresh token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_expires_in: Option<i64>,
    pub scope: String,
    pub user: UserWithPermissions,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1–100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// Optional expiry, in the future; keys without one live until revoked.
    pub expires_at: Option<DateTime<Utc>>,
    /// Permission names the key is limited to; defaults to everything its owner may do.
    #[schema(value_type = Option<Vec<Permission>>)]
    pub scopes: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it; never the whole secret.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Only the creation response carries the secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// Send as `Authorization: Api-Key <api_key>`. Shown only in this response.
    pub api_key: String,
}

/// How the caller of a request proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Session,
    AccessToken,
    ApiKey,
    /// An access token an API client obtained for itself (`client_credentials`).
    ClientCredentials,
    /// A method this client does not know (from a newer server); never sent by this one, and
    /// left out of the OpenAPI document.
    #[serde(other, skip_serializing)]
    Unknown,
}

impl AuthMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Session => "session",
            AuthMethod::AccessToken => "access_token",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::ClientCredentials => "client_credentials",
            AuthMethod::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET /api/v1/auth/check`: who the caller is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthCheck {
    pub user: User,
    pub auth_method: AuthMethod,
    /// What this credential may do (scopes intersected with what the user holds).
    pub permissions: Vec<String>,
    /// When this credential stops working (null: until revoked).
    pub expires_at: Option<DateTime<Utc>>,
    /// The session, token grant, API key or API client behind the credential.
    pub credential_id: Uuid,
    /// The OAuth client the token was issued to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The one project this credential is limited to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<Uuid>,
}
