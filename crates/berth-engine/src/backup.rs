//! What the [`Engine`](crate::Engine) says about backups, whatever tool takes them.

use berth_types::BackupType;
use chrono::{DateTime, Utc};

/// How a backup shares the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// Someone waits for it (a backup a user asked for, or a scheduled one).
    Normal,
    /// Nobody waits for it (a spare's backup, an instance's first one): it yields to everything
    /// else, such as a burst of creates.
    Background,
}

/// How long backups are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// What is needed to restore to any moment of the last this many days.
    Days(u32),
    /// This many full backups, with what depends on them.
    FullBackups(u32),
}

/// One backup in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    pub label: String,
    pub kind: BackupType,
    /// The label of the backup this one is based on (differential and incremental).
    pub prior: Option<String>,
    pub started_at: DateTime<Utc>,
    /// When the backup stopped: it can restore to any moment after this.
    pub finished_at: DateTime<Utc>,
    pub size: i64,
    pub repository_size: i64,
    pub wal_start: String,
    pub wal_stop: String,
    pub lsn_start: String,
    pub lsn_stop: String,
}

/// Where a restore stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// The end of the archive: everything the source ever archived.
    Latest,
    /// The moment a backup became consistent.
    Backup { label: String },
    /// Every transaction committed at or before this moment (replayed from `from`, the newest
    /// backup that finished before it).
    Time { at: DateTime<Utc>, from: String },
}

/// What a restore actually recovered to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The commit time of the last transaction replayed.
    pub time: Option<DateTime<Utc>>,
    /// Where replay stopped.
    pub lsn: Option<String>,
}

/// The outcome of [`Engine::seal_archive`](crate::Engine::seal_archive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// Every transaction committed before this moment is archived, and a transaction
    /// committed after it is too, so a restore to any moment up to this one finds its end.
    pub at: DateTime<Utc>,
}

/// How a running instance's archiving is doing (`pg_stat_archiver`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveState {
    pub last_archived_wal: Option<String>,
    pub last_archived_at: Option<DateTime<Utc>>,
    pub last_failed_wal: Option<String>,
    pub last_failed_at: Option<DateTime<Utc>>,
}

impl ArchiveState {
    /// The last attempt failed (nothing was archived since).
    pub fn is_failing(&self) -> bool {
        match (self.last_failed_at, self.last_archived_at) {
            (Some(failed), Some(ok)) => failed > ok,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// Called with how far a long step is (0–100), where the tool reports it.
pub type Progress<'a> = dyn Fn(f32) + Send + Sync + 'a;
