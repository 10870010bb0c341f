//! The closed sets of values instances and jobs move through: instance statuses, desired
//! states, job types and job states. Each is a Rust enum whose JSON (and, with the `sqlx`
//! feature, database) form is exactly the string the API has always used, so the server, the
//! store and the CLI name them one way and the compiler finds every place that must handle a
//! new one.
//!
//! Sets that only appear in answers and that a newer server may extend (instance statuses, job
//! states) have an `Unknown` variant: a client reading a value it does not know gets `Unknown`
//! instead of failing to read the whole answer. It is never serialised (nor shown in the OpenAPI
//! document) and `FromStr` does not produce it, so the store and the server stay strict. Job types
//! have one too, for clients; the job runner still matches every known kind by name, so the
//! compiler asks for the arm of a new one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A string that names no value of the set it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    pub set: &'static str,
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a known {}", self.value, self.set)
    }
}

impl std::error::Error for UnknownValue {}

/// An enum whose every variant is one fixed string, in JSON and in the store.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($set:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )+
            $( .. $(#[$ometa:meta])* $other:ident = $otext:literal, )?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant, )+
            $( $(#[$ometa])* #[serde(other, skip_serializing)] $other, )?
        }

        impl $name {
            /// Every value, in the order the API documents them (never `Unknown`).
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                    $($name::$other => $otext,)?
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { set: $set, value: s.to_owned() }),
                }
            }
        }

        #[cfg(feature = "sqlx")]
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <&str as sqlx::Type<sqlx::Postgres>>::type_info()
            }

            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'q> sqlx::Encode<'q, sqlx::Postgres> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        #[cfg(feature = "sqlx")]
        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $name {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
                Ok(s.parse::<$name>()?)
            }
        }
    };
}

string_enum! {
    /// Where an instance is in its life. The `-ing` statuses are transitional: a job is
    /// working on the instance.
    InstanceStatus ("instance status") {
        Creating = "creating",
        Running = "running",
        Pausing = "pausing",
        Paused = "paused",
        Resuming = "resuming",
        Restarting = "restarting",
        Repairing = "repairing",
        Updating = "updating",
        Destroying = "destroying",
        Deleted = "deleted",
        Failed = "failed",
        ..
        /// A status this client does not know (from a newer server); never sent by this one.
        Unknown = "unknown",
    }
}

impl InstanceStatus {
    /// A job is changing the instance (the answer shows which).
    pub const fn is_transitional(self) -> bool {
        matches!(
            self,
            InstanceStatus::Creating
                | InstanceStatus::Pausing
                | InstanceStatus::Resuming
                | InstanceStatus::Restarting
                | InstanceStatus::Repairing
                | InstanceStatus::Updating
                | InstanceStatus::Destroying
        )
    }
}

string_enum! {
    /// What an instance should be doing, whatever its status says right now.
    DesiredState ("desired state") {
        Running = "running",
        Paused = "paused",
        Deleted = "deleted",
    }
}

impl DesiredState {
    /// The status an instance settles in once it is as it should be.
    pub const fn settled(self) -> InstanceStatus {
        match self {
            DesiredState::Running => InstanceStatus::Running,
            DesiredState::Paused => InstanceStatus::Paused,
            DesiredState::Deleted => InstanceStatus::Deleted,
        }
    }
}

string_enum! {
    /// What a job does.
    JobType ("job type") {
        Create = "create",
        Pause = "pause",
        Resume = "resume",
        Restart = "restart",
        Resize = "resize",
        Delete = "delete",
        /// Started by Berth itself when an instance's server died.
        Repair = "repair",
        /// Takes a backup of a running instance.
        Backup = "backup",
        /// Brings a new instance up from another's backups and archived WAL.
        Restore = "restore",
        /// Brings a new instance up with a logical copy of a data source's database.
        Import = "import",
        /// Applies the instance's firewall rules.
        Firewall = "firewall",
        /// Applies the instance's configuration parameters.
        Config = "config",
        /// Makes the instance's database users what the API says.
        DbUsers = "db_users",
        /// Makes the instance's databases what the API says.
        Databases = "databases",
        ..
        /// A kind a newer server knows (read by clients only).
        Unknown = "unknown",
    }
}

string_enum! {
    /// Where a job is: `PENDING` and `STARTED` are active; the others are final.
    JobState ("job state") {
        Pending = "PENDING",
        Started = "STARTED",
        Success = "SUCCESS",
        /// The operation could not be done (the error says why).
        Failure = "FAILURE",
        /// Berth itself misbehaved.
        Error = "ERROR",
        ..
        /// A state this client does not know (from a newer server); never sent by this one.
        Unknown = "UNKNOWN",
    }
}

