//! Where database instances run, behind one trait. [`Engine`] is everything the control plane
//! asks of a place that runs PostgreSQL: bring an instance up, start it, stop it, destroy it,
//! say whether it is running, and list what it holds. The job code speaks only this trait, so
//! another engine (a per-host agent, a Kubernetes operator such as CloudNativePG) is one more
//! implementation, not a change to the jobs.
//!
//! The trait speaks in specs and handles, never in where an engine keeps things: an instance is
//! its id (the handle every call takes) plus an [`InstanceSpec`] (version, port, memory
//! class), an [`Owner`] and its [`Tls`] material. Every operation is idempotent and
//! declarative ("be running with this spec"), so a job interrupted at any point can simply run
//! again, and a changed spec (a resize) takes effect at the next `start`.
//!
//! The `local` engine ([`LocalEngine`]) runs each instance as a PostgreSQL cluster on this
//! host: its own data directory and port, TLS only with a certificate from Berth's CA,
//! `scram-sha-256` for every remote login, its WAL archived continuously and its backups taken
//! by pgBackRest.
//!
//! Backups belong to the engine because how they are taken depends on where instances run (a
//! Kubernetes engine would use its operator's). The trait names them by the instance's id, and
//! an instance's backups outlive it: [`Engine::destroy`] keeps them, [`Engine::forget_backups`]
//! removes them once their retention has run out.

mod admin;
mod backup;
mod local;
pub mod logs;
mod memory;
mod stats;

use std::future::Future;
use std::pin::Pin;

use uuid::Uuid;

pub use admin::{LiveParameter, ManagedDatabase, ManagedRole};
pub use backup::{
    ArchiveState, BackupRecord, Priority, Progress, Recovered, RecoveryTarget, Retention, Sealed,
};
pub use local::{BackupSettings, LocalEngine, LocalEngineConfig};
pub use logs::{LogCursor, LogRequest, LogSlice, LogStart};
pub use memory::{memory_class, parse_size, MemoryClass, MEMORY_CLASSES};
pub use stats::Sample;

/// What an engine call returns: boxed, so the app can hold any engine as `Arc<dyn Engine>`.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineError>> + Send + 'a>>;

/// The shape of one instance: what the engine needs to run it, whatever it runs on.
#[derive(Debug, Clone, Copy)]
pub struct InstanceSpec {
    /// The handle of the instance in every engine call.
    pub id: Uuid,
    /// PostgreSQL major version.
    pub major: u32,
    /// The port clients reach the instance on.
    pub port: u16,
    pub memory: &'static MemoryClass,
}

/// The role that owns the instance's database, and that database.
#[derive(Clone, Copy)]
pub struct Owner<'a> {
    pub username: &'a str,
    pub database: &'a str,
    /// The owner's SCRAM-SHA-256 verifier: PostgreSQL never sees the password itself.
    pub password_verifier: &'a str,
}

/// Without the verifier, which would allow guessing the password offline.
impl std::fmt::Debug for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner")
            .field("username", &self.username)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// The server certificate (and key) an instance presents, issued by Berth's CA.
#[derive(Clone, Copy)]
pub struct Tls<'a> {
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

/// Without the private key.
impl std::fmt::Debug for Tls<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls { .. }")
    }
}

/// An external PostgreSQL database to copy from (a data source), with its password: the
/// engine connects to it from where the instance runs.
#[derive(Clone, Copy)]
pub struct ExternalDatabase<'a> {
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    /// libpq's `sslmode`: `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    pub sslmode: berth_types::SslMode,
    /// PEM certificates the server's must chain to (`verify-*`; else the system's).
    pub ca_certificate: Option<&'a str>,
}

/// Without the password.
impl std::fmt::Debug for ExternalDatabase<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalDatabase")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

/// What connecting to an external database found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// `server_version`, e.g. `15.8 (Debian 15.8-0+deb12u1)`.
    pub server_version: String,
    pub server_major: u32,
    /// `pg_database_size` of the database.
    pub size_bytes: i64,
    pub tls: bool,
}

