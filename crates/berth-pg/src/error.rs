//! The crate's one error type. Messages name the file, directory or process involved and, where
//! the fix is on the operator's side, say what to do.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error(
        "PostgreSQL server binaries (`postgres` and `initdb`) not found on PATH, via \
         `pg_config --bindir`, or under /usr/lib/postgresql/*/bin or /usr/pgsql-*/bin. \
         On Debian/Ubuntu install them with `apt-get install postgresql`; otherwise install the \
         PostgreSQL server and put its bin directory (the one holding `postgres` and `initdb`) \
         on PATH"
    )]
    BinariesNotFound,

    #[error("{bindir}: not a usable PostgreSQL bin directory: {reason}")]
    InvalidBinaries { bindir: PathBuf, reason: String },

    #[error(
        "running as root, and PostgreSQL refuses to run as root, but there is no `postgres` \
         system user to run it as; create one (e.g. `useradd --system --home-dir \
         /var/lib/postgresql --shell /bin/bash postgres`) or install the PostgreSQL server \
         package, which creates it"
    )]
    NoPostgresUser,

    #[error("looking up system user `{name}`: {source}")]
    UserLookup { name: String, source: io::Error },

    #[error(
        "PostgreSQL runs as user `{user}`, which cannot enter {dir} (mode {mode:o}, owner uid \
         {owner}) on the way to {target}; use a --data-dir that user can reach (e.g. under \
         /var/lib or /tmp), or run `chmod o+x {dir}`"
    )]
    DirNotReachable {
        user: String,
        dir: PathBuf,
        mode: u32,
        owner: u32,
        target: PathBuf,
    },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    #[error(
        "{data_dir} is not empty and does not look like a data directory left by an interrupted \
         initdb (it holds {entry:?}); refusing to delete it: choose a new or empty directory"
    )]
    DataDirNotEmpty { data_dir: PathBuf, entry: String },

    #[error("{data_dir} has no PG_VERSION: it is not an initialised PostgreSQL data directory")]
    NotInitialized { data_dir: PathBuf },

    #[error("initdb for {data_dir} failed ({status}):\n{output}")]
    InitdbFailed {
        data_dir: PathBuf,
        status: String,
        output: String,
    },

    #[error("running {program}: {source}")]
    Spawn { program: PathBuf, source: io::Error },

    #[error(
        "postgres for {data_dir} exited during startup ({status}); end of {log_file}:\n{log_tail}"
    )]
    StartFailed {
        data_dir: PathBuf,
        status: String,
        log_file: PathBuf,
        log_tail: String,
    },

    #[error(
        "postgres for {data_dir} (pid {pid}) was not ready after {timeout:?}; it is left running \
         (crash recovery can take a while: start again to wait longer, or stop it); end of \
         {log_file}:\n{log_tail}"
    )]
    StartTimeout {
        data_dir: PathBuf,
        pid: u32,
        timeout: Duration,
        log_file: PathBuf,
        log_tail: String,
    },

    /// The data directory's lock file names a live process that cannot safely be adopted or
    /// ignored (e.g. a single-user backend, or `/proc` could not be read to verify it).
    #[error("{data_dir}: {detail}")]
    DataDirInUse { data_dir: PathBuf, detail: String },

    #[error(
        "port {port}: socket lock file {lock_file} is held by another running postgres \
         (pid {pid}); choose another port"
    )]
    PortInUse {
        port: u16,
        lock_file: PathBuf,
        pid: i32,
    },

    #[error("postgres (pid {pid}) for {data_dir} did not exit after SIGINT and SIGQUIT")]
    StopTimeout { pid: u32, data_dir: PathBuf },

    #[error("sending {signal} to postgres (pid {pid}): {source}")]
    Signal {
        pid: u32,
        signal: &'static str,
        source: io::Error,
    },
}

impl PgError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        PgError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
