//! Creating a cluster with `initdb`.
//!
//! initdb runs in a hidden staging directory beside the data directory, which is renamed into
//! place only once initdb has succeeded. So `PG_VERSION` in the data directory means a complete
//! cluster, even if berth was killed during an earlier attempt (initdb writes PG_VERSION early).
//! When the data directory is a mount point, rename cannot replace it, and initdb runs in place.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::cluster::ClusterSpec;
use crate::command::pg_command;
use crate::user::check_reachable;
use crate::{dirs, PgBinaries, PgError, RunAs};

/// See [`crate::Cluster::init`]. `spec` paths are absolute.
pub(crate) async fn init(
    bins: &PgBinaries,
    spec: &ClusterSpec,
    run_as: Option<&RunAs>,
    superuser: &str,
) -> Result<(), PgError> {
    let data_dir = &spec.data_dir;
    if data_dir.join("PG_VERSION").is_file() {
        return Ok(());
    }
    let (Some(parent), Some(name)) = (data_dir.parent(), data_dir.file_name()) else {
        return Err(PgError::io(
            "cannot initialise into",
            data_dir,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a directory below /"),
        ));
    };
    std::fs::create_dir_all(parent).map_err(|e| PgError::io("creating directory", parent, e))?;
    dirs::prepare_socket_dir(&spec.socket_dir, run_as)?;

    let exists = std::fs::metadata(data_dir).is_ok();
    if exists {
        dirs::empty_interrupted_initdb(data_dir)?;
    }
    let target = if exists && is_mount_point(data_dir, parent) {
        data_dir.clone()
    } else {
        // A staging directory of this attempt's own: an initdb orphaned by a killed berth may
        // still be writing into an earlier attempt's, and must not be disturbed.
        let prefix = format!(".{}.initdb", name.to_string_lossy());
        remove_stale_staging(parent, &prefix);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        parent.join(format!("{prefix}.{}.{nanos}", std::process::id()))
    };
    dirs::create_dir(&target, 0o700)?;
    dirs::chmod(&target, 0o700)?;
    dirs::chown(&target, run_as)?;
    if let Some(user) = run_as {
        check_reachable(user, &target)?;
        check_reachable(user, &spec.socket_dir)?;
    }

    run_initdb(bins, &target, run_as, superuser).await?;
    if target != *data_dir {
        // Replaces a missing or empty data_dir atomically.
        if let Err(e) = std::fs::rename(&target, data_dir) {
            if data_dir.join("PG_VERSION").is_file() {
                // Someone else's initdb finished first; theirs is as good as ours.
                let _ = std::fs::remove_dir_all(&target);
            } else {
                return Err(PgError::io("moving initialised cluster to", data_dir, e));
            }
        }
    }
    tracing::info!(data_dir = %data_dir.display(), version = %bins.version, "initialised PostgreSQL cluster");
    Ok(())
}

/// Removes staging directories of earlier attempts that nobody has written to for a while
/// (an orphaned initdb finishes in seconds).
fn remove_stale_staging(parent: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(prefix)
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age.as_secs() > 600));
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

async fn run_initdb(
    bins: &PgBinaries,
    target: &Path,
    run_as: Option<&RunAs>,
    superuser: &str,
) -> Result<(), PgError> {
    let program = bins.initdb();
    let output = pg_command(&program, run_as)
        .arg("-D")
        .arg(target)
        .arg("-U")
        .arg(superuser)
        .args([
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            // 1 MB WAL segments: a forced switch (archive_timeout) archives 1 MB, not 16, and a
            // fresh cluster (a template, every copy of it) holds 15 MB less WAL.
            "--wal-segsize=1",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .output()
        .await
        .map_err(|source| PgError::Spawn { program, source })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.trim_end().lines().collect();
    Err(PgError::InitdbFailed {
        data_dir: target.to_path_buf(),
        status: output.status.to_string(),
        output: lines[lines.len().saturating_sub(30)..].join("\n"),
    })
}

/// A directory on a different device than its parent cannot be renamed over.
fn is_mount_point(dir: &Path, parent: &Path) -> bool {
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    dev(dir) != dev(parent)
}
