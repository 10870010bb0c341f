//! `berth config get|set`: an instance's PostgreSQL parameters.

use std::collections::BTreeMap;

use anyhow::bail;
use berth_types::{ApplyMode, UpdateConfig};

use super::api::{explain, Api};
use super::firewall::{applied, instance_id, Instance};
use super::table::{self, Format, Table};

#[derive(clap::Subcommand)]
pub enum ConfigCommand {
    /// Show the parameters that can be set (only those set, unless --all), or one of them.
    Get(GetArgs),
    /// Set parameters: berth config set NAME work_mem=8MB statement_timeout=30s.
    Set(SetArgs),
}

#[derive(clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    instance: Instance,
    /// Only this parameter.
    parameter: Option<String>,
    /// Every parameter, not only those set or waiting for a restart.
    #[arg(short = 'a', long)]
    all: bool,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct SetArgs {
    #[command(flatten)]
    instance: Instance,
    /// NAME=VALUE pairs (an empty value resets the parameter to its default).
    #[arg(required = true)]
    settings: Vec<String>,
    /// Restart the server now if a changed parameter needs it (otherwise they wait for the
    /// next restart).
    #[arg(long)]
    restart: bool,
}

pub async fn run(command: ConfigCommand) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Get(args) => get(args).await,
        ConfigCommand::Set(args) => set(args).await,
    }
}

async fn get(args: GetArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    let page = api.berth().await?.get_config(id).await.map_err(explain)?;
    let shown: Vec<_> = page
        .results
        .into_iter()
        .filter(|p| match &args.parameter {
            Some(name) => &p.name == name,
            None => args.all || p.source == "user" || p.pending_restart,
        })
        .collect();
    if let (Some(name), true) = (&args.parameter, shown.is_empty()) {
        bail!("no settable parameter {name:?}; see `berth config get --all`");
    }
    if args.output == Format::Json {
        return out!("{}", table::json(&serde_json::to_value(&shown)?)?);
    }
    if shown.is_empty() {
        return out!("Every parameter has its default; --all shows them.");
    }
    let mut t = Table::new(&["NAME", "VALUE", "DEFAULT", "RUNNING", "RANGE", "RESTART"]);
    for p in &shown {
        let range = match (&p.min, &p.max, &p.allowed_values) {
            (Some(min), Some(max), _) => format!("{min} … {max}"),
            (_, _, Some(values)) => values.join("|"),
            _ => String::new(),
        };
        let running = match (&p.current, p.pending_restart) {
            (Some(c), true) => format!("{c} (restart pending)"),
            (Some(c), false) => c.clone(),
            (None, _) => "-".into(),
        };
        t.row(vec![
            p.name.clone(),
            p.value.clone(),
            p.default.clone(),
            running,
            range,
            if p.restart_required { "yes" } else { "no" }.into(),
        ]);
    }
    out!("{}", t.render())
}

async fn set(args: SetArgs) -> anyhow::Result<()> {
    let mut parameters = BTreeMap::new();
    for s in &args.settings {
        let Some((name, value)) = s.split_once('=') else {
            bail!("{s:?} is not NAME=VALUE");
        };
        let value = match value.trim() {
            "" => serde_json::Value::Null,
            v => serde_json::Value::String(v.to_owned()),
        };
        parameters.insert(name.trim().to_owned(), value);
    }
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    let change = api
        .berth()
        .await?
        .update_config(
            id,
            &UpdateConfig {
                parameters,
                apply: if args.restart {
                    ApplyMode::Restart
                } else {
                    ApplyMode::Reload
                },
            },
        )
        .await
        .map_err(explain)?;
    applied(&api, change.job_id).await?;
    for (name, value) in &change.changed {
        out!("{name} = {}", value.as_deref().unwrap_or("(default)"))?;
    }
    if change.pending_restart.is_empty() {
        out!("Applied.")
    } else {
        out!(
            "Applied; {} take effect at the next restart (berth instances restart, or --restart).",
            change.pending_restart.join(", ")
        )
    }
}
