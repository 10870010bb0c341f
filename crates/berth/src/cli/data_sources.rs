//! `berth data-sources list|add|test|remove`: the external PostgreSQL databases instances are
//! imported from (`berth instances create NAME --from-data-source SOURCE`). The password is
//! read from standard input (or `BERTH_DATA_SOURCE_PASSWORD`), never from the command line,
//! where every user of the host could read it.

use std::io::BufRead;

use anyhow::{bail, Context};
use berth_types::{CreateDataSource, DataSource, DataSourceQuery, SslMode};
use uuid::Uuid;

use super::api::{explain, Api};
use super::instances::{default_project, project_id, projects};
use super::table::{self, Format, Table};

const PASSWORD_ENV: &str = "BERTH_DATA_SOURCE_PASSWORD";

#[derive(clap::Subcommand)]
pub enum DataSourcesCommand {
    /// List the data sources of your projects.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Add a data source; the password is read from standard input (or
    /// $BERTH_DATA_SOURCE_PASSWORD).
    Add(AddArgs),
    /// Connect to a data source from the server and show its version and size, or what failed.
    Test(NameArgs),
    /// Remove a data source (instances imported from it stay).
    #[command(visible_alias = "rm")]
    Remove(NameArgs),
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this project's (ID or name).
    #[arg(short = 'p', long)]
    project: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// 1–63 letters, digits, `-` and `_`; unique in the project.
    name: String,
    /// Project ID or name [default: your only project].
    #[arg(short = 'p', long)]
    project: Option<String>,
    #[arg(long)]
    host: String,
    #[arg(long, default_value_t = 5432)]
    port: u16,
    /// The database to copy.
    #[arg(long)]
    database: String,
    #[arg(long = "user")]
    username: String,
    /// disable, prefer, require, verify-ca or verify-full.
    #[arg(long, default_value = "verify-full")]
    sslmode: String,
    /// A PEM file of the CA the server's certificate must chain to.
    #[arg(long)]
    ca_file: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
pub struct NameArgs {
    /// Data source name or ID.
    data_source: String,
    /// The project to look the name up in (ID or name).
    #[arg(short = 'p', long)]
    project: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub async fn run(command: DataSourcesCommand) -> anyhow::Result<()> {
    match command {
        DataSourcesCommand::List(args) => list(args).await,
        DataSourcesCommand::Add(args) => add(args).await,
        DataSourcesCommand::Test(args) => test(args).await,
        DataSourcesCommand::Remove(args) => remove(args).await,
    }
}

async fn all(api: &Api, project: Option<Uuid>) -> anyhow::Result<Vec<DataSource>> {
    let berth = api.berth().await?;
    let mut found = Vec::new();
    let mut q = DataSourceQuery {
        project_id: project,
        limit: Some(berth_client::PAGE_LIMIT),
        offset: None,
    };
    loop {
        let page = berth.list_data_sources(&q).await.map_err(explain)?;
        let n = page.results.len() as i64;
        found.extend(page.results);
        if page.next.is_none() || n == 0 {
            return Ok(found);
        }
        q.offset = Some(q.offset.unwrap_or(0) + n);
    }
}

/// The data source `arg` names (an ID, or a name in `project`).
pub(super) async fn resolve(api: &Api, arg: &str, project: Uuid) -> anyhow::Result<DataSource> {
    if let Ok(id) = Uuid::parse_str(arg) {
        return api
            .berth()
            .await?
            .get_data_source(id)
            .await
            .map_err(explain);
    }
    let found = all(api, Some(project)).await?;
    match found.into_iter().find(|d| d.name == arg) {
        Some(d) => Ok(d),
        None => bail!("no data source {arg:?} in the project; see `berth data-sources list`"),
    }
}

async fn named(api: &Api, args: &NameArgs) -> anyhow::Result<DataSource> {
    let project = match &args.project {
        Some(p) => project_id(api, p).await?,
        None if Uuid::parse_str(&args.data_source).is_ok() => Uuid::nil(),
        None => default_project(&projects(api).await?)?.id,
    };
    resolve(api, &args.data_source, project).await
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let project = match &args.project {
        Some(p) => Some(project_id(&api, p).await?),
        None => None,
    };
    let found = all(&api, project).await?;
    if args.output == Format::Json {
        return out!("{}", table::json(&serde_json::to_value(&found)?)?);
    }
    if found.is_empty() {
        return out!("No data sources.");
    }
    let mut t = Table::new(&["NAME", "SERVER", "DATABASE", "USER", "SSLMODE", "LAST TEST"]);
    for d in &found {
        t.row(vec![
            d.name.clone(),
            format!("{}:{}", d.host, d.port),
            d.database.clone(),
            d.username.clone(),
            d.sslmode.as_str().to_owned(),
            match &d.last_test {
                None => "never".into(),
                Some(t) if t.ok => "ok".into(),
                Some(t) => format!("failed: {}", t.error.as_deref().unwrap_or("?")),
            },
        ]);
    }
    out!("{}", t.render())
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password: pipe it on standard input or set {PASSWORD_ENV}");
    }
    Ok(password)
}

async fn add(args: AddArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let project = match &args.project {
        Some(p) => project_id(&api, p).await?,
        None => default_project(&projects(&api).await?)?.id,
    };
    let Some(sslmode) = SslMode::parse(&args.sslmode) else {
        bail!("--sslmode must be disable, prefer, require, verify-ca or verify-full");
    };
    let ca_certificate = match &args.ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let req = CreateDataSource {
        name: args.name.clone(),
        project_id: project,
        host: args.host.clone(),
        port: Some(args.port),
        database: args.database.clone(),
        username: args.username.clone(),
        password: read_password()?,
        sslmode: Some(sslmode),
        ca_certificate,
    };
    let ds = api
        .berth()
        .await?
        .create_data_source(&req)
        .await
        .map_err(explain)?;
    out!(
        "Added data source {} ({}); try it with `berth data-sources test {}`.",
        ds.name,
        ds.id,
        ds.name
    )
}

async fn test(args: NameArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let ds = named(&api, &args).await?;
    let t = api
        .berth()
        .await?
        .test_data_source(ds.id)
        .await
        .map_err(explain)?;
    if args.output == Format::Json {
        return out!("{}", table::json(&serde_json::to_value(&t)?)?);
    }
    if !t.ok {
        bail!(
            "{} failed at {}: {}",
            ds.name,
            t.failed_step.as_deref().unwrap_or("?"),
            t.error.as_deref().unwrap_or("no reason given")
        );
    }
    out!(
        "{}: PostgreSQL {}, {} MB, {} ({} ms)",
        ds.name,
        t.server_version.as_deref().unwrap_or("?"),
        t.size_bytes.unwrap_or(0) / 1_000_000,
        if t.tls == Some(true) { "TLS" } else { "no TLS" },
        t.elapsed_ms
    )
}

async fn remove(args: NameArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let ds = named(&api, &args).await?;
    api.berth()
        .await?
        .delete_data_source(ds.id)
        .await
        .map_err(explain)?;
    out!("Removed data source {}.", ds.name)
}