string_enum! {
    /// The kind of a backup.
    BackupType ("backup type") {
        /// Everything.
        Full = "full",
        /// What changed since the last full backup.
        Diff = "diff",
        /// What changed since the last backup of any type.
        Incr = "incr",
    }
}

string_enum! {
    /// Where a backup is.
    BackupStatus ("backup status") {
        Pending = "pending",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        ..
        /// A status this client does not know (from a newer server); never sent by this one.
        Unknown = "unknown",
    }
}

string_enum! {
    /// Who asked for a backup.
    BackupTrigger ("backup trigger") {
        /// A user, through the API.
        Manual = "manual",
        /// The instance's backup policy.
        Scheduled = "scheduled",
        /// Berth, for a new instance, so it can be restored from its first minutes.
        Initial = "initial",
    }
}

string_enum! {
    /// What a database user may do. None of them is a superuser or may create roles.
    DbUserProfile ("privilege profile") {
        /// Reads every table, view and sequence in every database; writes nothing.
        ReadOnly = "read_only",
        /// Reads and writes the data of every table; changes no schema.
        ReadWrite = "read_write",
        /// Acts as the instance's owner role (creates databases and schemas, changes any
        /// object the owner owns).
        Admin = "admin",
        /// The instance's owner role, made with the instance (not creatable).
        Owner = "owner",
    }
}

string_enum! {
    /// Where a database user or database is.
    DbObjectState ("state") {
        /// Being created by a job.
        Creating = "creating",
        Active = "active",
        /// Being removed by a job.
        Deleting = "deleting",
    }
}

impl JobState {
    pub const fn is_active(self) -> bool {
        matches!(self, JobState::Pending | JobState::Started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_in_json_and_text() {
        for s in InstanceStatus::ALL {
            let json = serde_json::to_string(s).unwrap();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<InstanceStatus>(&json).unwrap(), *s);
            assert_eq!(s.as_str().parse::<InstanceStatus>().unwrap(), *s);
        }
        for t in JobType::ALL {
            assert_eq!(t.to_string().parse::<JobType>().unwrap(), *t);
        }
        assert_eq!(
            serde_json::to_string(&JobState::Pending).unwrap(),
            "\"PENDING\""
        );
        assert_eq!(
            "pending".parse::<JobState>().unwrap_err().to_string(),
            "`pending` is not a known job state"
        );
        assert_eq!(DesiredState::Paused.settled(), InstanceStatus::Paused);
    }

    #[test]
    fn unknown_values_read_as_unknown_but_are_never_written_or_parsed() {
        let s: InstanceStatus = serde_json::from_str("\"backing-up\"").unwrap();
        assert_eq!(s, InstanceStatus::Unknown);
        assert!(!s.is_transitional());
        assert!(!InstanceStatus::ALL.contains(&InstanceStatus::Unknown));
        assert!("unknown".parse::<InstanceStatus>().is_err());
        assert!(serde_json::to_string(&InstanceStatus::Unknown).is_err());
        let j: JobState = serde_json::from_str("\"CANCELLED\"").unwrap();
        assert_eq!(j, JobState::Unknown);
        assert!(!j.is_active());
        let t: JobType = serde_json::from_str("\"snapshot\"").unwrap();
        assert_eq!(t, JobType::Unknown);
        assert!(!JobType::ALL.contains(&JobType::Unknown));
        assert!("unknown".parse::<JobType>().is_err());
    }

    #[test]
    fn the_openapi_document_does_not_offer_unknown() {
        use utoipa::PartialSchema;
        for schema in [
            InstanceStatus::schema(),
            JobState::schema(),
            JobType::schema(),
        ] {
            let text = serde_json::to_string(&schema).unwrap().to_lowercase();
            assert!(
                ["running", "pending", "create"]
                    .iter()
                    .any(|v| text.contains(v)),
                "{text}"
            );
            assert!(!text.contains("unknown"), "{text}");
        }
        let text = serde_json::to_string(&crate::AuthMethod::schema()).unwrap();
        assert!(
            text.contains("api_key") && !text.contains("nknown"),
            "{text}"
        );
        let m: crate::AuthMethod = serde_json::from_str("\"passkey\"").unwrap();
        assert_eq!(m, crate::AuthMethod::Unknown);
        assert_eq!(crate::AuthMethod::ApiKey.to_string(), "api_key");
    }
}
