//! Database users (PostgreSQL roles) and databases inside an instance, managed through the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{DbObjectState, DbUserProfile};

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DbUser {
    pub name: String,
    pub profile: DbUserProfile,
    pub state: DbObjectState,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDbUser {
    /// Lower-case letters, digits and `_`, starting with a letter or `_`, at most 63.
    #[schema(min_length = 1, max_length = 63, example = "app_reader")]
    pub name: String,
    /// `read_only`, `read_write` or `admin`.
    pub profile: DbUserProfile,
}

/// A user made, with its password: shown this once, Berth keeps only a SCRAM verifier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DbUserCreated {
    pub user: DbUser,
    pub password: String,
    pub job_id: Uuid,
}

/// A new password for a user (the owner role too): shown this once. The old one stops working
/// when the job finishes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PasswordReset {
    pub username: String,
    pub password: String,
    pub job_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Database {
    pub name: String,
    pub owner: String,
    pub state: DbObjectState,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabase {
    /// Lower-case letters, digits and `_`, starting with a letter or `_`, at most 63.
    #[schema(min_length = 1, max_length = 63, example = "analytics")]
    pub name: String,
    /// A user of the instance (default: the owner role).
    #[serde(default)]
    pub owner: Option<String>,
}

/// A change to an instance's users or databases, and the job that applies it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatabaseAccepted {
    pub database: Database,
    pub job_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DbChange {
    pub job_id: Uuid,
}
