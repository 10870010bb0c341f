//! The one error type of the application layer.

use berth_auth::jwt::JwtError;

/// Why a presented credential was not accepted. Reported to the caller as
/// `invalid_token`, with this as the description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials were presented")]
    Missing,
    #[error("the credential is malformed")]
    Malformed,
    #[error("the credential is unknown")]
    Unknown,
    #[error("the credential has expired")]
    Expired,
    #[error("the credential has been revoked")]
    Revoked,
    #[error("the user is disabled")]
    UserDisabled,
    #[error("{0}")]
    WrongKind(&'static str),
    #[error("{0}")]
    Token(JwtError),
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthenticated(AuthFailure),
    #[error("invalid username or password")]
    InvalidCredentials,
    /// A refresh token (or similar grant) that cannot be exchanged.
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request clashes with the state of a `resource` (a duplicate name, a busy instance,
    /// the last owner): 409.
    #[error("{message}")]
    Conflict {
        resource: &'static str,
        message: String,
    },
    #[error("too many requests; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// Overloaded for a moment (password hashing queue full): 503 with a short `Retry-After`.
    #[error("the server is busy; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    #[error("internal error: {0}")]
    Internal(String),
    /// An RFC 6749 / 8628 / 8693 error of the OAuth endpoints (`invalid_client`,
    /// `authorization_pending`, …).
    #[error("{description}")]
    OAuth {
        error: &'static str,
        description: String,
    },
}

/// What each unique constraint a request can break protects — (constraint, resource, what,
/// field, where) — so a 409 can say so: the one place a unique violation becomes
/// [`AppError::Conflict`], and call sites just use `?` (or [`AppError::clash`] to name the
/// value). A constraint not listed here is not the caller's doing (a bug, or a race Berth
/// handles itself), so it stays a 500.
const CONFLICTS: &[(&str, &str, &str, &str, &str)] = &[
    ("users_username_key", "user", "a user", "username", ""),
    ("users_email_lower_key", "user", "a user", "email", ""),
    ("projects_name_key", "project", "a project", "name", ""),
    (
        "instances_live_name_key",
        "instance",
        "an instance",
        "name",
        " in this project",
    ),
    (
        "firewall_rules_cidr_key",
        "firewall rule",
        "a rule",
        "cidr",
        " for this instance",
    ),
    (
        "db_users_pkey",
        "database user",
        "a database user",
        "name",
        " in this instance",
    ),
    (
        "data_sources_name_key",
        "data source",
        "a data source",
        "name",
        " in this project",
    ),
    (
        "db_databases_pkey",
        "database",
        "a database",
        "name",
        " in this instance",
    ),
];

/// The conflict a unique violation in `e` means, naming the `value` that clashed if known.
fn conflict(e: &sqlx::Error, value: Option<&str>) -> Option<AppError> {
    let constraint = berth_store::unique_violation(e)?;
    let (_, resource, what, field, scope) = CONFLICTS.iter().find(|(c, ..)| *c == constraint)?;
    Some(AppError::conflict(
        resource,
        match value {
            Some(v) if *field == "name" => format!("{what} named `{v}` already exists{scope}"),
            Some(v) => format!("{what} with {field} `{v}` already exists{scope}"),
            None => format!("{what} with this {field} already exists{scope}"),
        },
    ))
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        // A lost connection (including a server that is restarting or recovering) is the
        // store being away, not a bug: 503, never 500.
        if matches!(e, sqlx::Error::PoolClosed) || berth_store::health::is_connection_error(&e) {
            return AppError::store_unavailable();
        }
        // Every pooled connection was in use for the whole acquire timeout: the store is
        // busy, not away, so a short retry and no outage.
        if matches!(e, sqlx::Error::PoolTimedOut) {
            return AppError::Busy {
                retry_after_secs: berth_store::health::RETRY_AFTER_SECS,
            };
        }
        match e {
            // PostgreSQL cannot store U+0000 in text (22021): whatever field carried it, that
            // is the caller's input to refuse, not a server error.
            sqlx::Error::Database(ref d) if d.code().as_deref() == Some("22021") => {
                AppError::Validation("text must not contain U+0000 (NUL) characters".into())
            }
            e => conflict(&e, None).unwrap_or_else(|| AppError::Internal(e.to_string())),
        }
    }
}

impl From<berth_auth::password::PasswordError> for AppError {
    fn from(e: berth_auth::password::PasswordError) -> Self {
        match e {
            berth_auth::password::PasswordError::Busy { retry_after_secs } => {
                AppError::Busy { retry_after_secs }
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// An engine that could not do what a job asked means the operation failed (the job's
/// `FAILURE`, with the reason), not that Berth misbehaved.
impl From<berth_engine::EngineError> for AppError {
    fn from(e: berth_engine::EngineError) -> Self {
        AppError::Unavailable(e.to_string())
    }
}

impl AppError {
    /// A failed write of `value` into a unique column: a conflict names the value that clashed;
    /// anything else converts as `From` does.
    pub(crate) fn clash(e: sqlx::Error, value: &str) -> Self {
        conflict(&e, Some(value)).unwrap_or_else(|| e.into())
    }

    pub fn conflict(resource: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict {
            resource,
            message: message.into(),
        }
    }

    pub fn store_unavailable() -> Self {
        AppError::Unavailable("the store is unavailable; try again shortly".into())
    }

    pub fn oauth(error: &'static str, description: impl Into<String>) -> Self {
        AppError::OAuth {
            error,
            description: description.into(),
        }
    }

    pub fn forbidden(p: berth_types::Permission) -> Self {
        AppError::Forbidden(format!("this credential lacks the `{p}` permission"))
    }
}
