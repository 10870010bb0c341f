//! Berth's HTTP server: routes, authentication extractors, the error mapping, OpenAPI and
//! Swagger UI, and `serve`, which brings up the store (Berth's own PostgreSQL, supervised by
//! `berth_store::system`, unless a database URL is given) and runs until shut down.

mod compat;
mod connections;
mod console;
mod error;
mod extract;
mod middleware;
mod openapi;
mod pg_logs;
mod respond;
mod router;
mod routes;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;

use berth_auth::seal::MasterKey;
use berth_core::{App, BootstrapOutcome};
use berth_store::{PgConnectOptions, StoreHealth};
use tower::Layer;

pub use berth_auth::password::HashParams;
pub use berth_core::{AuthSettings, OAuthSettings, ThrottleSettings};
pub use compat::CompatConfig;
pub use connections::HttpConfig;
pub use middleware::RequestLog;
pub use state::AppState;

/// Everything `berth serve` needs, resolved from flags, environment and config file.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub public_url: url::Url,
    pub admin_password: Option<String>,
    pub master_key: Option<String>,
    pub auth: AuthSettings,
    pub instances: InstancesConfig,
    pub backups: BackupsConfig,
    pub stats: StatsConfig,
    /// Which other platforms' API dialects are served (`[compat]`).
    pub compat: CompatConfig,
    pub http: HttpConfig,
    pub log: LogConfig,
}

/// What Berth logs, and how much of its PostgreSQL children's logs it keeps (`[log]`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// The level of the one line per finished request.
    pub requests: RequestLog,
    /// A PostgreSQL log larger than this is rotated.
    pub postgres_log_max_mb: u64,
    /// Rotated copies kept of each PostgreSQL log (`postgres.log.1`, …).
    pub postgres_log_keep: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            requests: RequestLog::Debug,
            postgres_log_max_mb: 10,
            postgres_log_keep: 2,
        }
    }
}

/// How this server runs instances (`[instances]` in the config file).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InstancesConfig {
    /// The first and last TCP port instances may listen on.
    pub first_port: u16,
    pub last_port: u16,
    /// `listen_addresses` of every instance (`*` to accept connections from other hosts).
    pub listen_addresses: String,
    /// Jobs run at once.
    pub runners: usize,
    /// Runners that take only creates, besides `runners`, so a burst of creates does not wait
    /// behind backups and other long jobs.
    pub create_runners: usize,
    /// Spare instances kept started per installed PostgreSQL version even when nobody
    /// creates, so creates are fast (0 turns the pool off).
    pub spares: usize,
    /// Spares kept at most: the pool grows to the number of creates of the last
    /// `spare_demand_window_seconds`, up to this.
    pub spares_max: usize,
    pub spare_demand_window_seconds: u64,
    /// The memory size of spares (creates of other sizes start a cluster from scratch).
    pub spare_memory: String,
    /// Stopped copies of the template kept on disk per version (about 30 MB each), so a
    /// create that finds no spare does not copy a cluster while its user waits (0: none).
    pub spare_copies: usize,
    /// The memory sizes of all spares together stay within this (each counts at its size).
    pub spare_memory_budget: String,
    /// While the host has less memory available than this, spares are given back and none
    /// are made.
    pub spare_memory_reserve: String,
    /// Stop every instance when Berth stops (they start again with Berth). Off by default:
    /// instances keep serving while Berth restarts.
    pub stop_on_shutdown: bool,
    /// The firewall rules of a new instance whose create names none: this host only.
    pub default_firewall_rules: Vec<String>,
    /// How long `POST /api/v1/data-sources/{id}/test` waits for the data source's server
    /// (1–120 s).
    pub data_source_timeout_seconds: u64,
}

