//! Reading what a cluster wrote to its log file, to put in error messages. The log is appended to
//! across restarts, so callers remember its length before starting and read only what follows.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

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
