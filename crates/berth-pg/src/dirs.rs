//! Creating the directories and files a PostgreSQL child writes, with the ownership and modes it
//! needs. Berth may run as root while the child runs as `postgres`, so anything the child writes
//! is chowned to it.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::{PgError, RunAs};

/// Top-level names found in a PostgreSQL data directory. A directory holding only these (and no
/// PG_VERSION) is taken as left by an interrupted initdb and may be emptied.
const DATA_DIR_ENTRIES: &[&str] = &[
    "base",
    "global",
    "log",
    "pg_hba.conf",
    "pg_ident.conf",
    "postgresql.conf",
    "postgresql.auto.conf",
    "postmaster.opts",
    "postmaster.pid",
    "current_logfiles",
    "backup_label",
    "tablespace_map",
    "standby.signal",
    "recovery.signal",
];

/// Creates `dir` (and missing parents) if needed; returns whether `dir` itself was created.
pub(crate) fn create_dir(dir: &Path, mode: u32) -> Result<bool, PgError> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| PgError::io("creating directory", parent, e))?;
    }
    match DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta =
                std::fs::symlink_metadata(dir).map_err(|e| PgError::io("inspecting", dir, e))?;
            // A symlink to a directory is fine when the operator made it; `metadata` follows it.
            let is_dir = meta.is_dir() || std::fs::metadata(dir).is_ok_and(|m| m.is_dir());
            if !is_dir {
                return Err(PgError::io(
                    "expected a directory at",
                    dir,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "it exists and is not a directory",
                    ),
                ));
            }
            Ok(false)
        }
        Err(e) => Err(PgError::io("creating directory", dir, e)),
    }
}

pub(crate) fn chown(path: &Path, run_as: Option<&RunAs>) -> Result<(), PgError> {
    if let Some(user) = run_as {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .map_err(|e| PgError::io("changing owner of", path, e))?;
    }
    Ok(())
}

pub(crate) fn chmod(path: &Path, mode: u32) -> Result<(), PgError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| PgError::io("changing mode of", path, e))
}

/// The socket directory: created 0700 and owned by the child's user. 0700 because local
/// connections use `trust` auth, so whoever can reach the socket is superuser. An existing
/// directory keeps its mode (it may be shared, like /run/postgresql), but one in a shared place
/// that belongs to a third user is refused: it could be a trap set in /tmp.
pub(crate) fn prepare_socket_dir(dir: &Path, run_as: Option<&RunAs>) -> Result<(), PgError> {
    if create_dir(dir, 0o700)? {
        return chown(dir, run_as);
    }
    let link = std::fs::symlink_metadata(dir).map_err(|e| PgError::io("inspecting", dir, e))?;
    let target = std::fs::metadata(dir).map_err(|e| PgError::io("inspecting", dir, e))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let trusted = |uid: u32| uid == me || uid == 0 || run_as.is_some_and(|u| u.uid == uid);
    if !trusted(link.uid()) || !trusted(target.uid()) {
        return Err(PgError::io(
            "refusing to use socket directory",
            dir,
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                "it belongs to another user",
            ),
        ));
    }
    // Never chown a world-writable directory such as /tmp itself.
    if run_as.is_some_and(|u| u.uid != target.uid()) && target.mode() & 0o002 == 0 {
        chown(dir, run_as)?;
    }
    Ok(())
}

/// Opens the log file for appending (creating it and its parent), owned by the child's user.
pub(crate) fn open_log_file(path: &Path, run_as: Option<&RunAs>) -> Result<File, PgError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| PgError::io("creating directory", parent, e))?;
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| PgError::io("opening log file", path, e))?;
    chown(path, run_as)?;
    Ok(file)
}

/// Empties `dir` if it holds only what an interrupted initdb leaves behind; errors if it holds
/// anything else, so a mistyped --data-dir never deletes someone's files.
pub(crate) fn empty_interrupted_initdb(dir: &Path) -> Result<(), PgError> {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| PgError::io("reading directory", dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| PgError::io("reading directory", dir, e))?;
    for entry in &entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("pg_") || DATA_DIR_ENTRIES.contains(&name.as_str())) {
            return Err(PgError::DataDirNotEmpty {
                data_dir: dir.to_path_buf(),
                entry: name,
            });
        }
    }
    if !entries.is_empty() {
        tracing::warn!(data_dir = %dir.display(), "removing the remains of an interrupted initdb");
    }
    for entry in entries {
        let path = entry.path();
        // `file_type` does not follow symlinks, and remove_dir_all does not either.
        let result = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        result.map_err(|e| PgError::io("removing", &path, e))?;
    }
    Ok(())
}
