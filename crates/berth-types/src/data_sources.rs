//! Data sources: external PostgreSQL databases a project imports from. The password goes in
//! and never comes out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// How the connection to a data source uses TLS, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    /// TLS, and the server's certificate is signed by `ca_certificate`.
    VerifyCa,
    /// As `verify-ca`, and the certificate names `host`.
    VerifyFull,
}

impl SslMode {
    pub const ALL: [SslMode; 5] = [
        SslMode::Disable,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    pub fn parse(s: &str) -> Option<SslMode> {
        SslMode::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataSource {
    pub id: Uuid,
    pub name: String,
    pub project_id: Uuid,
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub sslmode: SslMode,
    /// The PEM certificate(s) the server's certificate must chain to, if given.
    pub ca_certificate: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// What the last `POST /api/v1/data-sources/{id}/test` found (null: never tested).
    pub last_test: Option<DataSourceTestSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataSourceTestSummary {
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDataSource {
    /// 1–63 characters: letters, digits, `-` and `_`; unique in the project.
    #[schema(min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_-]+$")]
    pub name: String,
    pub project_id: Uuid,
    /// A host name or an IP address.
    #[schema(min_length = 1, max_length = 253)]
    pub host: String,
    /// Default 5432.
    #[serde(default)]
    pub port: Option<u16>,
    /// The database to copy.
    #[schema(min_length = 1, max_length = 63)]
    pub database: String,
    #[schema(min_length = 1, max_length = 63)]
    pub username: String,
    /// Sealed at rest; never returned.
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
    /// Default `verify-full`.
    #[serde(default)]
    pub sslmode: Option<SslMode>,
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

/// Fields to change; the others stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDataSource {
    #[schema(min_length = 1, max_length = 63, pattern = "^[A-Za-z0-9_-]+$")]
    pub name: Option<String>,
    #[schema(min_length = 1, max_length = 253)]
    pub host: Option<String>,
    pub port: Option<u16>,
    #[schema(min_length = 1, max_length = 63)]
    pub database: Option<String>,
    #[schema(min_length = 1, max_length = 63)]
    pub username: Option<String>,
    #[schema(min_length = 1, max_length = 1024)]
    pub password: Option<String>,
    pub sslmode: Option<SslMode>,
    /// A PEM certificate, or `""` to remove it.
    pub ca_certificate: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DataSourceQuery {
    /// Only this project's data sources.
    pub project_id: Option<Uuid>,
    /// Items per page (1–500, default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}

/// `POST /api/v1/instances/{id}/import`: replace the instance's database with a copy of a data
/// source's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportInstance {
    /// A data source of the instance's project.
    pub data_source_id: Uuid,
}

/// What connecting to a data source found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DataSourceTest {
    pub ok: bool,
    /// `server_version`, e.g. `15.8 (Debian 15.8-0+deb12u1)`.
    pub server_version: Option<String>,
    /// The server's major version, e.g. `15`.
    pub server_major: Option<u32>,
    /// `pg_database_size` of the database, in bytes.
    pub size_bytes: Option<i64>,
    /// Whether the connection used TLS.
    pub tls: Option<bool>,
    /// What failed: `connect` (the host or port does not answer), `timeout`, `tls`,
    /// `authentication`, `database`, `version` (newer than this server can import).
    pub failed_step: Option<String>,
    /// The reason, as the server or the network gave it.
    pub error: Option<String>,
    pub elapsed_ms: u64,
}
