//! An instance's configuration parameters: the PostgreSQL settings a user may change, and the
//! change itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One parameter a user may set.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InstanceParameter {
    pub name: String,
    /// `bool`, `integer`, `real`, `enum` or `string` (PostgreSQL's `vartype`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The unit of a number written without one (`kB`, `8kB`, `MB`, `ms`, `s`), if any.
    pub unit: Option<String>,
    /// What Berth will run the instance with: the user's value, or else the default.
    pub value: String,
    /// The value for the instance's memory class (or PostgreSQL's own default).
    pub default: String,
    /// `user` when set through the API, `default` otherwise.
    pub source: String,
    /// The lowest and highest value accepted (numbers), with units.
    pub min: Option<String>,
    pub max: Option<String>,
    /// The accepted values (enums, lists).
    pub allowed_values: Option<Vec<String>>,
    /// Whether a change takes effect only when the server restarts.
    pub restart_required: bool,
    /// The running server's value, or null when it is not running.
    pub current: Option<String>,
    /// Changed in the configuration, but the running server still uses its old value until it
    /// restarts.
    pub pending_restart: bool,
    pub description: String,
}

/// When changed parameters take effect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApplyMode {
    /// Reloadable parameters at once; the others at the next restart.
    #[default]
    Reload,
    /// Everything at once: the server restarts if a changed parameter needs it.
    Restart,
}

/// Sets several parameters at once. A value is a string (`"8MB"`, `"30s"`, `"on"`), a number
/// (in the parameter's unit) or a boolean; `null` resets the parameter to its default.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConfig {
    #[schema(value_type = Object, example = json!({"work_mem": "8MB", "statement_timeout": "30s"}))]
    pub parameters: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub apply: ApplyMode,
}

/// A configuration change accepted, and the `config` job that applies it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConfigChange {
    pub job_id: Uuid,
    /// The parameters changed, with their new values (as Berth writes them).
    pub changed: BTreeMap<String, Option<String>>,
    /// Those of them that take effect only at the next restart (empty with `"apply": "restart"`,
    /// which restarts the server).
    pub pending_restart: Vec<String>,
}