impl Default for InstancesConfig {
    fn default() -> Self {
        InstancesConfig {
            first_port: 20000,
            last_port: 29999,
            listen_addresses: "127.0.0.1".into(),
            runners: 4,
            create_runners: 4,
            spares: 10,
            spares_max: 20,
            spare_demand_window_seconds: 300,
            spare_memory: "256MB".into(),
            spare_copies: 10,
            spare_memory_budget: "6GB".into(),
            spare_memory_reserve: "1GB".into(),
            stop_on_shutdown: false,
            default_firewall_rules: vec!["127.0.0.0/8".into(), "::1/128".into()],
            data_source_timeout_seconds: 10,
        }
    }
}

/// `[backups]`: where instances' WAL and backups go (pgBackRest).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupsConfig {
    /// The repository directory. Default `<data-dir>/backups/repository`: on the same disk as
    /// the instances, so it protects against mistakes (a dropped table, a deleted instance),
    /// not against losing that disk. Point it at another disk for that.
    pub repository: Option<PathBuf>,
    /// A WAL segment with any committed transaction in it is archived at most this many
    /// seconds after it began (`archive_timeout`): the bound on the recovery point objective.
    pub archive_timeout_seconds: u32,
    /// Processes a backup, restore or archiving batch uses.
    pub process_max: u32,
}

impl Default for BackupsConfig {
    fn default() -> Self {
        BackupsConfig {
            repository: None,
            archive_timeout_seconds: 2,
            process_max: 2,
        }
    }
}

/// `[stats]`: how often every running instance is sampled, and how long the series are kept.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {
    /// Seconds between samples of each instance (1–3600; 0 turns sampling off).
    pub interval_seconds: u64,
    /// Days the series are kept (1–366); past a day they are 5-minute averages.
    pub retention_days: u32,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            interval_seconds: 15,
            retention_days: 7,
        }
    }
}

