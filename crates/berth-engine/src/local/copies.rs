//! Stopped copies of a template cluster, made ahead of time, so a create that finds no spare
//! only renames a data directory into place instead of copying one. Copying is slow where the
//! filesystem is (on some hosts every file created costs a millisecond, and a cluster is about
//! a thousand files); a rename costs the same everywhere. A copy holds disk, not memory.
//!
//! Layout: `<templates>/<major>/copies/<id>` is a complete copy; `.<id>` one being made. Only
//! complete ones are ever taken, and taking one is a rename: two takers never get the same one.
//! A rebuilt template drops its copies with it (they sit inside its directory).

use std::path::{Path, PathBuf};

use uuid::Uuid;

use super::{copy_tree, LocalEngine};
use crate::{io, EngineError};

/// Stop stocking copies while the disk has less free than this.
const DISK_RESERVE: u64 = 2 << 30;

impl LocalEngine {
    fn copies_dir(&self, major: u32) -> PathBuf {
        self.cfg.templates.join(major.to_string()).join("copies")
    }

    /// Moves a ready copy of `major`'s template to `pgdata` (false: none was left).
    pub(super) fn take_copy(&self, major: u32, pgdata: &Path) -> bool {
        for copy in ready_copies(&self.copies_dir(major)) {
            match std::fs::rename(&copy, pgdata) {
                Ok(()) => return true,
                // Taken by someone else a moment ago: try the next.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    // (Another filesystem, say: copies are of no use there.)
                    tracing::warn!(error = %e, "taking a template copy failed; copying instead");
                    return false;
                }
            }
        }
        false
    }

    /// Makes one more copy of `major`'s template if fewer than `want` are ready, and says how
    /// many are ready then. One at a time (a lock), so a half-made copy is always a leftover.
    pub(super) async fn stock_one_copy(
        &self,
        major: u32,
        owner: &str,
        database: &str,
        want: usize,
    ) -> Result<usize, EngineError> {
        let template = self.ensure_template(major, owner, database).await?;
        let _one = self.copies_lock.lock().await;
        let dir = self.copies_dir(major);
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        remove_leftovers(&dir)?;
        let have = ready_copies(&dir).len();
        if have >= want {
            return Ok(have);
        }
        if free_bytes(&dir).is_some_and(|free| free < DISK_RESERVE) {
            return Ok(have);
        }
        let id = Uuid::now_v7();
        let staging = dir.join(format!(".{id}"));
        copy_tree(&template, &staging).await?;
        std::fs::rename(&staging, dir.join(id.to_string()))
            .map_err(io("moving a template copy into place"))?;
        Ok(have + 1)
    }
}

/// Whether the filesystem of `dir` shares blocks between a file and its copy (reflinks: XFS,
/// btrfs), tried with a small file: then copies cost next to nothing but the files' creation.
pub(super) fn reflinks_work(dir: &Path) -> bool {
    let probe = dir.join(format!(".reflink-probe-{}", Uuid::now_v7()));
    let copy = probe.with_extension("copy");
    let shared = std::fs::write(&probe, [0u8; 4096]).is_ok()
        && std::process::Command::new("cp")
            .arg("--reflink=always")
            .arg(&probe)
            .arg(&copy)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
    let _ = std::fs::remove_file(&probe);
    let _ = std::fs::remove_file(&copy);
    shared
}

/// Complete copies, oldest first.
fn ready_copies(dir: &Path) -> Vec<PathBuf> {
    let mut copies: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    copies.sort();
    copies
}

/// Copies a killed Berth left half made.
fn remove_leftovers(dir: &Path) -> Result<(), EngineError> {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            std::fs::remove_dir_all(e.path()).map_err(io("removing a half-made template copy"))?;
        }
    }
    Ok(())
}

/// Bytes free for unprivileged use on the filesystem of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed out-struct of the right type.
    if unsafe { libc::statvfs(path.as_ptr(), &mut s) } != 0 {
        return None;
    }
    #[allow(clippy::unnecessary_cast)] // (c_ulong and fsblkcnt_t differ between targets)
    Some((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}
