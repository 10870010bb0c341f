//! Reading a local instance's PostgreSQL log: `postgres.log` and the rotated copies beside it
//! (`postgres.log.1` is the most recent copy, `.2` the one before). Files are read newest first
//! and older ones only while the page may start in them. Host paths in the text (the instances
//! directory, the socket directory, the backup directories) are replaced by placeholders.
//!
//! A log is a file the PostgreSQL user can replace, so it is opened without following a link
//! and read only if it is a regular file owned by that user (see `berth_pg::logfile` for why),
//! and at most [`MAX_FILE`] bytes of each (the tail).

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use berth_pg::socket_dir_for;
use uuid::Uuid;

use super::LocalEngine;
use crate::logs::{page, parse_log, LogEntry, LogRequest, LogSlice, LogStart};
use crate::{io, EngineError};

/// The most read of one file (its end): rotation keeps files near `[log] postgres_log_max_mb`.
const MAX_FILE: u64 = 64 * 1024 * 1024;

impl LocalEngine {
    pub(super) async fn read_logs(
        &self,
        id: Uuid,
        req: &LogRequest,
    ) -> Result<LogSlice, EngineError> {
        let dir = self.dir(id);
        let hide = vec![
            (socket_dir_for(&dir.join("run")), "<socket>"),
            (self.cfg.root.clone(), "<instances>"),
            (self.cfg.templates.clone(), "<templates>"),
            (self.cfg.backups.repository.clone(), "<repository>"),
            (self.cfg.backups.work_dir.clone(), "<backups>"),
        ];
        let owner = match &self.cfg.run_as {
            Some(u) => u.uid,
            // SAFETY: geteuid has no preconditions.
            None => unsafe { libc::geteuid() },
        };
        let req = *req;
        tokio::task::spawn_blocking(move || read(&dir, &hide, owner, &req))
            .await
            .map_err(|e| EngineError::Failed(format!("reading the log: {e}")))?
    }
}

/// The log files, newest first.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name();
                let n = name.to_str()?.strip_prefix("postgres.log.")?.parse().ok()?;
                Some((n, e.path()))
            })
            .collect()
        })
        .unwrap_or_default();
    rotated.sort();
    std::iter::once(dir.join("postgres.log"))
        .chain(rotated.into_iter().map(|(_, p)| p))
        .collect()
}

fn read(
    dir: &Path,
    hide: &[(PathBuf, &str)],
    owner: u32,
    req: &LogRequest,
) -> Result<LogSlice, EngineError> {
    let patterns: Vec<(String, &str)> = hide
        .iter()
        .map(|(p, name)| (p.display().to_string(), *name))
        .filter(|(p, _)| p.len() > 1)
        .collect();
    let redact = |text: &str| {
        let mut out = text.to_owned();
        for (path, name) in &patterns {
            if out.contains(path.as_str()) {
                out = out.replace(path.as_str(), name);
            }
        }
        out
    };
    let mut newest_first: Vec<Vec<LogEntry>> = Vec::new();
    let mut total = 0usize;
    for path in files(dir) {
        let Some(text) = read_file(&path, owner)? else {
            continue;
        };
        let entries = parse_log(&text, &redact);
        total += entries.len();
        let first = entries.first().map(|e| e.time);
        newest_first.push(entries);
        // Older files hold only earlier entries: needed only while the page may start in them.
        let enough = match req.start {
            LogStart::Recent => total >= req.limit,
            LogStart::Since(t) => first.is_some_and(|f| f < t),
            LogStart::After(c) => first.is_some_and(|f| f < c.time),
        };
        if enough {
            break;
        }
    }
    let mut all: Vec<LogEntry> = newest_first.into_iter().rev().flatten().collect();
    // Processes write their own lines: a line may land just after one stamped a moment later.
    all.sort_by_key(|e| e.time);
    Ok(page(&all, req))
}

/// The text of a log file (its last [`MAX_FILE`] bytes), or None if it is absent or not a
/// regular file of the PostgreSQL user.
fn read_file(path: &Path, owner: u32) -> Result<Option<String>, EngineError> {
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(io("opening the log")(e)),
    };
    let meta = file.metadata().map_err(io("reading the log"))?;
    if !meta.is_file() || meta.uid() != owner {
        return Ok(None);
    }
    let start = meta.len().saturating_sub(MAX_FILE);
    file.seek(SeekFrom::Start(start))
        .map_err(io("reading the log"))?;
    let mut buf = Vec::new();
    file.take(MAX_FILE)
        .read_to_end(&mut buf)
        .map_err(io("reading the log"))?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    // Cut mid-line: drop the partial first line.
    Ok(Some(if start > 0 {
        text.split_once('\n')
            .map(|(_, rest)| rest.to_owned())
            .unwrap_or_default()
    } else {
        text
    }))
}
