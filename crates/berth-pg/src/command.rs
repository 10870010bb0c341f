//! Building commands for PostgreSQL programs: as the right user, from `/`, with a minimal
//! environment.
//!
//! The environment is not inherited because berth's may hold secrets (database URLs, keys) that a
//! database superuser could read back from `/proc/self/environ` of the server. The working
//! directory is `/` because berth's may be unreadable to the `postgres` user.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;

use crate::RunAs;

/// Variables passed through to PostgreSQL programs: PATH for `archive_command` and friends, TZ so
/// initdb picks the operator's time zone.
const PASSED_ENV: &[&str] = &["PATH", "TZ"];

pub(crate) fn pg_command(program: &Path, run_as: Option<&RunAs>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .envs(
            PASSED_ENV
                .iter()
                .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
        )
        .current_dir("/")
        .stdin(Stdio::null())
        .kill_on_drop(false);
    if let Some(user) = run_as {
        // std drops supplementary groups too when switching from root.
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}
