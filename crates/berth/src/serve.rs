//! `berth serve`: resolves settings (flag > environment > config file > default), sets up
//! logging and runs the server until SIGINT/SIGTERM.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use berth_server::{
    AuthSettings, HashParams, HttpConfig, InstancesConfig, LogConfig, OAuthSettings, ServeConfig,
    ThrottleSettings,
};
use serde::Deserialize;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// TOML config file (see docs/operations.md).
    #[arg(long, env = "BERTH_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "BERTH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Where Berth keeps its state (and its own PostgreSQL) [default: ./berth-data].
    #[arg(long, env = "BERTH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Use this PostgreSQL instead of starting one in the data directory.
    #[arg(long, env = "BERTH_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The externally visible base URL [default: http://<listen>].
    #[arg(long, env = "BERTH_PUBLIC_URL")]
    public_url: Option<url::Url>,
    /// Log format [default: text on a terminal, json otherwise].
    #[arg(long, env = "BERTH_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The config file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    public_url: Option<url::Url>,
    log_format: Option<LogFormat>,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    instances: InstancesConfig,
    #[serde(default)]
    backups: berth_server::BackupsConfig,
    #[serde(default)]
    stats: berth_server::StatsConfig,
    #[serde(default)]
    compat: berth_server::CompatConfig,
    #[serde(default)]
    http: HttpConfig,
    #[serde(default)]
    log: LogConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    access_token_ttl_secs: Option<u64>,
    refresh_token_ttl_secs: Option<u64>,
    token_family_lifetime_secs: Option<u64>,
    session_ttl_secs: Option<u64>,
    password_hash: Option<HashParams>,
    password_hash_concurrency: Option<usize>,
    throttle: Option<ThrottleSettings>,
    oauth: Option<OAuthSettings>,
    audit_retention_days: Option<u64>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let file: FileConfig = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let log_format =
        args.log_format
            .or(file.log_format)
            .unwrap_or(if std::io::stderr().is_terminal() {
                LogFormat::Text
            } else {
                LogFormat::Json
            });
    init_logging(log_format);

    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| "127.0.0.1:8080".parse().expect("valid default"));
    let public_url = match args.public_url.or(file.public_url) {
        Some(u) => u,
        None => default_public_url(listen)?,
    };
    let mut auth = AuthSettings::new(public_url.as_str());
    let a = file.auth;
    let secs = Duration::from_secs;
    if let Some(s) = a.access_token_ttl_secs {
        auth.access_token_ttl = secs(s);
    }
    if let Some(s) = a.refresh_token_ttl_secs {
        auth.refresh_token_ttl = secs(s);
    }
    if let Some(s) = a.token_family_lifetime_secs {
        auth.token_family_lifetime = secs(s);
    }
    if let Some(s) = a.session_ttl_secs {
        auth.session_ttl = secs(s);
    }
    if let Some(p) = a.password_hash {
        auth.password_hash = p;
    }
    if let Some(n) = a.password_hash_concurrency {
        auth.hash_concurrency = n;
    }
    if let Some(t) = a.throttle {
        auth.throttle = t;
    }
    if let Some(o) = a.oauth {
        auth.oauth = o;
    }
    if let Some(d) = a.audit_retention_days {
        auth.audit_retention_days = d;
    }
    let cfg = ServeConfig {
        listen,
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("berth-data")),
        database_url: args.database_url.or(file.database_url),
        public_url,
        admin_password: std::env::var("BERTH_ADMIN_PASSWORD")
            .ok()
            .filter(|s| !s.is_empty()),
        master_key: std::env::var("BERTH_MASTER_KEY")
            .ok()
            .filter(|s| !s.is_empty()),
        auth,
        instances: file.instances,
        backups: file.backups,
        stats: file.stats,
        compat: file.compat,
        http: file.http,
        log: file.log,
    };
    let data_dir = std::path::absolute(&cfg.data_dir).context("resolving the data directory")?;
    let cfg = ServeConfig { data_dir, ..cfg };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(berth_server::serve(cfg, berth_server::shutdown_signal()))?;
    Ok(())
}

fn default_public_url(listen: SocketAddr) -> anyhow::Result<url::Url> {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    Ok(url::Url::parse(&format!(
        "http://{host}:{}",
        listen.port()
    ))?)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if format == LogFormat::Json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.init();
    }
}
