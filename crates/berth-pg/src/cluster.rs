//! Running a PostgreSQL cluster: starting `postgres` as a child (or adopting one that outlived a
//! previous berth), waiting until it accepts connections, and stopping it.
//!
//! Readiness and identity come from `postmaster.pid`: postgres writes its status there
//! (`starting`, `ready`, `stopping`), so no client connection is needed. A pid is only signalled
//! after checking, through `/proc`, that it is this data directory's postmaster. Dropping a
//! [`Cluster`] leaves postgres running: instances must survive berth restarts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Child;
use tokio::time::Instant;

use crate::command::pg_command;
use crate::lockfile::{self, pid_file_path, Owner};
use crate::process;
use crate::user::check_reachable;
use crate::{dirs, logfile, PgBinaries, PgError, RunAs};

/// How long stop waits after SIGQUIT (immediate shutdown), which needs no cooperation.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// How long start waits for backends of a SIGKILLed postmaster to exit (they notice quickly).
const ORPHAN_GRACE: Duration = Duration::from_secs(5);
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(50);

/// Where a cluster lives and how it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// PGDATA.
    pub data_dir: PathBuf,
    /// `unix_socket_directories` (see [`crate::socket_dir_for`]).
    pub socket_dir: PathBuf,
    pub port: u16,
    /// `listen_addresses`; empty for Unix socket only.
    pub listen_addresses: String,
    /// Extra `-c name=value` settings.
    pub settings: Vec<(String, String)>,
    /// The server's stdout and stderr are appended here.
    pub log_file: PathBuf,
}

impl ClusterSpec {
    /// Socket-only cluster with no extra settings.
    pub fn new(data_dir: PathBuf, socket_dir: PathBuf, port: u16, log_file: PathBuf) -> Self {
        ClusterSpec {
            data_dir,
            socket_dir,
            port,
            listen_addresses: String::new(),
            settings: Vec::new(),
            log_file,
        }
    }

    /// The same spec with absolute paths: children run from `/`, and pid files hold absolute
    /// paths.
    fn absolute(&self) -> Result<ClusterSpec, PgError> {
        let abs = |p: &Path| std::path::absolute(p).map_err(|e| PgError::io("resolving", p, e));
        Ok(ClusterSpec {
            data_dir: abs(&self.data_dir)?,
            socket_dir: abs(&self.socket_dir)?,
            log_file: abs(&self.log_file)?,
            ..self.clone()
        })
    }
}

/// A running postmaster, either spawned by us or adopted.
#[derive(Debug)]
pub struct Cluster {
    spec: ClusterSpec,
    postmaster: Postmaster,
}

impl Cluster {
    /// Creates the cluster with initdb unless `data_dir/PG_VERSION` exists: superuser
    /// `superuser`, trust auth on the Unix socket, scram-sha-256 over TCP, UTF8, locale C. Creates
    /// the data and socket directories (data 0700, both owned by `run_as`), and first checks that
    /// `run_as` can reach them. Remains of an interrupted initdb are cleaned up; a non-empty
    /// directory holding anything else is refused.
    pub async fn init(
        bins: &PgBinaries,
        spec: &ClusterSpec,
        run_as: Option<&RunAs>,
        superuser: &str,
    ) -> Result<(), PgError> {
        crate::init::init(bins, &spec.absolute()?, run_as, superuser).await
    }

