//! Users, projects and memberships.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::Role;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub is_platform_admin: bool,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

/// A user together with every permission they hold somewhere (platform-wide for admins, else
/// the union of their project roles and the permissions every user has).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserWithPermissions {
    #[serde(flatten)]
    pub user: User,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 3–64 characters: lowercase letters, digits, `.`, `_`, `-`.
    #[schema(min_length = 3, max_length = 64, pattern = "^[a-z0-9._-]+$")]
    pub username: String,
    /// An address such as `ada@example.com`, at most 254 characters.
    #[schema(
        max_length = 254,
        pattern = "^[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+@[^@\\s.\\u0000-\\u001f\\u007f-\\u009f]+(\\.[^@\\s.\\u0000-\\u001f\\u007f-\\u009f]+)+$"
    )]
    pub email: String,
    /// 12 characters to 1024 bytes.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
    #[serde(default)]
    pub is_platform_admin: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// An address such as `ada@example.com`, at most 254 characters.
    #[schema(
        max_length = 254,
        pattern = "^[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+@[^@\\s.\\u0000-\\u001f\\u007f-\\u009f]+(\\.[^@\\s.\\u0000-\\u001f\\u007f-\\u009f]+)+$"
    )]
    pub email: Option<String>,
    /// 12 characters to 1024 bytes.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
    pub is_platform_admin: Option<bool>,
    /// Disabling a user ends all their sessions and tokens at once.
    pub disabled: Option<bool>,
    /// Required when changing your own password or email.
    pub current_password: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Project {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Number of members.
    pub user_count: i64,
    /// Number of instances (not counting deleted ones).
    pub instance_count: i64,
    /// The caller's role in this project (null for platform admins who are not members).
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 1–100 characters (leading and trailing spaces are dropped), no control characters;
    /// unique per platform.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// At most 1000 characters; no control characters but line feeds.
    #[serde(default)]
    #[schema(
        max_length = 1000,
        pattern = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    pub description: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    /// 1–100 characters (leading and trailing spaces are dropped), no control characters;
    /// unique per platform.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: Option<String>,
    /// At most 1000 characters; no control characters but line feeds.
    #[schema(
        max_length = 1000,
        pattern = "^[^\\u0000-\\u0009\\u000b-\\u001f\\u007f-\\u009f]*$"
    )]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Member {
    pub user_id: Uuid,
    pub username: String,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutMember {
    pub role: Role,
}
