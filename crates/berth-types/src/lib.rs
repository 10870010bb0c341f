//! The JSON shapes of Berth's API: every request and response body, shared by the server (which
//! derives its OpenAPI document from them) and the CLI. No behaviour lives here beyond the role →
//! permission table, which is part of the documented contract.

mod auth;
mod backups;
mod config;
mod data_sources;
mod db_users;
mod firewall;
mod identity;
mod instances;
mod oauth;
mod permissions;
#[macro_use]
mod states;
mod stats;
mod workflows;

pub use auth::*;
pub use backups::*;
pub use config::*;
pub use data_sources::*;
pub use db_users::*;
pub use firewall::*;
pub use identity::*;
pub use instances::*;
pub use oauth::*;
pub use permissions::*;
pub use states::*;
pub use stats::*;
pub use workflows::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Every error response: a stable machine-readable code, a human message, and the request id
/// that also appears in the server log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub message: String,
    pub request_id: String,
}

/// A page of a list: `next`/`previous` are absolute URLs or null.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub count: i64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

/// `?limit=&offset=` on every list endpoint.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (1–500, default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    pub status: String,
}