/// Which step of reaching an external database failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeStep {
    /// The host does not resolve, or nothing listens at the port.
    Connect,
    /// No answer within the time allowed.
    Timeout,
    Tls,
    Authentication,
    /// The database does not exist, or the user may not connect to it.
    Database,
}

impl ProbeStep {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeStep::Connect => "connect",
            ProbeStep::Timeout => "timeout",
            ProbeStep::Tls => "tls",
            ProbeStep::Authentication => "authentication",
            ProbeStep::Database => "database",
        }
    }
}

/// Why an external database could not be reached: the step, and what the server or the
/// network said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProbeFailure {
    pub step: ProbeStep,
    pub message: String,
}

/// What an import copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Entries of the dump's table of contents restored (tables, indexes, data, …).
    pub objects: u64,
    pub source_major: u32,
}

/// What an engine sees of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Its server is up.
    Running,
    /// It has no running server (stopped, never started here, or it died).
    Stopped,
}

/// Where instances run. Every method is idempotent; see the crate documentation.
pub trait Engine: Send + Sync + 'static {
    /// PostgreSQL major versions this engine can run, newest first.
    fn versions(&self) -> Vec<u32>;

    /// Brings an instance up from nothing (or from wherever an interrupted attempt left it):
    /// storage, TLS material, a running server, the owner role and database. It accepts no
    /// TCP connection until [`Engine::set_access`] says from where.
    fn provision<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        owner: Owner<'a>,
        tls: Tls<'a>,
    ) -> EngineFuture<'a, ()>;

    /// Makes a provisioned instance run with `spec` and present `tls` (adopting a server that
    /// is already running, which then rereads its certificate).
    fn start<'a>(&'a self, spec: &'a InstanceSpec, tls: Tls<'a>) -> EngineFuture<'a, ()>;

    /// Stops the instance's server; its data stays.
    fn stop(&self, id: Uuid) -> EngineFuture<'_, ()>;

    /// Accepts TCP connections (TLS and SCRAM) from these networks only (`10.0.0.0/8`,
    /// `2001:db8::/32`; none: nobody), at once for a running server, without dropping the
    /// connections it has.
    fn set_access<'a>(&'a self, id: Uuid, networks: &'a [String]) -> EngineFuture<'a, ()>;

    /// Stops the instance and removes everything it had.
    fn destroy(&self, id: Uuid) -> EngineFuture<'_, ()>;

    /// Is the instance's server up?
    fn observe(&self, id: Uuid) -> EngineFuture<'_, Observed>;

    /// Makes one more stopped copy of the template ahead of time, if fewer than `want` are
    /// ready, so a create that finds no spare has less to do; says how many are ready. Engines
    /// without templates have none.
    fn stock_copy<'a>(
        &'a self,
        _major: u32,
        _owner: &'a str,
        _database: &'a str,
        _want: usize,
    ) -> EngineFuture<'a, usize> {
        Box::pin(async { Ok(0) })
    }

    /// Ids of every instance the engine holds anything of, so the caller can tell leftovers of
    /// an interrupted delete from instances it knows.
    fn inventory(&self) -> EngineFuture<'_, Vec<Uuid>>;

    /// Takes a backup of a running instance, then expires what `retention` no longer needs;
    /// `Priority::Background` work yields the CPU to everything else where the engine can.
    fn backup<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        kind: berth_types::BackupType,
        retention: Retention,
        progress: &'a Progress<'a>,
        priority: Priority,
    ) -> EngineFuture<'a, ()>;

    /// The backups the repository holds for an instance (live or deleted), oldest first.
    fn backups(&self, id: Uuid) -> EngineFuture<'_, Vec<BackupRecord>>;

    /// Expires what `retention` no longer needs (backups and the WAL only they needed).
    fn expire(&self, id: Uuid, retention: Retention) -> EngineFuture<'_, ()>;

    /// Removes one backup (the caller has checked that nothing depends on it).
    fn delete_backup<'a>(&'a self, id: Uuid, label: &'a str) -> EngineFuture<'a, ()>;

    /// How the running instance's WAL archiving is doing.
    fn archive_state<'a>(&'a self, spec: &'a InstanceSpec) -> EngineFuture<'a, ArchiveState>;

    /// Makes sure every transaction the running instance committed so far is in the archive
    /// (a marker commit, a WAL switch, and a wait until that segment is archived), and says
    /// from which moment on nothing is.
    fn seal_archive<'a>(&'a self, spec: &'a InstanceSpec) -> EngineFuture<'a, Sealed>;

    /// Brings a new instance (`spec`) up from `source`'s backups and archived WAL, recovered to
    /// `target` and promoted, with its own owner password, certificate and archive. Safe to
    /// repeat; on failure nothing of the new instance is left running.
    fn restore<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        source: Uuid,
        target: &'a RecoveryTarget,
        owner: Owner<'a>,
        tls: Tls<'a>,
        progress: &'a Progress<'a>,
    ) -> EngineFuture<'a, Recovered>;

    /// Removes an instance's backups and archive for good (its server must be gone).
    fn forget_backups(&self, id: Uuid) -> EngineFuture<'_, ()>;

    /// Runs the instance with these settings over its memory class's (each a validated name
    /// and value): a running server rereads them at once, and those it can only take at a
    /// restart wait for one. PostgreSQL checks them first; if it refuses one, the previous
    /// settings stay and the error says which.
    fn set_parameters<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        settings: &'a [(String, String)],
    ) -> EngineFuture<'a, ()>;

    /// What the running server has for each named parameter.
    fn parameters<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        names: &'a [&'a str],
    ) -> EngineFuture<'a, Vec<LiveParameter>>;

    /// Makes the running instance's database users exactly `roles` (beside its owner, whose
    /// password becomes `owner_verifier` when given): missing ones are made, others get their
    /// profile and password, and users made earlier through Berth but not listed are removed,
    /// what they owned going to the owner.
    fn sync_roles<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        owner: &'a str,
        owner_verifier: Option<&'a str>,
        roles: &'a [ManagedRole<'a>],
    ) -> EngineFuture<'a, ()>;

    /// Makes the running instance's databases made through Berth exactly `databases` (beside
    /// the owner's): missing ones are made, others get their owner, unlisted ones are dropped
    /// (their sessions ended).
    fn sync_databases<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        databases: &'a [ManagedDatabase<'a>],
    ) -> EngineFuture<'a, ()>;

    /// Reads the running instance's statistics (one round trip; `database_size` also sums the
    /// sizes of its databases, which costs more). Counters are cumulative: the caller makes
    /// rates of two samples.
    fn sample<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        database_size: bool,
    ) -> EngineFuture<'a, Sample>;

    /// A page of the instance's PostgreSQL log, parsed into entries, without host paths
    /// (running or not; an instance with no log has no entries).
    fn logs<'a>(&'a self, id: Uuid, req: &'a LogRequest) -> EngineFuture<'a, LogSlice>;

    /// Connects to an external database from where instances run, within `timeout`, and says
    /// what it is, or which step failed and why (the outer error is the engine's own failure).
    fn probe<'a>(
        &'a self,
        source: ExternalDatabase<'a>,
        timeout: std::time::Duration,
    ) -> EngineFuture<'a, Result<Probed, ProbeFailure>>;

    /// Replaces the running instance's owner database with a logical copy of `source`'s
    /// (`pg_dump`/`pg_restore`, in parallel), every object owned by the owner role and no
    /// privilege of the source's roles kept, then analyzes it. Safe to repeat: each attempt
    /// starts from an empty database.
    fn import<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        source: ExternalDatabase<'a>,
        owner: &'a str,
        database: &'a str,
        progress: &'a Progress<'a>,
    ) -> EngineFuture<'a, Imported>;
}

/// Why an engine operation failed. The app layer maps these to its error type in one place.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Running the PostgreSQL server or its tools failed.
    #[error(transparent)]
    Pg(#[from] berth_pg::PgError),
    #[error("PostgreSQL {0} is not installed on this host")]
    VersionNotInstalled(u32),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("configuring the instance's roles failed: {0}")]
    Sql(#[from] sqlx::Error),
    /// An external step (such as copying a cluster) did not succeed.
    #[error("{0}")]
    Failed(String),
    /// The backup tool is busy with the same instance (another backup, an expiry).
    #[error("{0}")]
    Busy(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let context = context.into();
    move |source| EngineError::Io { context, source }
}
