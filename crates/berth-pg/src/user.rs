//! Which OS user PostgreSQL runs as, and whether that user can reach a directory.
//!
//! `initdb` and `postgres` refuse to run as root, so when berth runs as root its clusters run as
//! the `postgres` system user; otherwise they run as berth's own user.

use std::ffi::CString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::PgError;

/// The OS user a PostgreSQL child runs as (`setuid`/`setgid` in the child before exec).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

impl RunAs {
    /// The system user `name` (primary group as gid), or `None` when there is no such user.
    pub fn lookup(name: &str) -> Result<Option<RunAs>, PgError> {
        let lookup_err = |source| PgError::UserLookup {
            name: name.to_string(),
            source,
        };
        let cname = CString::new(name).map_err(|_| {
            lookup_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "NUL in user name",
            ))
        })?;
        let mut buf: Vec<libc::c_char> = vec![0; 4096];
        loop {
            // SAFETY: all pointers are valid for the call; `passwd` fields point into `buf`,
            // and we copy out only the integer fields.
            let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
            let mut result: *mut libc::passwd = std::ptr::null_mut();
            let rc = unsafe {
                libc::getpwnam_r(
                    cname.as_ptr(),
                    &mut pwd,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                )
            };
            if rc == libc::ERANGE && buf.len() < (1 << 20) {
                buf.resize(buf.len() * 2, 0);
                continue;
            }
            if rc != 0 {
                return Err(lookup_err(io::Error::from_raw_os_error(rc)));
            }
            if result.is_null() {
                return Ok(None);
            }
            return Ok(Some(RunAs {
                uid: pwd.pw_uid,
                gid: pwd.pw_gid,
                name: name.to_string(),
            }));
        }
    }

    /// Primary and supplementary groups, for permission checks.
    fn groups(&self) -> Vec<u32> {
        let Ok(cname) = CString::new(self.name.as_str()) else {
            return vec![self.gid];
        };
        let mut n: libc::c_int = 32;
        for _ in 0..8 {
            let mut groups: Vec<libc::gid_t> = vec![0; n as usize];
            let before = n;
            // SAFETY: `groups` has room for `n` entries; getgrouplist updates `n`.
            let rc = unsafe {
                libc::getgrouplist(cname.as_ptr(), self.gid, groups.as_mut_ptr(), &mut n)
            };
            if rc >= 0 {
                groups.truncate(n.max(0) as usize);
                return groups;
            }
            n = n.max(before * 2);
        }
        vec![self.gid]
    }
}

/// `None` when this process is not root (children run as our own user); the `postgres` system
/// user when it is root; [`PgError::NoPostgresUser`] when root and that user does not exist.
pub fn run_as_for_current_process() -> Result<Option<RunAs>, PgError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    RunAs::lookup("postgres")?
        .map(Some)
        .ok_or(PgError::NoPostgresUser)
}

/// Checks from mode bits that `user` can traverse every existing ancestor of `target`, both along
/// the path as written and along its resolved form (symlinks). Catches the common "data dir under
/// /root" mistake up front with a clear message instead of a cryptic postgres log line. ACLs are
/// not considered, so this may only err on the side of allowing.
pub(crate) fn check_reachable(user: &RunAs, target: &Path) -> Result<(), PgError> {
    if user.uid == 0 {
        return Ok(());
    }
    let groups = user.groups();
    let mut paths: Vec<PathBuf> = vec![target.to_path_buf()];
    if let Ok(canonical) = target.canonicalize() {
        paths.push(canonical);
    }
    for path in &paths {
        for dir in path.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(dir) else {
                continue; // not created yet; whoever creates it decides its mode
            };
            let mode = meta.mode();
            let bit = if meta.uid() == user.uid {
                0o100
            } else if groups.contains(&meta.gid()) {
                0o010
            } else {
                0o001
            };
            if mode & bit == 0 {
                return Err(PgError::DirNotReachable {
                    user: user.name.clone(),
                    dir: dir.to_path_buf(),
                    mode: mode & 0o7777,
                    owner: meta.uid(),
                    target: target.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}
