//! Berth's own PostgreSQL (the "system" cluster) for when no `--database-url` is given: created
//! in the data directory on first start, started (or adopted after a crash of Berth) on every
//! start, supervised while Berth runs, and stopped on shutdown. It listens on a Unix socket only.
//!
//! It lives in the store because the store owns the database it stores in: what the HTTP layer
//! and the app layer see is a pool and a [`StoreHealth`], the same whether the database is this
//! cluster or an external one. Supervision is a loop that polls the postmaster (a non-blocking
//! `waitpid` on our child, or pid plus start time in `/proc` for an adopted one, so a stale or
//! reused pid is never taken for it and never signalled) every 250 ms; when it has exited, the
//! store is marked down at once and the cluster started again through [`Cluster::start`], which
//! clears the stale lock files, waits for leftover backends and lets PostgreSQL replay its WAL.
//! A failed restart is retried with a doubling pause (1 s up to 30 s). Restarts are logged and
//! counted (`berth_store_restarts_total`, `berth_store_restart_failures_total`).

use std::path::Path;
use std::time::Duration;

use berth_pg::{run_as_for_current_process, socket_dir_for, Cluster, ClusterSpec, PgBinaries};
use sqlx::postgres::PgConnectOptions;
use sqlx::ConnectOptions;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::health::StoreHealth;

const PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";
const DATABASE: &str = "berth";
/// How long a start (including crash recovery) may take before it counts as failed. A
/// postmaster still recovering then is left running and adopted by the next attempt.
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const CHECK_EVERY: Duration = Duration::from_millis(250);
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error(transparent)]
    Pg(#[from] berth_pg::PgError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Config(String),
}

/// The system cluster, running; [`SystemDb::supervise`] hands it to its supervisor.
pub struct SystemDb {
    bins: PgBinaries,
    spec: ClusterSpec,
    run_as: Option<berth_pg::RunAs>,
    cluster: Cluster,
    options: PgConnectOptions,
}

