//! Berth's own PostgreSQL ("system" cluster) for when no `--database-url` is given: created in
//! the data directory on first start, started (or adopted after a crash) on every start, and
//! stopped on shutdown. It listens on a Unix socket only.

use std::path::Path;
use std::time::Duration;

use berth_pg::{run_as_for_current_process, socket_dir_for, Cluster, ClusterSpec, PgBinaries};
use berth_store::PgConnectOptions;
use sqlx::ConnectOptions;

use crate::StartupError;

const PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";
const DATABASE: &str = "berth";

pub struct SystemDb {
    cluster: Cluster,
    options: PgConnectOptions,
}

impl SystemDb {
    pub async fn start(data_dir: &Path) -> Result<SystemDb, StartupError> {
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
        let cluster =
            Cluster::start(&bins, &spec, run_as.as_ref(), Duration::from_secs(60)).await?;
        tracing::info!(pid = cluster.pid(), adopted = cluster.is_adopted(), version = %bins.version, "system PostgreSQL running");
        let server = PgConnectOptions::new()
            .host(&cluster.spec().socket_dir.to_string_lossy())
            .port(PORT)
            .username(SUPERUSER)
            .disable_statement_logging();
        create_database_if_missing(&server).await?;
        Ok(SystemDb {
            options: server.database(DATABASE),
            cluster,
        })
    }

    pub fn connect_options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    pub async fn stop(mut self) {
        if let Err(e) = self.cluster.stop(Duration::from_secs(30)).await {
            tracing::warn!(error = %e, "stopping the system PostgreSQL failed");
        }
    }
}

/// The newest installed PostgreSQL for a new cluster; for an existing one, the major version
/// that created it (a cluster cannot be opened by another major version).
fn binaries_for(pgdata: &Path) -> Result<PgBinaries, StartupError> {
    let Ok(version) = std::fs::read_to_string(pgdata.join("PG_VERSION")) else {
        return Ok(PgBinaries::discover()?);
    };
    let major: u32 = version.trim().parse().map_err(|_| {
        StartupError::Config(format!("{}/PG_VERSION is unreadable", pgdata.display()))
    })?;
    PgBinaries::discover_all()
        .into_iter()
        .find(|b| b.major == major)
        .ok_or_else(|| {
            StartupError::Config(format!(
            "the system database in {} was created by PostgreSQL {major}, which is not installed \
             (install postgresql-{major}, e.g. `apt-get install postgresql-{major}`)",
            pgdata.display()
        ))
        })
}

async fn create_database_if_missing(server: &PgConnectOptions) -> Result<(), StartupError> {
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
