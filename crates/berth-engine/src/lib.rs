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
//! `scram-sha-256` for every remote login.

mod local;
mod memory;

use std::future::Future;
use std::pin::Pin;

use uuid::Uuid;

pub use local::{LocalEngine, LocalEngineConfig};
pub use memory::{memory_class, MemoryClass, MEMORY_CLASSES};

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
    /// storage, TLS material, access rules, a running server, the owner role and database.
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

    /// Stops the instance and removes everything it had.
    fn destroy(&self, id: Uuid) -> EngineFuture<'_, ()>;

    /// Is the instance's server up?
    fn observe(&self, id: Uuid) -> EngineFuture<'_, Observed>;

    /// Ids of every instance the engine holds anything of, so the caller can tell leftovers of
    /// an interrupted delete from instances it knows.
    fn inventory(&self) -> EngineFuture<'_, Vec<Uuid>>;
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
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let context = context.into();
    move |source| EngineError::Io { context, source }
}