impl SystemDb {
    /// Creates the cluster if needed, starts or adopts it, and makes sure the database exists.
    pub async fn start(data_dir: &Path) -> Result<SystemDb, SystemError> {
        let bins = binaries_for(&data_dir.join("system-pg"))?;
        let run_as = run_as_for_current_process()?;
        let mut spec = ClusterSpec::new(
            data_dir.join("system-pg"),
            socket_dir_for(&data_dir.join("run")),
            PORT,
            data_dir.join("logs").join("system-postgres.log"),
        );
        spec.settings = [
            ("max_connections", "100"),
            ("shared_buffers", "64MB"),
            ("log_min_messages", "warning"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Cluster::init(&bins, &spec, run_as.as_ref(), SUPERUSER).await?;
        let cluster = Cluster::start(&bins, &spec, run_as.as_ref(), START_TIMEOUT).await?;
        tracing::info!(pid = cluster.pid(), adopted = cluster.is_adopted(), version = %bins.version, "system PostgreSQL running");
        let server = PgConnectOptions::new()
            .host(&cluster.spec().socket_dir.to_string_lossy())
            .port(PORT)
            .username(SUPERUSER)
            .disable_statement_logging();
        let db = SystemDb {
            options: server.clone().database(DATABASE),
            bins,
            spec,
            run_as,
            cluster,
        };
        if let Err(e) = create_database_if_missing(&server).await {
            db.stop().await;
            return Err(e);
        }
        Ok(db)
    }

    pub fn connect_options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// Stops the cluster before it was ever supervised (start-up failed).
    pub async fn stop(mut self) {
        if let Err(e) = self.cluster.stop(STOP_TIMEOUT).await {
            tracing::warn!(error = %e, "stopping the system PostgreSQL failed");
        }
    }

    /// Starts supervising: from now on the cluster is restarted whenever it dies, and `health`
    /// follows it. Stop it with [`Supervised::stop`].
    pub fn supervise(self, health: StoreHealth) -> Supervised {
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(supervise(self, health, stopped));
        Supervised { stop, task }
    }
}

/// The supervised system cluster.
pub struct Supervised {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Supervised {
    /// Stops supervising and stops the cluster (fast shutdown, immediate after 30 s).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the system PostgreSQL supervisor failed");
        }
    }
}

async fn supervise(mut db: SystemDb, health: StoreHealth, mut stopped: oneshot::Receiver<()>) {
    // Exported from the start, at 0, so that dashboards and alerts see them before a restart.
    metrics::counter!("berth_store_restarts_total").increment(0);
    metrics::counter!("berth_store_restart_failures_total").increment(0);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
        let Some(status) = db.cluster.exit_status() else {
            continue;
        };
        health.mark_down("the system PostgreSQL exited");
        tracing::error!(
            pid = db.cluster.pid(),
            %status,
            log_file = %db.spec.log_file.display(),
            "the system PostgreSQL exited unexpectedly; restarting it"
        );
        let mut pause = RETRY_FIRST;
        loop {
            // Not raced against `stopped`: abandoning a start half-way could leave a
            // postmaster behind that nobody stops. A start is bounded by START_TIMEOUT.
            match Cluster::start(&db.bins, &db.spec, db.run_as.as_ref(), START_TIMEOUT).await {
                Ok(cluster) => {
                    tracing::warn!(
                        pid = cluster.pid(),
                        adopted = cluster.is_adopted(),
                        "system PostgreSQL restarted"
                    );
                    metrics::counter!("berth_store_restarts_total").increment(1);
                    db.cluster = cluster;
                    health.probe_soon();
                    break;
                }
                Err(e) => {
                    metrics::counter!("berth_store_restart_failures_total").increment(1);
                    tracing::error!(error = %e, retry_in = ?pause, "restarting the system PostgreSQL failed");
                    tokio::select! {
                        _ = &mut stopped => {
                            // A start that timed out leaves its postmaster running (still
                            // recovering) with no handle on it: stop whatever runs the data
                            // directory, so no system PostgreSQL outlives Berth.
                            stop_leftover(&db.spec.data_dir).await;
                            return;
                        }
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(RETRY_MAX);
                }
            }
        }
    }
    if let Err(e) = db.cluster.stop(STOP_TIMEOUT).await {
        tracing::warn!(error = %e, "stopping the system PostgreSQL failed");
    }
}

/// Stops the postmaster running `data_dir`, if any, found through its verified pid file.
async fn stop_leftover(data_dir: &Path) {
    match berth_pg::stop_data_dir(data_dir, STOP_TIMEOUT).await {
        Ok(true) => tracing::info!("stopped the system PostgreSQL a failed restart left running"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "stopping the system PostgreSQL failed"),
    }
}

/// The newest installed PostgreSQL for a new cluster; for an existing one, the major version
/// that created it (a cluster cannot be opened by another major version).
fn binaries_for(pgdata: &Path) -> Result<PgBinaries, SystemError> {
    let Ok(version) = std::fs::read_to_string(pgdata.join("PG_VERSION")) else {
        return Ok(PgBinaries::discover()?);
    };
    let major: u32 = version.trim().parse().map_err(|_| {
        SystemError::Config(format!("{}/PG_VERSION is unreadable", pgdata.display()))
    })?;
    PgBinaries::discover_all()
        .into_iter()
        .find(|b| b.major == major)
        .ok_or_else(|| {
            SystemError::Config(format!(
            "the system database in {} was created by PostgreSQL {major}, which is not installed \
             (install postgresql-{major}, e.g. `apt-get install postgresql-{major}`)",
            pgdata.display()
        ))
        })
}

async fn create_database_if_missing(server: &PgConnectOptions) -> Result<(), SystemError> {
    let mut conn = server.clone().database("postgres").connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut conn)
            .await?;
    }
    Ok(())
}