impl StatsConfig {
    fn settings(&self) -> Result<berth_core::StatsSettings, StartupError> {
        if self.interval_seconds > 3600 {
            return Err(StartupError::Config(
                "[stats] interval_seconds must be 0 (off) to 3600".into(),
            ));
        }
        if !(1..=366).contains(&self.retention_days) {
            return Err(StartupError::Config(
                "[stats] retention_days must be 1 to 366".into(),
            ));
        }
        Ok(berth_core::StatsSettings {
            interval: std::time::Duration::from_secs(self.interval_seconds),
            retention_days: self.retention_days,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Pg(#[from] berth_pg::PgError),
    #[error(transparent)]
    System(#[from] berth_store::system::SystemError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    App(#[from] berth_core::AppError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartupError {
    let context = context.into();
    move |source| StartupError::Io { context, source }
}

/// Runs the server until `shutdown` resolves, then stops cleanly (including Berth's own
/// PostgreSQL, when it started one).
pub async fn serve(
    cfg: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| StartupError::Config(format!("metrics: {e}")))?;
    // Before any child starts, so PostgreSQL gets the raised limit too.
    let nofile = connections::raise_nofile_limit();
    let limits = connections::Limits::new(&cfg.http, nofile).map_err(StartupError::Config)?;
    if let Some(warning) = limits.fd_warning() {
        tracing::warn!("{warning}");
    }
    if cfg.log.postgres_log_max_mb == 0 {
        return Err(StartupError::Config(
            "[log] postgres_log_max_mb must be at least 1".into(),
        ));
    }
    middleware::set_request_log(cfg.log.requests);
    prepare_data_dir(&cfg.data_dir)?;
    // The user PostgreSQL runs as owns its logs; only its files are ever rotated.
    let log_owner = match berth_pg::run_as_for_current_process()? {
        Some(user) => user.uid,
        // SAFETY: geteuid has no preconditions.
        None => unsafe { libc::geteuid() },
    };
    let log_bounds = tokio::spawn(pg_logs::bound_logs(
        cfg.data_dir.clone(),
        cfg.log.postgres_log_max_mb * 1024 * 1024,
        cfg.log.postgres_log_keep,
        log_owner,
    ));

    let health = StoreHealth::new_up();
    let system_db = match &cfg.database_url {
        Some(_) => None,
        None => Some(berth_store::system::SystemDb::start(&cfg.data_dir).await?),
    };
    let system = system_db.as_ref().map(|s| s.connect_options());
    let supervised = system_db.map(|db| db.supervise(health.clone()));
    let result = run(&cfg, system, health, metrics, limits, shutdown).await;
    if let Some(db) = supervised {
        db.stop().await;
    }
    log_bounds.abort();
    result
}

async fn run(
    cfg: &ServeConfig,
    system: Option<PgConnectOptions>,
    health: StoreHealth,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
    limits: connections::Limits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), StartupError> {
    let options = match (&cfg.database_url, system) {
        (Some(url), _) => url.parse::<PgConnectOptions>()?,
        (None, Some(o)) => o,
        (None, None) => return Err(StartupError::Config("no database".into())),
    };
    let pool = berth_store::connect(options.clone(), 32).await?;
    let _probe = health.spawn_probe(options);
    let (master_key, created_key_file) = load_master_key(cfg)?;
    let (engine, instance_settings) = local_engine(cfg)?;
    let app = match App::new(
        pool.clone(),
        health,
        cfg.auth.clone(),
        master_key,
        engine,
        instance_settings,
    )
    .await
    {
        Ok(app) => app,
        Err(e) => {
            // A key file made just now for a store that already has keys is useless: remove it
            // so the operator's fix (restoring the right one) is not blocked by it.
            if let Some(path) = created_key_file {
                let _ = std::fs::remove_file(path);
            }
            return Err(e.into());
        }
    };
    match app.bootstrap_admin(cfg.admin_password.as_deref()).await? {
        BootstrapOutcome::CreatedWithGeneratedPassword(pw) => {
            // Printed once, to the operator's terminal only; never logged.
            eprintln!("\n  Created administrator `admin` with password: {pw}\n  (shown only this once; set BERTH_ADMIN_PASSWORD to choose it)\n");
        }
        BootstrapOutcome::CreatedWithGivenPassword => {
            tracing::info!("created administrator `admin`")
        }
        BootstrapOutcome::AlreadyInitialised => {}
    }

    app.start_instance_work().await?;
    let state = AppState {
        app: app.clone(),
        public_url: cfg.public_url.clone(),
        metrics,
    };
    let service = tower::util::MapRequestLayer::new(middleware::trim_trailing_slash)
        .layer(router::router(state, &cfg.compat));
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(io_err(format!("binding {}", cfg.listen)))?;
    tracing::info!(listen = %cfg.listen, public_url = %cfg.public_url, max_connections = limits.max_connections(), max_connections_per_address = limits.max_connections_per_address(), "berth is serving");
    connections::serve(listener, service, limits, shutdown).await;
    tracing::info!("shutting down");
    if cfg.instances.stop_on_shutdown {
        app.stop_instances().await;
    }
    pool.close().await;
    Ok(())
}

/// The local engine: instances under `<data-dir>/instances`, templates under `<data-dir>/templates`.
fn local_engine(
    cfg: &ServeConfig,
) -> Result<
    (
        std::sync::Arc<dyn berth_engine::Engine>,
        berth_core::InstanceSettings,
    ),
    StartupError,
> {
    let i = &cfg.instances;
    if i.first_port == 0 || i.first_port > i.last_port {
        return Err(StartupError::Config(
            "[instances] first_port must be 1..=last_port".into(),
        ));
    }
    // A repository the operator named must exist: made here, it could land on the root disk
    // under a mount point whose disk is missing, and the backups would not be where they think.
    if let Some(repo) = &cfg.backups.repository {
        if !repo.is_dir() {
            return Err(StartupError::Config(format!(
                "[backups] repository {} does not exist; create it (writable by the PostgreSQL \
                 user) or mount its disk",
                repo.display()
            )));
        }
    }
    let engine = berth_engine::LocalEngine::new(berth_engine::LocalEngineConfig {
        root: cfg.data_dir.join("instances"),
        templates: cfg.data_dir.join("templates"),
        listen_addresses: i.listen_addresses.clone(),
        run_as: berth_pg::run_as_for_current_process()?,
        backups: berth_engine::BackupSettings {
            repository: cfg
                .backups
                .repository
                .clone()
                .unwrap_or_else(|| cfg.data_dir.join("backups").join("repository")),
            work_dir: cfg.data_dir.join("backups"),
            archive_timeout_secs: cfg.backups.archive_timeout_seconds.clamp(1, 3600),
            process_max: cfg.backups.process_max.clamp(1, 32),
        },
    })
    .map_err(|e| StartupError::Config(format!("backups: {e}")))?;
    let settings = berth_core::InstanceSettings {
        region: "local".into(),
        public_host: cfg
            .public_url
            .host_str()
            .unwrap_or("127.0.0.1")
            .trim_matches(['[', ']'])
            .to_owned(),
        first_port: i.first_port,
        last_port: i.last_port,
        runners: i.runners,
        create_runners: i.create_runners,
        spare_pool: berth_core::SparePolicy {
            floor: i.spares,
            ceiling: i.spares_max.max(i.spares),
            memory_budget: size_setting("spare_memory_budget", &i.spare_memory_budget)?,
            memory_reserve: size_setting("spare_memory_reserve", &i.spare_memory_reserve)?,
            demand_window: std::time::Duration::from_secs(
                i.spare_demand_window_seconds.clamp(1, 86_400),
            ),
            refill_parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
            copies: i.spare_copies,
        },
        spare_memory: i.spare_memory.clone(),
        data_source_timeout: std::time::Duration::from_secs(
            i.data_source_timeout_seconds.clamp(1, 120),
        ),
        default_firewall_rules: i
            .default_firewall_rules
            .iter()
            .map(|c| {
                berth_core::parse_cidr(c).map_err(|e| {
                    StartupError::Config(format!("[instances] default_firewall_rules: {e}"))
                })
            })
            .collect::<Result<_, _>>()?,
        stats: cfg.stats.settings()?,
    };
    Ok((std::sync::Arc::new(engine), settings))
}

/// The data directory must be reachable by the `postgres` user when Berth runs as root, so it
/// is world-traversable but not listable by others; secrets inside are 0600.
fn prepare_data_dir(dir: &std::path::Path) -> Result<(), StartupError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
        .map_err(io_err(format!("securing {}", dir.display())))?;
    Ok(())
}

/// `BERTH_MASTER_KEY` when set (several replicas must share it), else `master.key` in the data
/// directory, created on first start (its path is returned when it was created now).
fn load_master_key(cfg: &ServeConfig) -> Result<(MasterKey, Option<PathBuf>), StartupError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let bad = |e: berth_auth::seal::SealError| StartupError::Config(format!("master key: {e}"));
    if let Some(k) = &cfg.master_key {
        return Ok((MasterKey::from_encoded(k).map_err(bad)?, None));
    }
    let path = cfg.data_dir.join("master.key");
    match std::fs::read_to_string(&path) {
        Ok(k) => Ok((MasterKey::from_encoded(&k).map_err(bad)?, None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let encoded = MasterKey::generate_encoded();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io_err(format!("creating {}", path.display())))?;
            f.write_all(encoded.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(io_err(format!("writing {}", path.display())))?;
            Ok((MasterKey::from_encoded(&encoded).map_err(bad)?, Some(path)))
        }
        Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// A size in `[instances]` (`4GB`, `512MB`).
fn size_setting(name: &str, value: &str) -> Result<u64, StartupError> {
    berth_engine::parse_size(value).ok_or_else(|| {
        StartupError::Config(format!(
            "[instances] {name}: `{value}` is not a size such as 512MB or 4GB"
        ))
    })
}
