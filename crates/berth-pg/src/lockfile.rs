//! PostgreSQL's lock files: `<data_dir>/postmaster.pid` and `<socket_dir>/.s.PGSQL.<port>.lock`.
//! Parsing them, deciding whether the process they name is really the live owner, and removing
//! them when it is not.
//!
//! PostgreSQL itself treats a lock file whose pid is alive as held, whatever that process is. After
//! a crash the pid is often reused by something else, so postgres would refuse to start; the
//! checks here tell a real owner (adopt it / port in use) from a stale file (remove it).

use std::io;
use std::path::{Path, PathBuf};

use crate::process::{self, Probe};
use crate::PgError;

/// The lines of a lock file that matter here (layout from PostgreSQL's `pidfile.h`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockFile {
    /// Line 1. Negative for a single-user backend.
    pub pid: i64,
    /// Line 2: the data directory.
    pub data_dir: PathBuf,
    /// Line 8 (postmaster.pid only), trimmed: `starting`, `ready`, `standby` or `stopping`.
    pub status: Option<String>,
}

impl LockFile {
    fn parse(text: &str) -> Option<LockFile> {
        let lines: Vec<&str> = text.lines().collect();
        let pid = lines.first()?.trim().parse().ok()?;
        Some(LockFile {
            pid,
            data_dir: PathBuf::from(lines.get(1).copied().unwrap_or_default()),
            status: lines
                .get(7)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        })
    }

    /// Whether the postmaster accepts connections (`standby` = hot standby accepting reads).
    pub fn is_ready(&self) -> bool {
        matches!(self.status.as_deref(), Some("ready" | "standby"))
    }
}

pub(crate) fn pid_file_path(data_dir: &Path) -> PathBuf {
    data_dir.join("postmaster.pid")
}

pub(crate) fn socket_lock_path(socket_dir: &Path, port: u16) -> PathBuf {
    socket_dir.join(format!(".s.PGSQL.{port}.lock"))
}

/// Reads a lock file. `Ok(None)` when missing; a file that does not parse (e.g. truncated by a
/// crash while being written) reads as pid 0, which never names a live process.
pub(crate) fn read(path: &Path) -> Result<Option<LockFile>, PgError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(LockFile::parse(&text).unwrap_or(LockFile {
            pid: 0,
            data_dir: PathBuf::new(),
            status: None,
        }))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PgError::io("reading", path, e)),
    }
}

/// What `postmaster.pid` says about who runs a data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// No pid file: cleanly stopped or never started.
    Nobody,
    /// A pid file whose process is gone or is not this directory's postmaster (a crash).
    Stale,
    /// This live, verified postmaster, and its start time ([`process::start_time`]), which
    /// identifies it from then on.
    Postmaster { pid: i32, start_time: u64 },
}

/// Who runs `data_dir` (absolute). When the pid file is stale and `remove_stale` is set, it is
/// removed. A live postgres that might be using the directory but cannot be confirmed as its
/// postmaster is an error, never "stale": removing its lock file would let a second postmaster
/// corrupt the cluster.
pub(crate) fn owner(data_dir: &Path, remove_stale: bool) -> Result<Owner, PgError> {
    let path = pid_file_path(data_dir);
    let Some(lock) = read(&path)? else {
        return Ok(Owner::Nobody);
    };
    let in_use = |detail: String| PgError::DataDirInUse {
        data_dir: data_dir.to_path_buf(),
        detail,
    };
    let pid = i32::try_from(lock.pid.unsigned_abs()).unwrap_or(0);
    let names_this_dir = process::same_dir(&lock.data_dir, data_dir);
    // Read around the probe so that a pid reused in between cannot pass as verified.
    let start_time = process::start_time(pid);
    let verdict = match process::probe(pid) {
        Probe::Gone | Probe::Other => None,
        Probe::Postgres { cwd: Some(cwd) } if !process::same_dir(&cwd, data_dir) => None,
        Probe::Postgres { cwd } => {
            if lock.pid < 0 {
                return Err(in_use(format!(
                    "a single-user postgres backend (pid {pid}) is using it"
                )));
            }
            if !names_this_dir {
                return Err(in_use(format!(
                    "postgres (pid {pid}) {} but postmaster.pid names {}; stop it first",
                    if cwd.is_some() {
                        "runs in it"
                    } else {
                        "may be running in it"
                    },
                    lock.data_dir.display()
                )));
            }
            start_time.filter(|t| process::start_time(pid) == Some(*t))
        }
        Probe::Unknown => {
            return Err(in_use(format!(
                "postmaster.pid names pid {pid}, which is alive but cannot be verified as its \
                 postmaster (is /proc mounted?)"
            )))
        }
    };
    let Some(start_time) = verdict else {
        if remove_stale {
            tracing::warn!(pid, path = %path.display(), "removing stale postmaster.pid");
            remove(&path)?;
        }
        return Ok(Owner::Stale);
    };
    Ok(Owner::Postmaster { pid, start_time })
}

/// Removes the socket lock file for `port` if the process it names is gone or is not postgres.
/// A live postgres holding it is another cluster on the same socket: [`PgError::PortInUse`].
pub(crate) fn clear_stale_socket_lock(socket_dir: &Path, port: u16) -> Result<(), PgError> {
    let path = socket_lock_path(socket_dir, port);
    let Some(lock) = read(&path)? else {
        return Ok(());
    };
    let pid = i32::try_from(lock.pid.unsigned_abs()).unwrap_or(0);
    match process::probe(pid) {
        Probe::Gone | Probe::Other => {
            tracing::warn!(pid, path = %path.display(), "removing stale socket lock file");
            remove(&path)
        }
        Probe::Postgres { .. } | Probe::Unknown => Err(PgError::PortInUse {
            port,
            lock_file: path,
            pid,
        }),
    }
}

fn remove(path: &Path) -> Result<(), PgError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(PgError::io("removing", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pid_file() {
        let text =
            "1234\n/var/lib/berth/pg\n1700000000\n5432\n/tmp\n\n  123456   98304\nready   \n";
        let lock = LockFile::parse(text).expect("parses");
        assert_eq!(lock.pid, 1234);
        assert_eq!(lock.data_dir, PathBuf::from("/var/lib/berth/pg"));
        assert_eq!(lock.status.as_deref(), Some("ready"));
        assert!(lock.is_ready());
        let starting = LockFile::parse("1234\n/x\n").expect("parses");
        assert_eq!(starting.status, None);
        assert!(!starting.is_ready());
        assert!(LockFile::parse("").is_none());
    }
}
