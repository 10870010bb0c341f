//! Where database instances run. The `local` engine runs each instance as a PostgreSQL cluster
//! on this host: its own data directory and port, TLS only with a certificate from Berth's CA,
//! `scram-sha-256` for every remote login. Every operation is idempotent, so a job interrupted
//! at any point can simply be run again.

mod local;
mod memory;

pub use local::{InstanceSpec, LocalEngine, LocalEngineConfig};
pub use memory::{memory_class, MemoryClass, MEMORY_CLASSES};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
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
    #[error("{0}")]
    Other(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let context = context.into();
    move |source| EngineError::Io { context, source }
}
