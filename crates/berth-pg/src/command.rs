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

/// A command for a PostgreSQL tool that is not a server (a backup tool, say), run like the
/// server's own programs: as `run_as`, from `/`, with only PATH and TZ from Berth's
/// environment. It dies with Berth (`PR_SET_PDEATHSIG`), so a job interrupted by a crash never
/// leaves a tool running that its retry would collide with, and with the future waiting for it
/// (a job past its deadline).
pub fn tool_command(program: &Path, run_as: Option<&RunAs>) -> Command {
    let mut cmd = pg_command(program, run_as);
    cmd.kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; the closure runs in the child after the switch to
    // `run_as` (which would clear the setting), before exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}
