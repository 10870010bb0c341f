//! Keeps the logs of Berth's PostgreSQL children bounded: every few seconds, each `*.log` file
//! in the data directory (the system cluster's under `logs/`, each instance's and each
//! template's) larger than the configured size is rotated by [`berth_pg::rotate_log_if_larger`]
//! (why copy-and-truncate: see there). One loop for all clusters, so hundreds of instances cost
//! no task of their own; it also covers postmasters adopted from an earlier Berth.

use std::path::{Path, PathBuf};
use std::time::Duration;

const INTERVAL: Duration = Duration::from_secs(5);
/// `data_dir/instances/<id>/postgres.log` is the deepest log.
const MAX_DEPTH: usize = 3;

/// Runs until dropped (aborted at shutdown).
/// `owner` is the uid PostgreSQL runs as: only its files are rotated.
pub(crate) async fn bound_logs(data_dir: PathBuf, max_bytes: u64, keep: usize, owner: u32) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let dir = data_dir.clone();
        let _ = tokio::task::spawn_blocking(move || bound_once(&dir, max_bytes, keep, owner)).await;
    }
}

fn bound_once(data_dir: &Path, max_bytes: u64, keep: usize, owner: u32) {
    let mut logs = Vec::new();
    find_logs(data_dir, MAX_DEPTH, &mut logs);
    for log in logs {
        match berth_pg::rotate_log_if_larger(&log, max_bytes, keep, owner) {
            Ok(true) => tracing::debug!(log = %log.display(), "rotated a PostgreSQL log"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(log = %log.display(), error = %e, "rotating a PostgreSQL log failed")
            }
        }
    }
}

/// `*.log` files under `dir`, not descending into PostgreSQL data directories (PostgreSQL owns
/// what is in them) nor into the socket directory `run/` (no log lives there, and PostgreSQL
/// may write to it). Links are never followed.
fn find_logs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if dir.join("PG_VERSION").exists() || dir.file_name().is_some_and(|n| n == "run") {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if kind.is_file() && path.extension().is_some_and(|e| e == "log") {
            out.push(path);
        } else if kind.is_dir() && depth > 1 {
            find_logs(&path, depth - 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cluster_logs_but_not_inside_data_directories() {
        let root = std::env::temp_dir().join(format!("berth-pg-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for dir in ["logs", "instances/a/pgdata/log", "system-pg/log"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in [
            "logs/system-postgres.log",
            "instances/a/postgres.log",
            "instances/a/postgres.log.1",
            "instances/a/pgdata/PG_VERSION",
            "instances/a/pgdata/log/x.log",
            "system-pg/PG_VERSION",
            "system-pg/log/y.log",
        ] {
            std::fs::write(root.join(file), "x").unwrap();
        }
        let mut found = Vec::new();
        find_logs(&root, MAX_DEPTH, &mut found);
        found.sort();
        assert_eq!(
            found,
            [
                root.join("instances/a/postgres.log"),
                root.join("logs/system-postgres.log")
            ]
        );
        let _ = std::fs::remove_dir_all(root);
    }
}
