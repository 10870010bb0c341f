//! What a pid currently is, read from `/proc`, and sending it signals.
//!
//! A pid from a file may have been reused by an unrelated process since the file was written, so
//! nothing here signals a pid that has not just been probed as a postgres process.

use std::io;
use std::path::{Path, PathBuf};

/// What a pid turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Probe {
    /// No such process, or a zombie waiting to be reaped.
    Gone,
    /// A live process that is not running a postgres binary.
    Other,
    /// A live postgres process; `cwd` is its working directory when readable. A postmaster's is
    /// its data directory (it chdirs there at startup).
    Postgres { cwd: Option<PathBuf> },
    /// Alive, but `/proc` could not tell what it is.
    Unknown,
}

pub(crate) fn probe(pid: i32) -> Probe {
    if pid <= 0 {
        return Probe::Gone;
    }
    if pid == std::process::id() as i32 {
        return Probe::Other;
    }
    if !exists(pid) {
        return Probe::Gone;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    match std::fs::read_to_string(proc_dir.join("stat")) {
        Ok(stat) => {
            // The state follows the parenthesised command name, which may itself contain ')'.
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].trim_start().chars().next());
            if matches!(state, Some('Z' | 'X')) {
                return Probe::Gone;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && Path::new("/proc/self").exists() => {
            return Probe::Gone;
        }
        Err(_) => return Probe::Unknown,
    }
    let is_postgres = match std::fs::read_link(proc_dir.join("exe")) {
        Ok(exe) => is_postgres_path(&exe.to_string_lossy()),
        // Kernel threads have no exe.
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        // Another user's process when we are not root: argv[0] is the next best thing (a
        // postmaster does not rewrite its own process title, only its children do).
        Err(_) => match std::fs::read(proc_dir.join("cmdline")) {
            Ok(cmdline) => {
                let argv0 = cmdline.split(|b| *b == 0).next().unwrap_or_default();
                is_postgres_path(&String::from_utf8_lossy(argv0))
            }
            Err(_) => return Probe::Unknown,
        },
    };
    if !is_postgres {
        return Probe::Other;
    }
    let cwd = std::fs::read_link(proc_dir.join("cwd")).ok();
    Probe::Postgres { cwd }
}

/// The fields of `/proc/<pid>/stat` after the parenthesised command name (which may itself
/// contain ')' and spaces): the state first, the start time at index 19.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rfind(')')
        .map(|i| stat[i + 1..].split_whitespace().collect())
        .unwrap_or_default()
}

/// When the process started (clock ticks since boot), or `None` when it is gone or a zombie.
/// Pid plus start time names one process for good, unlike a pid alone, and stays readable while
/// an exiting process has already dropped its `exe` and `cwd` links.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields = stat_fields(&stat);
    if matches!(fields.first(), Some(&"Z" | &"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// `…/postgres` or `…/postmaster`, also when the binary was replaced on disk since it started
/// (a package upgrade makes `/proc/<pid>/exe` read `… (deleted)`).
fn is_postgres_path(path: &str) -> bool {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "postgres" || name == "postmaster"
}

/// Whether two paths name the same directory (after resolving symlinks where they exist).
pub(crate) fn same_dir(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    canonical(a) == canonical(b)
}

/// Whether a process with this pid exists (possibly as a zombie, possibly not ours to signal).
fn exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends `signal`; `Ok(false)` when the process no longer exists.
pub(crate) fn send_signal(pid: i32, signal: libc::c_int) -> io::Result<bool> {
    // SAFETY: plain kill(2); callers probed `pid` just before.
    if unsafe { libc::kill(pid, signal) } == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(false)
    } else {
        Err(err)
    }
}

/// Live postgres processes whose working directory is `data_dir`: backends and auxiliary
/// processes left behind by a postmaster that was SIGKILLed. They still hold the old shared
/// memory, and a new postmaster refuses to start until they have exited. Scans `/proc`, so only
/// called on the rare recovery path.
pub(crate) fn postgres_processes_in(data_dir: &Path) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let canonical = data_dir
        .canonicalize()
        .unwrap_or_else(|_| data_dir.to_path_buf());
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            // Cheap cwd filter first; only then the full probe.
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == canonical)
                && matches!(probe(*pid), Probe::Postgres { .. })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_postgres_paths() {
        assert!(is_postgres_path("/usr/lib/postgresql/15/bin/postgres"));
        assert!(is_postgres_path(
            "/usr/lib/postgresql/15/bin/postgres (deleted)"
        ));
        assert!(is_postgres_path("postmaster"));
        assert!(!is_postgres_path("postgres: checkpointer"));
        assert!(!is_postgres_path("/usr/bin/postgres-exporter"));
    }

    #[test]
    fn reads_start_times() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(start_time(1 << 30), None);
    }

    #[test]
    fn probes_self_and_dead_pids() {
        assert_eq!(probe(std::process::id() as i32), Probe::Other);
        assert_eq!(probe(1 << 30), Probe::Gone);
        assert_eq!(probe(0), Probe::Gone);
    }
}
