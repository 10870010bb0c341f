//! A cluster's log file: reading what it wrote, to put in error messages, and keeping it bounded.
//! The log is appended to across restarts, so callers remember its length before starting and
//! read only what follows.
//!
//! Bounding is "copy and truncate" (logrotate's `copytruncate`): the file is copied to `<log>.1`
//! (older copies shift to `.2`, …) and truncated in place. postgres writes its stderr to the file
//! through a descriptor opened with `O_APPEND`, so after the truncation its writes land at the new
//! end, with no sparse gap, whether Berth started that postmaster or adopted it after a restart.
//! Renaming the file instead would not work: postgres would go on writing to the renamed file.
//! PostgreSQL's own `logging_collector` would rotate without losing a line, but costs one more
//! process per cluster (hundreds of instances per host), never deletes old files, and sends
//! startup errors and later ones to different files. The price of copying: lines written in the
//! instant between the copy and the truncation are lost.
//!
//! Berth often runs as root while the logs sit in directories the PostgreSQL user can write, so
//! anything running as that user (an instance's `COPY … TO PROGRAM`, say) could swap a log for a
//! link to another file between a check and a use. Rotation therefore opens the log without
//! following a link, makes every check on the open file (a regular file, one link, owned by the
//! PostgreSQL user) and writes only through that descriptor: at worst it empties a file the
//! PostgreSQL user owns anyway.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How much of the log an error message carries.
const TAIL_BYTES: u64 = 4096;

pub(crate) fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The last few KiB written to `path` after byte `since`, starting at a line boundary.
pub(crate) fn tail_since(path: &Path, since: u64) -> String {
    let read = || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let end = file.metadata()?.len();
        // Rotated since `since` was taken: everything in the file is new.
        let since = if since > end { 0 } else { since };
        let start = since.max(end.saturating_sub(TAIL_BYTES)).min(end);
        file.seek(SeekFrom::Start(start))?;
        let mut buf = Vec::new();
        file.take(end - start).read_to_end(&mut buf)?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let text = if start > since {
            // Cut mid-line: drop the partial first line.
            text.split_once('\n')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or(text)
        } else {
            text
        };
        Ok(text.trim_end().to_string())
    };
    match read() {
        Ok(text) if text.is_empty() => "(nothing was logged)".to_string(),
        Ok(text) => text,
        Err(e) => format!("(could not read the log: {e})"),
    }
}

/// `<path>.<n>`.
fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// When the log at `path` is larger than `max_bytes`, keeps its content as `<path>.1` (shifting
/// older copies up to `<path>.<keep>`; the oldest is dropped) and empties it. `keep` 0 just
/// empties it. Returns whether it rotated. The copies have the log's owner and mode.
///
/// Only a regular file with a single link owned by `owner` (the uid PostgreSQL runs as) is
/// touched; a link, a hard-linked file or another user's file is left alone (see the module
/// notes for why).
pub fn rotate_log_if_larger(
    path: &Path,
    max_bytes: u64,
    keep: usize,
    owner: u32,
) -> io::Result<bool> {
    // O_NOFOLLOW: a link in the log's place is refused (ELOOP), not followed; O_NONBLOCK: a FIFO
    // in its place does not hang the loop.
    let mut log = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
        Err(e) => return Err(e),
    };
    let meta = log.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 || meta.uid() != owner || meta.len() <= max_bytes {
        return Ok(false);
    }
    if keep > 0 {
        for n in (1..keep).rev() {
            match std::fs::rename(numbered(path, n), numbered(path, n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let first = numbered(path, 1);
        let _ = std::fs::remove_file(&first);
        let mut copy = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(meta.mode() & 0o777)
            .open(&first)?;
        // Best effort: the copy is as readable as the log was, no more.
        let _ = std::os::unix::fs::fchown(&copy, Some(meta.uid()), Some(meta.gid()));
        // Copies to the end as it is now, including lines written while copying.
        io::copy(&mut log, &mut copy)?;
    }
    log.set_len(0)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;

    fn me() -> u32 {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() }
    }

    #[test]
    fn links_hard_links_and_other_owners_files_are_never_touched() {
        let dir = temp_dir();
        let victim = dir.join("victim");
        std::fs::write(&victim, vec![b'x'; 100]).unwrap();
        let link = dir.join("evil.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(!rotate_log_if_larger(&link, 10, 1, me()).unwrap());
        let hard = dir.join("hard.log");
        std::fs::hard_link(&victim, &hard).unwrap();
        assert!(!rotate_log_if_larger(&hard, 10, 1, me()).unwrap());
        std::fs::remove_file(&hard).unwrap();
        assert!(!rotate_log_if_larger(&victim, 10, 1, me() + 1).unwrap());
        assert_eq!(
            std::fs::metadata(&victim).unwrap().len(),
            100,
            "victim untouched"
        );
        assert!(!numbered(&link, 1).exists() && !numbered(&victim, 1).exists());
        // The same file, owned by the expected user and linked once, is rotated.
        assert!(rotate_log_if_larger(&victim, 10, 1, me()).unwrap());
        assert_eq!(std::fs::metadata(&victim).unwrap().len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "berth-pg-logfile-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A writer like postgres's stderr: a descriptor opened once, with O_APPEND.
    fn appender(path: &Path) -> File {
        OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
    }

    #[test]
    fn a_log_written_without_end_stays_bounded() {
        let dir = temp_dir();
        let path = dir.join("postgres.log");
        let mut writer = appender(&path);
        let line = [b'x'; 99];
        let (max, keep) = (10_000u64, 2usize);
        // 100 KB written in 1 KB bursts, rotated after each burst as the periodic check would.
        for _ in 0..100 {
            for _ in 0..10 {
                writer.write_all(&line).unwrap();
                writer.write_all(b"\n").unwrap();
            }
            rotate_log_if_larger(&path, max, keep, me()).unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= max, "the log is {} bytes", size(&path));
        for n in 1..=keep {
            let copy = numbered(&path, n);
            assert!(copy.is_file(), "{} is missing", copy.display());
            assert!(size(&copy) <= max + 1_000);
        }
        assert!(!numbered(&path, keep + 1).exists(), "more copies than kept");
        // The writer's next line lands at the start of the emptied file: no sparse gap.
        rotate_log_if_larger(&path, 0, keep, me()).unwrap();
        writer.write_all(b"after\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_small_or_missing_log_is_left_alone_and_keep_zero_only_truncates() {
        let dir = temp_dir();
        let path = dir.join("postgres.log");
        assert!(!rotate_log_if_larger(&path, 10, 1, me()).unwrap());
        std::fs::write(&path, "short\n").unwrap();
        assert!(!rotate_log_if_larger(&path, 10, 1, me()).unwrap());
        std::fs::write(&path, "longer than ten bytes\n").unwrap();
        assert!(rotate_log_if_larger(&path, 10, 0, me()).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        assert!(!numbered(&path, 1).exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn the_tail_of_a_rotated_log_is_read_from_its_start() {
        let dir = temp_dir();
        let path = dir.join("postgres.log");
        std::fs::write(&path, "old line\n".repeat(100)).unwrap();
        let since = len(&path);
        rotate_log_if_larger(&path, 10, 1, me()).unwrap();
        std::fs::write(&path, "FATAL: new\n").unwrap();
        assert_eq!(tail_since(&path, since), "FATAL: new");
        let _ = std::fs::remove_dir_all(dir);
    }
}
