//! The command-line client: `berth login`, `token`, `whoami`, `logout`, `instances` and `jobs`.
//! One small module per subcommand, sharing the credentials store (`store`), the HTTP/OAuth
//! client (`http`), the access-token logic (`token`), the signed-in session that hands out the
//! typed `berth_client::Berth` (`api`), output formatting (`table`) and `--wait` polling
//! (`wait`). The client does one thing at a time, so it runs on a current-thread runtime.

/// `println!` for command output: a closed pipe (`berth whoami | head -1`) is not an error.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::write_line(format_args!($($arg)*))
    };
}

mod api;
mod backups;
mod browser;
mod config;
mod data_sources;
mod db_users;
mod device;
mod firewall;
use berth_client::http;
mod instances;
mod jobs;
mod keys;
mod login;
mod logout;
mod monitoring;
mod store;
mod table;
mod token;
mod wait;
mod whoami;
mod workflows;

use std::io::Write;

use anyhow::Context;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Sign in to a Berth server (in a browser, or as an API client) and store the tokens.
    Login(login::LoginArgs),
    /// Print a valid access token, refreshing it when needed.
    ///
    /// Prints just the token, for scripts: curl -H "Authorization: Bearer $(berth token)" …
    Token,
    /// Show who the stored credentials sign in as.
    Whoami(whoami::WhoamiArgs),
    /// Revoke the stored tokens at the server and delete them locally.
    Logout,
    /// Manage the server's token signing keys (platform admins).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Create, inspect, pause, resume, restart, delete and connect to PostgreSQL instances.
    #[command(subcommand, visible_alias = "instance")]
    Instances(instances::InstancesCommand),
    /// List, add and remove the networks an instance accepts connections from.
    #[command(subcommand)]
    Firewall(firewall::FirewallCommand),
    /// Show and set an instance's PostgreSQL parameters.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// List, create and delete the users inside an instance; reset their passwords.
    #[command(subcommand, name = "db-users", visible_alias = "db-user")]
    DbUsers(db_users::DbUsersCommand),
    /// List, create and delete the databases inside an instance.
    #[command(subcommand, visible_alias = "database")]
    Databases(db_users::DatabasesCommand),
    /// Add, list, test and remove the external databases instances are imported from.
    #[command(subcommand, name = "data-sources", visible_alias = "data-source")]
    DataSources(data_sources::DataSourcesCommand),
    /// List, take and delete backups; set the backup policy.
    #[command(subcommand, visible_alias = "backup")]
    Backups(backups::BackupsCommand),
    /// Follow the jobs that carry out instance operations.
    #[command(subcommand, visible_alias = "job")]
    Jobs(jobs::JobsCommand),
    /// Run one operation (restart, pause, resume, backup) over many instances.
    #[command(subcommand, visible_alias = "workflow")]
    Workflows(workflows::WorkflowsCommand),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        match command {
            Command::Login(args) => login::run(args).await,
            Command::Token => token::run().await,
            Command::Whoami(args) => whoami::run(args).await,
            Command::Logout => logout::run().await,
            Command::Keys(command) => keys::run(command).await,
            Command::Instances(command) => instances::run(command).await,
            Command::Jobs(command) => jobs::run(command).await,
            Command::Workflows(command) => workflows::run(command).await,
            Command::Backups(command) => backups::run(command).await,
            Command::Firewall(command) => firewall::run(command).await,
            Command::Config(command) => config::run(command).await,
            Command::DbUsers(command) => db_users::run_users(command).await,
            Command::Databases(command) => db_users::run_databases(command).await,
            Command::DataSources(command) => data_sources::run(command).await,
        }
    })
}

fn write_line(line: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(()),
    }
}