    /// Starts the cluster, or adopts its postmaster if one is already running (e.g. berth was
    /// killed), and waits until it accepts connections. Stale lock files left by a crash are
    /// removed first. Postgres runs in its own process group, so a Ctrl-C in berth's terminal
    /// does not reach it. On timeout the postmaster is left running: it may be in a long crash
    /// recovery, and calling `start` again adopts it.
    pub async fn start(
        bins: &PgBinaries,
        spec: &ClusterSpec,
        run_as: Option<&RunAs>,
        timeout: Duration,
    ) -> Result<Cluster, PgError> {
        let spec = spec.absolute()?;
        let deadline = Instant::now() + timeout;
        if !spec.data_dir.join("PG_VERSION").is_file() {
            return Err(PgError::NotInitialized {
                data_dir: spec.data_dir.clone(),
            });
        }
        let log_start = logfile::len(&spec.log_file);

        let owner = lockfile::owner(&spec.data_dir, true)?;
        if let Owner::Postmaster { pid, start_time } = owner {
            tracing::info!(pid, data_dir = %spec.data_dir.display(), "adopting running postmaster");
            let mut cluster = Cluster {
                postmaster: Postmaster {
                    pid: pid as u32,
                    data_dir: spec.data_dir.clone(),
                    process: Process::Adopted { start_time },
                },
                spec,
            };
            cluster.wait_ready(deadline, timeout, log_start).await?;
            return Ok(cluster);
        }
        if owner == Owner::Stale {
            wait_for_orphans(&spec.data_dir).await;
        }

        dirs::prepare_socket_dir(&spec.socket_dir, run_as)?;
        if let Some(user) = run_as {
            check_reachable(user, &spec.data_dir)?;
            check_reachable(user, &spec.socket_dir)?;
        }
        lockfile::clear_stale_socket_lock(&spec.socket_dir, spec.port)?;
        let log = dirs::open_log_file(&spec.log_file, run_as)?;
        let log_start = logfile::len(&spec.log_file);
        let log_err = log
            .try_clone()
            .map_err(|e| PgError::io("duplicating handle of", &spec.log_file, e))?;

        let program = bins.postgres();
        let mut cmd = pg_command(&program, run_as);
        cmd.arg("-D")
            .arg(&spec.data_dir)
            .arg("-p")
            .arg(spec.port.to_string());
        // Ours come last so they win over anything in `settings`: the pid file and socket must be
        // where the spec says.
        for (name, value) in &spec.settings {
            cmd.arg("-c").arg(format!("{name}={value}"));
        }
        cmd.arg("-c")
            .arg(format!("listen_addresses={}", spec.listen_addresses))
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                quote_list_item(&spec.socket_dir)
            ))
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|source| PgError::Spawn { program, source })?;
        let pid = child.id().unwrap_or(0);
        tracing::info!(pid, data_dir = %spec.data_dir.display(), port = spec.port, "started postgres");
        let mut cluster = Cluster {
            postmaster: Postmaster {
                pid,
                data_dir: spec.data_dir.clone(),
                process: Process::Spawned(child),
            },
            spec,
        };
        cluster.wait_ready(deadline, timeout, log_start).await?;
        Ok(cluster)
    }

    pub fn pid(&self) -> u32 {
        self.postmaster.pid
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// Whether this postmaster was already running and adopted rather than spawned by us.
    pub fn is_adopted(&self) -> bool {
        matches!(self.postmaster.process, Process::Adopted { .. })
    }

    /// Whether the postmaster is still alive. Non-blocking; reaps our child if it exited.
    pub fn is_running(&mut self) -> bool {
        self.postmaster.is_running()
    }

    /// `Some(how it ended)` once the postmaster has exited (e.g. `signal: 9 (SIGKILL)` for our
    /// child). Non-blocking, like [`Self::is_running`].
    pub fn exit_status(&mut self) -> Option<String> {
        self.postmaster.exit_status()
    }

    /// Fast shutdown: SIGINT (disconnect clients, checkpoint), wait up to `timeout`, then SIGQUIT
    /// (immediate shutdown, crash recovery at next start) and wait a little more. Fine if it has
    /// already exited.
    pub async fn stop(&mut self, timeout: Duration) -> Result<(), PgError> {
        self.postmaster.stop(timeout).await
    }

    /// Gives up the handle without stopping postgres, returning its pid; a later `start` adopts it.
    pub fn detach(self) -> u32 {
        self.postmaster.pid
    }

    async fn wait_ready(
        &mut self,
        deadline: Instant,
        timeout: Duration,
        log_start: u64,
    ) -> Result<(), PgError> {
        let pid_file = pid_file_path(&self.spec.data_dir);
        let mut delay = FIRST_POLL;
        loop {
            if let Some(status) = self.postmaster.exit_status() {
                return Err(PgError::StartFailed {
                    data_dir: self.spec.data_dir.clone(),
                    status,
                    log_file: self.spec.log_file.clone(),
                    log_tail: logfile::tail_since(&self.spec.log_file, log_start),
                });
            }
            // Read errors are transient while postgres rewrites the file; keep polling.
            if let Ok(Some(lock)) = lockfile::read(&pid_file) {
                if lock.pid == i64::from(self.postmaster.pid) && lock.is_ready() {
                    return Ok(());
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(PgError::StartTimeout {
                    data_dir: self.spec.data_dir.clone(),
                    pid: self.postmaster.pid,
                    timeout,
                    log_file: self.spec.log_file.clone(),
                    log_tail: logfile::tail_since(&self.spec.log_file, log_start),
                });
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(MAX_POLL);
        }
    }
}

/// Stops the postmaster running `data_dir`, found through its verified `postmaster.pid`, for when
/// no [`Cluster`] handle is at hand (e.g. deleting an instance). `Ok(false)` when none was running.
pub async fn stop_data_dir(data_dir: &Path, timeout: Duration) -> Result<bool, PgError> {
    let data_dir =
        std::path::absolute(data_dir).map_err(|e| PgError::io("resolving", data_dir, e))?;
    let Owner::Postmaster { pid, start_time } = lockfile::owner(&data_dir, false)? else {
        return Ok(false);
    };
    let mut postmaster = Postmaster {
        pid: pid as u32,
        data_dir,
        process: Process::Adopted { start_time },
    };
    postmaster.stop(timeout).await?;
    Ok(true)
}

/// A postmaster process: our child (signalled safely while the `Child` is unreaped, as its pid
/// cannot be reused), or an adopted one, verified once and from then on recognised by pid plus
/// start time before every signal.
#[derive(Debug)]
struct Postmaster {
    pid: u32,
    data_dir: PathBuf,
    process: Process,
}

#[derive(Debug)]
enum Process {
    Spawned(Child),
    /// Not our child; `start_time` is [`process::start_time`] at verification.
    Adopted {
        start_time: u64,
    },
}

impl Postmaster {
    fn is_running(&mut self) -> bool {
        self.exit_status().is_none()
    }

    /// `Some(description)` once the process has exited.
    fn exit_status(&mut self) -> Option<String> {
        match &mut self.process {
            Process::Spawned(child) => match child.try_wait() {
                Ok(None) => None,
                Ok(Some(status)) => Some(status.to_string()),
                Err(e) => Some(format!("cannot wait for it: {e}")),
            },
            Process::Adopted { start_time } => (process::start_time(self.pid as i32)
                != Some(*start_time))
            .then(|| "exited".to_string()),
        }
    }

    async fn stop(&mut self, timeout: Duration) -> Result<(), PgError> {
        for (signal, name, wait) in [
            (libc::SIGINT, "SIGINT", timeout),
            (libc::SIGQUIT, "SIGQUIT", QUIT_GRACE),
        ] {
            if !self.is_running() {
                return Ok(());
            }
            let sent = process::send_signal(self.pid as i32, signal).map_err(|source| {
                PgError::Signal {
                    pid: self.pid,
                    signal: name,
                    source,
                }
            })?;
            if sent && !self.wait_exit(wait).await {
                tracing::warn!(
                    pid = self.pid,
                    signal = name,
                    "postgres did not exit in {wait:?}"
                );
                continue;
            }
            tracing::info!(pid = self.pid, data_dir = %self.data_dir.display(), "stopped postgres");
            return Ok(());
        }
        Err(PgError::StopTimeout {
            pid: self.pid,
            data_dir: self.data_dir.clone(),
        })
    }

    /// Waits up to `limit` for exit; true if it exited.
    async fn wait_exit(&mut self, limit: Duration) -> bool {
        if let Process::Spawned(child) = &mut self.process {
            return tokio::time::timeout(limit, child.wait()).await.is_ok();
        }
        let deadline = Instant::now() + limit;
        let mut delay = FIRST_POLL;
        while self.is_running() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL);
        }
        true
    }
}

/// After a postmaster was SIGKILLed its children may linger briefly holding the old shared
/// memory, and a new postmaster would refuse to start; give them a moment.
async fn wait_for_orphans(data_dir: &Path) {
    let deadline = Instant::now() + ORPHAN_GRACE;
    loop {
        let orphans = process::postgres_processes_in(data_dir);
        if orphans.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(?orphans, data_dir = %data_dir.display(), "postgres processes of a dead postmaster are still running");
            return;
        }
        tokio::time::sleep(MAX_POLL).await;
    }
}

/// One element of a PostgreSQL list setting, double-quoted so commas and spaces in the path
/// survive (`SplitDirectoriesString` syntax).
fn quote_list_item(path: &Path) -> String {
    format!("\"{}\"", path.to_string_lossy().replace('"', "\"\""))
}
