//! `berth workflows run|list|get`: one operation (restart, pause, resume, backup) over many
//! instances named by paths (`/projects/<project>/instances/<instance>`, or a project with
//! `--recursive`), and where each target's job is.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_types::{CreateWorkflow, Discovery, PageParams, Workflow, WorkflowKind, WorkflowState};
use uuid::Uuid;

use super::api::{explain, Api};
use super::table::{self, fields, Format, Table};

#[derive(clap::Subcommand)]
pub enum WorkflowsCommand {
    /// Start a workflow: restart, pause, resume or backup on every instance the paths name.
    Run(RunArgs),
    /// List workflows, newest first.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one workflow and each of its targets.
    Get(GetArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// restart, pause, resume or backup.
    workflow: String,
    /// /projects/<project>/instances/<instance>, or /projects/<project> with --recursive.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Only the targets in this region.
    #[arg(long)]
    site: Option<String>,
    /// Expand project paths into all their instances.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// For backup: full (default), diff or incr.
    #[arg(long = "type", value_name = "TYPE")]
    backup_type: Option<String>,
    /// For import: the data source's ID (see `berth data-sources list -o json`).
    #[arg(long, value_name = "ID")]
    data_source: Option<uuid::Uuid>,
    /// Wait until every target's job has ended; fail unless the workflow succeeded.
    #[arg(long)]
    wait: bool,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// How many workflows to show (at most 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
    limit: u16,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct GetArgs {
    id: Uuid,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub async fn run(command: WorkflowsCommand) -> anyhow::Result<()> {
    match command {
        WorkflowsCommand::Run(args) => run_workflow(args).await,
        WorkflowsCommand::List(args) => list(args).await,
        WorkflowsCommand::Get(args) => get(args).await,
    }
}

fn show(w: &Workflow, output: Format) -> anyhow::Result<()> {
    match output {
        Format::Json => out!("{}", table::json(&serde_json::to_value(w)?)?),
        Format::Text => {
            out!(
                "{}",
                fields(&[
                    ("Workflow", Some(format!("{} ({})", w.id, w.workflow))),
                    ("State", Some(w.state.to_string())),
                    ("Site", w.site.clone()),
                    ("Created", Some(w.created_at.to_rfc3339())),
                ])
            )?;
            let mut t = Table::new(&["PATH", "STATE", "JOB", "ERROR"]);
            for target in &w.targets {
                t.row(vec![
                    target.path.clone(),
                    target.state.to_string(),
                    target.job_id.map(|j| j.to_string()).unwrap_or_default(),
                    target.error.clone().unwrap_or_default(),
                ]);
            }
            out!("{}", t.render())
        }
    }
}

async fn run_workflow(args: RunArgs) -> anyhow::Result<()> {
    let workflow: WorkflowKind = args.workflow.parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown workflow {:?}; choose restart, pause, resume, backup or import",
            args.workflow
        )
    })?;
    let mut fields = BTreeMap::new();
    if let Some(t) = args.backup_type {
        fields.insert("type".to_owned(), serde_json::Value::String(t));
    }
    if let Some(ds) = args.data_source {
        fields.insert(
            "data_source_id".to_owned(),
            serde_json::Value::String(ds.to_string()),
        );
    }
    let req = CreateWorkflow {
        workflow,
        paths: args.paths,
        site: args.site,
        discovery: args.recursive.then_some(Discovery::Recursive),
        fields,
    };
    let berth = Api::connect().await?.berth().await?;
    let mut w = berth.create_workflow(&req).await.map_err(explain)?;
    if args.wait {
        while w.state == WorkflowState::Running {
            tokio::time::sleep(Duration::from_secs(1)).await;
            w = berth.get_workflow(w.id).await.map_err(explain)?;
        }
    }
    show(&w, args.output)?;
    if args.wait && w.state != WorkflowState::Succeeded {
        anyhow::bail!("the workflow ended {}", w.state);
    }
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let berth = Api::connect().await?.berth().await?;
    let page = berth
        .list_workflows(PageParams {
            limit: Some(i64::from(args.limit)),
            offset: None,
        })
        .await
        .map_err(explain)?;
    match args.output {
        Format::Json => out!("{}", table::json(&serde_json::to_value(&page)?)?),
        Format::Text if page.results.is_empty() => out!("No workflows."),
        Format::Text => {
            let mut t = Table::new(&["ID", "WORKFLOW", "STATE", "TARGETS", "CREATED"]);
            for w in &page.results {
                t.row(vec![
                    w.id.to_string(),
                    w.workflow.to_string(),
                    w.state.to_string(),
                    w.targets.len().to_string(),
                    w.created_at.to_rfc3339(),
                ]);
            }
            out!("{}", t.render())
        }
    }
}

async fn get(args: GetArgs) -> anyhow::Result<()> {
    let berth = Api::connect().await?.berth().await?;
    let w = berth.get_workflow(args.id).await.map_err(explain)?;
    show(&w, args.output)
}
