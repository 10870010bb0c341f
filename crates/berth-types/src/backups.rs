//! Backups, backup policies, restore windows and restore sources.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{BackupStatus, BackupTrigger, BackupType};

/// One backup of an instance, as the backup tool's repository holds it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Backup {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub project_id: Uuid,
    /// The name of the instance the backup is of (it may be deleted by now).
    pub instance_name: String,
    /// Whether that instance has been deleted (its backups stay until retention runs out).
    pub instance_deleted: bool,
    #[serde(rename = "type")]
    pub backup_type: BackupType,
    pub status: BackupStatus,
    pub trigger: BackupTrigger,
    /// The backup tool's label (pgBackRest), once the backup has one.
    pub label: Option<String>,
    /// The backup this one is based on (differential and incremental backups): deleting that
    /// one is refused while this one exists.
    pub depends_on: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Bytes of the database the backup restores.
    pub size: Option<i64>,
    /// Bytes this backup adds to the repository (compressed; for differential and incremental
    /// backups only what changed).
    pub repository_size: Option<i64>,
    /// The first and last WAL segment the backup needs.
    pub wal_start: Option<String>,
    pub wal_stop: Option<String>,
    pub lsn_start: Option<String>,
    pub lsn_stop: Option<String>,
    /// The earliest moment this backup can restore to (when it became consistent).
    pub restorable_from: Option<DateTime<Utc>>,
    /// The latest moment this backup can restore to, with the archived WAL after it.
    pub restorable_until: Option<DateTime<Utc>>,
    /// The job that took (or is taking) it.
    pub job_id: Option<Uuid>,
    /// Why it failed.
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/instances/{id}/backups`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBackup {
    /// `full` (default), `diff` (changes since the last full backup) or `incr` (changes since
    /// the last backup of any type).
    #[serde(rename = "type")]
    pub backup_type: Option<BackupType>,
}

/// A backup being taken.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BackupAccepted {
    pub backup: Backup,
    pub job_id: Uuid,
}

/// A day of the week (full backups are taken on the days listed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];

    /// 1 (Monday) … 7 (Sunday), as ISO 8601 numbers them.
    pub fn iso_number(self) -> i32 {
        Weekday::ALL.iter().position(|d| *d == self).unwrap_or(0) as i32 + 1
    }

    pub fn from_iso_number(n: i32) -> Option<Weekday> {
        usize::try_from(n - 1)
            .ok()
            .and_then(|i| Weekday::ALL.get(i).copied())
    }
}

/// When an instance is backed up and how long backups are kept. Exactly one of
/// `retention_days` and `retention_full_backups` is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupPolicy {
    /// Scheduled backups on or off (on-demand backups and WAL archiving continue either way).
    pub enabled: bool,
    /// The UTC time the scheduled full backup starts, `HH:MM`.
    #[schema(example = "03:00", pattern = "^([01][0-9]|2[0-3]):[0-5][0-9]$")]
    pub full_backup_time: String,
    /// The days with a full backup (default every day).
    #[schema(min_items = 1)]
    pub full_backup_days: Vec<Weekday>,
    /// Also take a differential backup every this many hours between full backups (1–24), or
    /// none.
    #[schema(minimum = 1, maximum = 24)]
    pub differential_every_hours: Option<i32>,
    /// Keep what is needed to restore to any moment of the last this many days (1–3650).
    #[schema(minimum = 1, maximum = 3650)]
    pub retention_days: Option<i32>,
    /// Or keep this many full backups (1–1000), with the backups and WAL that depend on them.
    #[schema(minimum = 1, maximum = 1000)]
    pub retention_full_backups: Option<i32>,
}

/// The moments an instance can be restored to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreWindow {
    pub instance_id: Uuid,
    /// The earliest restorable moment, or null while the instance has no completed backup.
    pub earliest: Option<DateTime<Utc>>,
    /// The latest restorable moment: now for a running instance whose archiving works (a
    /// restore first archives the instance's newest WAL), else the last moment known to be
    /// archived.
    pub latest: Option<DateTime<Utc>>,
    /// Whether `latest` moves with the clock (a running instance archiving continuously).
    pub continuous: bool,
    /// The newest WAL segment in the archive and when it got there, as the instance reports it.
    pub last_archived_wal: Option<String>,
    pub last_archived_at: Option<DateTime<Utc>>,
}

/// Where a new instance's data comes from: another instance's backup, a moment, or (with only
/// `instance_id`) its latest state — a clone (the source may be deleted, while its backups are
/// kept); or, with `data_source_id`, a logical copy (`pg_dump`/`pg_restore`) of an external
/// database. Exactly one of `instance_id` and `data_source_id`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<Uuid>,
    /// Import a copy of this data source's database (`GET /api/v1/data-sources`), of the same
    /// project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_source_id: Option<Uuid>,
    /// Restore exactly this backup (to the moment it became consistent).
    pub backup_id: Option<Uuid>,
    /// Restore to this moment (RFC 3339): every transaction committed at or before it, none
    /// after.
    pub point_in_time: Option<DateTime<Utc>>,
}

/// What a restored or cloned instance came from and what it actually recovered to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoredFrom {
    pub instance_id: Uuid,
    pub backup_id: Option<Uuid>,
    pub point_in_time: Option<DateTime<Utc>>,
    /// The commit time of the last transaction the recovery replayed.
    pub recovered_to_time: Option<DateTime<Utc>>,
    /// The WAL position the recovery stopped at.
    pub recovered_to_lsn: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BackupQuery {
    /// Only this instance's backups (project lists).
    pub instance_id: Option<Uuid>,
    /// Only backups in this status (`pending`, `running`, `completed`, `failed`).
    pub status: Option<String>,
    /// Items per page (1–500, default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
}
