//! `berth instances …`: create, list, show, pause, resume, restart, update, delete and connect
//! to PostgreSQL instances. Instances are named by ID or by name; a name is looked up with
//! `GET /api/v1/instances?name=` and `--project` settles a name used in several projects.
//! Answers are read as `berth-types` values through `berth-client`; unknown fields are ignored and
//! a status this client does not know is shown as the server named it and waited through, so
//! that it keeps working against a newer server. `-o json` prints what the server said.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use berth_client::{Action, Raw, Updated};
use berth_types::{
    Accepted, CreateInstance, Instance, InstanceQuery, InstanceStatus, Project, Region,
    UpdateInstance,
};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::api::{explain, Api};
use super::table::{self, fields, Format, Table};
use super::wait::{self, Goal, Observation, Outcome};

#[derive(clap::Subcommand)]
pub enum InstancesCommand {
    /// Create a PostgreSQL instance and print its connection URL and password (shown once).
    Create(CreateArgs),
    /// List the instances you can see.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one instance: status, connection URL, sizes and current job.
    Get(GetArgs),
    /// Stop an instance, keeping its data; it uses no memory while paused.
    Pause(ActionArgs),
    /// Start a paused (or failed) instance again.
    Resume(ActionArgs),
    /// Restart an instance's PostgreSQL server.
    Restart(ActionArgs),
    /// Rename or resize an instance, or turn its deletion protection on or off.
    Update(UpdateArgs),
    /// Delete an instance and all its data.
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
    /// Open psql on an instance, verifying its certificate (sslmode=verify-full) against
    /// Berth's CA.
    ///
    /// psql asks for the password, or takes it from PGPASSWORD or ~/.pgpass. Arguments after
    /// `--` go to psql: berth instances connect db1 -- -c 'select 1'
    Connect(ConnectArgs),
    /// List the regions instances can run in, with their versions and sizes.
    Regions(OutputArg),
    /// Create a new instance from another's backups: to a moment (--at), a backup (--backup),
    /// or its latest state. The source may be deleted (give its ID) while its backups are kept.
    Restore(RestoreArgs),
    /// Create a new instance with another's latest state (a restore to now).
    Clone(CloneArgs),
    /// Show recent statistics: connections, transactions, rows, cache hits, size, WAL, lag.
    Stats(super::monitoring::StatsArgs),
    /// Print the instance's PostgreSQL log (--follow to keep printing new entries).
    Logs(super::monitoring::LogsArgs),
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The source instance's name or ID (the ID of a deleted one).
    source: String,
    /// The new instance's name.
    new_name: String,
    /// Restore to this moment (RFC 3339): every transaction committed by then, none after.
    #[arg(long, value_name = "TIME", conflicts_with = "backup")]
    at: Option<DateTime<Utc>>,
    /// Restore this backup (its ID, from `berth backups list`).
    #[arg(long, value_name = "ID")]
    backup: Option<Uuid>,
    #[command(flatten)]
    shape: RestoreShape,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(clap::Args)]
pub struct CloneArgs {
    /// The source instance's name or ID (the ID of a deleted one).
    source: String,
    /// The new instance's name.
    new_name: String,
    #[command(flatten)]
    shape: RestoreShape,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    output: OutputArg,
}

/// Where the new instance goes and its sizes [default: the source's].
#[derive(clap::Args)]
pub struct RestoreShape {
    /// The project of the new instance and of the source's name (ID or name).
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// Memory size [default: the source's].
    #[arg(long)]
    memory: Option<String>,
    /// Storage size [default: the source's].
    #[arg(long)]
    storage: Option<String>,
    /// PostgreSQL major version, which must be the source's [default: the source's, or for a
    /// deleted source the newest offered].
    #[arg(long)]
    version: Option<String>,
}

#[derive(clap::Args)]
pub struct OutputArg {
    /// Output format: text for people, json for scripts (the API's JSON).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(clap::Args)]
pub struct WaitArgs {
    /// Wait until the operation has finished, showing each status change.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits, e.g. 90s or 5m.
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = table::parse_duration)]
    pub timeout: Duration,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// 1–63 letters, digits, `-` and `_`; unique in the project.
    name: String,
    /// Project ID or name [default: your only project].
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// PostgreSQL major version [default: the newest the region offers].
    #[arg(long)]
    version: Option<String>,
    /// Region [default: the server's only region].
    #[arg(long)]
    region: Option<String>,
    /// Memory size, e.g. 256MB or 1GB [default: the region's smallest].
    #[arg(long)]
    memory: Option<String>,
    /// Storage size, e.g. 10GB [default: the region's smallest].
    #[arg(long)]
    storage: Option<String>,
    /// Import a copy of this data source's database (its name or ID in the project; see
    /// `berth data-sources list`).
    #[arg(long, value_name = "DATA_SOURCE")]
    from_data_source: Option<String>,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only this project's instances (ID or name).
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// Only instances with this status (running, paused, failed, …).
    #[arg(long)]
    status: Option<String>,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(clap::Args)]
pub struct GetArgs {
    /// Instance name or ID.
    instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    project: Option<String>,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(clap::Args)]
pub struct ActionArgs {
    /// Instance name or ID.
    instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    project: Option<String>,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// Instance name or ID.
    instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// A new name.
    #[arg(long = "name", value_name = "NAME")]
    new_name: Option<String>,
    /// A new memory size; the instance restarts with the new settings.
    #[arg(long)]
    memory: Option<String>,
    /// A larger storage size (storage only grows; no restart).
    #[arg(long)]
    storage: Option<String>,
    /// Refuse deletes while on.
    #[arg(long, value_name = "on|off", value_parser = parse_on_off)]
    deletion_protection: Option<bool>,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    /// Instance name or ID.
    instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// Do not ask for confirmation (needed when standard input is not a terminal).
    #[arg(short = 'y', long)]
    yes: bool,
    #[command(flatten)]
    wait: WaitArgs,
    #[command(flatten)]
    output: OutputArg,
}

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// Instance name or ID.
    instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// The psql program to run.
    #[arg(long, env = "BERTH_PSQL", default_value = "psql")]
    psql: PathBuf,
    /// Arguments for psql, after `--`.
    #[arg(last = true, value_name = "PSQL_ARGS")]
    psql_args: Vec<String>,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(format!("{s:?}: use on or off")),
    }
}

/// An instance: what the server said (to print) and what this client reads of it.
pub type Found = Raw<Instance>;

/// The instance's status as the server named it (also one this client does not know).
pub fn status_text(found: &Found) -> String {
    named(&found.json, "status", found.value.status.as_str())
}

/// A string field of `json` as the server sent it, else `fallback`.
fn named(json: &Value, key: &str, fallback: &str) -> String {
    json.get(key)
        .and_then(Value::as_str)
        .unwrap_or(fallback)
        .to_owned()
}

pub async fn run(command: InstancesCommand) -> anyhow::Result<()> {
    match command {
        InstancesCommand::Create(args) => create(args).await,
        InstancesCommand::List(args) => list(args).await,
        InstancesCommand::Get(args) => get(args).await,
        InstancesCommand::Pause(args) => action(Action::Pause, args).await,
        InstancesCommand::Resume(args) => action(Action::Resume, args).await,
        InstancesCommand::Restart(args) => action(Action::Restart, args).await,
        InstancesCommand::Update(args) => update(args).await,
        InstancesCommand::Delete(args) => delete(args).await,
        InstancesCommand::Connect(args) => connect(args).await,
        InstancesCommand::Regions(args) => regions(args).await,
        InstancesCommand::Stats(args) => super::monitoring::stats(args).await,
        InstancesCommand::Logs(args) => super::monitoring::logs(args).await,
        InstancesCommand::Restore(args) => {
            let source = berth_types::InstanceSource {
                backup_id: args.backup,
                point_in_time: args.at,
                ..Default::default()
            };
            restore(
                &args.source,
                &args.new_name,
                source,
                &args.shape,
                &args.wait,
                &args.output,
            )
            .await
        }
        InstancesCommand::Clone(args) => {
            let source = berth_types::InstanceSource::default();
            restore(
                &args.source,
                &args.new_name,
                source,
                &args.shape,
                &args.wait,
                &args.output,
            )
            .await
        }
    }
}

/// A create with a source: the new instance takes the source's project, region and sizes
/// unless told otherwise.
async fn restore(
    source_arg: &str,
    new_name: &str,
    mut source: berth_types::InstanceSource,
    shape: &RestoreShape,
    wait: &WaitArgs,
    output: &OutputArg,
) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let live = match resolve(&api, source_arg, shape.project.as_deref()).await {
        Ok(found) => Some(found.value),
        Err(e) => match Uuid::parse_str(source_arg) {
            // A deleted source: only its ID names it.
            Ok(_) => None,
            Err(_) => return Err(e),
        },
    };
    source.instance_id = Some(match &live {
        Some(i) => i.id,
        None => Uuid::parse_str(source_arg)?,
    });
    let (project_id, project_label) = match (&shape.project, &live) {
        (Some(p), _) => (project_id(&api, p).await?, p.clone()),
        (None, Some(i)) => (i.project_id, project_label(&api, i.project_id).await),
        (None, None) => {
            let all = projects(&api).await?;
            let p = default_project(&all)?;
            (p.id, p.name.clone())
        }
    };
    let (region, version, memory, storage) = match &live {
        Some(i) => (
            i.region.clone(),
            shape.version.clone().unwrap_or_else(|| i.version.clone()),
            shape.memory.clone().unwrap_or_else(|| i.memory.clone()),
            shape.storage.clone().or_else(|| Some(i.storage.clone())),
        ),
        None => {
            let (r, v, m) = choose_shape(
                &fetch_regions(&api).await?,
                None,
                shape.version.as_deref(),
                shape.memory.as_deref(),
            )?;
            (r, v, m, shape.storage.clone())
        }
    };
    let body = CreateInstance {
        name: new_name.to_owned(),
        project_id,
        engine: "postgres".into(),
        version,
        region,
        memory,
        storage,
        source: Some(source),
        firewall_rules: None,
    };
    submit(&api, body, &project_label, wait, output.output).await
}

// ---------------------------------------------------------------------------------------------
// Projects and names

pub async fn projects(api: &Api) -> anyhow::Result<Vec<Project>> {
    api.berth()
        .await?
        .list_all_projects()
        .await
        .map_err(explain)
        .context("listing your projects")
}

fn project_list(projects: &[&Project]) -> String {
    projects
        .iter()
        .map(|p| format!("{} ({})", p.name, p.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The project `arg` names, by ID or name (exactly, else ignoring case if that is unique).
pub(super) fn find_project<'a>(arg: &str, projects: &'a [Project]) -> anyhow::Result<&'a Project> {
    if let Some(p) = projects
        .iter()
        .find(|p| p.id.to_string() == arg || p.name == arg)
    {
        return Ok(p);
    }
    let loose: Vec<&Project> = projects
        .iter()
        .filter(|p| p.name.eq_ignore_ascii_case(arg))
        .collect();
    match loose[..] {
        [p] => Ok(p),
        _ if projects.is_empty() => bail!("no project {arg:?}: you are in no project"),
        _ => bail!(
            "no project {arg:?}; yours are: {}",
            project_list(&projects.iter().collect::<Vec<_>>())
        ),
    }
}

/// The project to create in when none is named: the only one the caller is a member of.
pub(super) fn default_project(projects: &[Project]) -> anyhow::Result<&Project> {
    let member: Vec<&Project> = projects.iter().filter(|p| p.role.is_some()).collect();
    let candidates = if member.is_empty() {
        projects.iter().collect()
    } else {
        member
    };
    match candidates[..] {
        [p] => Ok(p),
        [] => bail!(
            "you are in no project; create one first (POST /api/v1/projects) or name one \
             with --project"
        ),
        _ => bail!(
            "you are in {} projects; choose one with --project: {}",
            candidates.len(),
            project_list(&candidates)
        ),
    }
}

/// A project ID for `arg` (an ID or a name).
pub(super) async fn project_id(api: &Api, arg: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(arg) {
        return Ok(id);
    }
    Ok(find_project(arg, &projects(api).await?)?.id)
}

enum Pick {
    None,
    One(Box<Found>),
    /// The name is used in several projects (their IDs).
    Many(Vec<Uuid>),
}

fn pick(mut matches: Vec<Found>) -> Pick {
    match matches.len() {
        0 => Pick::None,
        1 => Pick::One(Box::new(matches.remove(0))),
        _ => {
            let mut ids: Vec<Uuid> = matches.into_iter().map(|f| f.value.project_id).collect();
            ids.sort();
            ids.dedup();
            Pick::Many(ids)
        }
    }
}

fn ambiguous(name: &str, project_ids: &[Uuid], projects: &[Project]) -> String {
    let described: Vec<String> = project_ids
        .iter()
        .map(|id| match projects.iter().find(|p| &p.id == id) {
            Some(p) => format!("{} ({id})", p.name),
            None => id.to_string(),
        })
        .collect();
    format!(
        "several instances are named {name:?}, in projects {}; choose one with --project or \
         give the instance ID",
        described.join(", ")
    )
}

/// The instance `arg` names: an ID, or a name (in `project` when given).
pub async fn resolve(api: &Api, arg: &str, project: Option<&str>) -> anyhow::Result<Found> {
    if let Ok(id) = Uuid::parse_str(arg) {
        match api.berth().await?.get_instance_raw(id).await {
            Ok(found) => return Ok(found),
            // Names may look like IDs too; try it as a name before giving up.
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => {}
            Err(e) => return Err(explain(e)),
        }
    }
    let mut query = InstanceQuery {
        name: Some(arg.to_owned()),
        ..InstanceQuery::default()
    };
    if let Some(p) = project {
        query.project_id = Some(project_id(api, p).await?);
    }
    let matches = api
        .berth()
        .await?
        .list_all_instances_raw(&query)
        .await
        .map_err(explain)?;
    match pick(matches) {
        Pick::One(found) => Ok(*found),
        Pick::None => match project {
            Some(p) => bail!("no instance {arg:?} in project {p:?}"),
            None => bail!("no instance {arg:?}; see `berth instances list`"),
        },
        Pick::Many(ids) => {
            let projects = projects(api).await.unwrap_or_default();
            bail!(ambiguous(arg, &ids, &projects))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Waiting

/// Polls the instance until it reaches one of `targets`, reporting status changes on standard
/// error with the time since `started`.
async fn wait_instance(
    api: &Api,
    id: Uuid,
    targets: &[&str],
    timeout: Duration,
    started: Instant,
) -> anyhow::Result<Outcome> {
    wait::wait_for(
        Goal::instance(targets),
        timeout,
        || started.elapsed(),
        || async move {
            // A fresh token for every poll: a wait can outlive one.
            match api.berth().await?.get_instance_raw(id).await {
                Ok(found) => Ok(Observation::from_instance(found.json)),
                Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(Observation::gone()),
                Err(e) => Err(explain(e)),
            }
        },
        tokio::time::sleep,
        report,
    )
    .await
}

/// Polls a job until it has finished (for changes that leave the status as it was).
async fn wait_job(
    api: &Api,
    job_id: Uuid,
    timeout: Duration,
    started: Instant,
) -> anyhow::Result<Outcome> {
    wait::wait_for(
        Goal::job(),
        timeout,
        || started.elapsed(),
        || async move {
            let job = api.berth().await?.get_job_raw(job_id).await;
            job.map(|j| Observation::from_job(j.json)).map_err(explain)
        },
        tokio::time::sleep,
        report,
    )
    .await
}

fn report(at: Duration, seen: &Observation) {
    let message = match &seen.message {
        Some(m) => format!(" ({m})"),
        None => String::new(),
    };
    eprintln!("  {:>7}  {}{message}", table::elapsed(at), seen.status);
}

/// The final observation when the wait went well, else an error saying what happened.
/// `check` is the command that shows how it goes on.
fn settled(
    name: &str,
    wanted: &str,
    check: &str,
    outcome: Outcome,
    timeout: Duration,
) -> anyhow::Result<Observation> {
    match outcome {
        Outcome::Reached(o) => Ok(o),
        Outcome::Failed(o) => bail!(
            "{name} failed: {}",
            o.message.as_deref().unwrap_or("no reason given")
        ),
        Outcome::Elsewhere(o) if o.status == InstanceStatus::Deleted.as_str() => {
            bail!("{name} was deleted meanwhile")
        }
        Outcome::Elsewhere(o) => bail!(
            "{name} is {} instead of {wanted}{}",
            o.status,
            o.message.map(|m| format!(": {m}")).unwrap_or_default()
        ),
        Outcome::TimedOut(last) => bail!(
            "gave up after {} waiting for {name} to be {wanted}; it is still {} (see `{check}`, \
             or wait longer with --timeout)",
            table::elapsed(timeout),
            last.map(|o| o.status).unwrap_or_else(|| "unknown".into())
        ),
    }
}

/// `base` (an object) with the fields of `top` written over it.
fn overlay(mut base: Value, top: &Value) -> Value {
    if let (Some(b), Some(t)) = (base.as_object_mut(), top.as_object()) {
        for (k, v) in t {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

// ---------------------------------------------------------------------------------------------
// create

/// Region, version and memory for a create: what was given, else the defaults the server's
/// regions suggest (its only region, the newest version, the smallest memory size).
fn choose_shape(
    regions: &[Region],
    region: Option<&str>,
    version: Option<&str>,
    memory: Option<&str>,
) -> anyhow::Result<(String, String, String)> {
    let chosen = match region {
        Some(id) => match regions.iter().find(|r| r.id == id) {
            Some(r) => r,
            None if regions.is_empty() => {
                bail!("this server runs no instances (it has no regions)")
            }
            None => bail!(
                "no region {id:?}; the server offers {}",
                regions
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => match regions {
            [r] => r,
            [] => bail!("this server runs no instances (it has no regions)"),
            _ => bail!(
                "choose a region with --region: {}",
                regions
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
    };
    let version = match version {
        Some(v) => v.to_owned(),
        None => chosen
            .versions
            .first()
            .cloned()
            .with_context(|| format!("region {} offers no PostgreSQL version", chosen.id))?,
    };
    let memory = match memory {
        Some(m) => m.to_owned(),
        None => chosen
            .memory_sizes
            .first()
            .cloned()
            .with_context(|| format!("region {} offers no memory size", chosen.id))?,
    };
    Ok((chosen.id.clone(), version, memory))
}

async fn fetch_regions(api: &Api) -> anyhow::Result<Vec<Region>> {
    api.berth().await?.list_regions().await.map_err(explain)
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let (project_id, project_label) = match &args.project {
        Some(p) => (project_id(&api, p).await?, p.clone()),
        None => {
            let all = projects(&api).await?;
            let p = default_project(&all)?;
            (p.id, p.name.clone())
        }
    };
    let (region, version, memory) = match (&args.region, &args.version, &args.memory) {
        (Some(r), Some(v), Some(m)) => (r.clone(), v.clone(), m.clone()),
        _ => choose_shape(
            &fetch_regions(&api).await?,
            args.region.as_deref(),
            args.version.as_deref(),
            args.memory.as_deref(),
        )?,
    };
    let body = CreateInstance {
        name: args.name.clone(),
        project_id,
        engine: "postgres".into(),
        version,
        region,
        memory,
        storage: args.storage.clone(),
        source: match &args.from_data_source {
            Some(ds) => Some(berth_types::InstanceSource {
                data_source_id: Some(super::data_sources::resolve(&api, ds, project_id).await?.id),
                ..Default::default()
            }),
            None => None,
        },
        firewall_rules: None,
    };
    submit(&api, body, &project_label, &args.wait, args.output.output).await
}

/// Sends a create (a new instance, a restore or a clone), prints the password once, and with
/// `--wait` follows it until it runs.
async fn submit(
    api: &Api,
    body: CreateInstance,
    project_label: &str,
    wait: &WaitArgs,
    output: Format,
) -> anyhow::Result<()> {
    let args_name = body.name.clone();
    // The same key on every attempt: a retry after a lost answer gets the first instance back
    // rather than making a second.
    let key = Uuid::new_v4().to_string();
    let started = Instant::now();
    let mut attempt = 1u32;
    let created = loop {
        let answer = api
            .berth()
            .await?
            .create_instance_raw(&body, Some(&key))
            .await
            .map_err(explain);
        match answer {
            Ok(v) => break v,
            Err(e) if attempt < 3 && wait::is_transient(&e) => {
                eprintln!("berth: {e:#}; retrying (safe: the request has an idempotency key)");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                attempt += 1;
            }
            Err(e) => return Err(e.context(format!("creating instance {}", args_name))),
        }
    };
    let raw = created.json;
    let created = created.value;
    let password = created.password.as_str();
    let job_id = created.job_id.to_string();
    let name = created.instance.name.clone();

    if output == Format::Text {
        let i = &created.instance;
        out!(
            "Creating instance {name} in project {project_label} ({} {} in {}, {}).",
            i.engine,
            i.version,
            i.region,
            i.memory
        )?;
        out!(
            "{}",
            fields(&[
                ("ID", Some(i.id.to_string())),
                ("Status", Some(named(&raw, "status", i.status.as_str()))),
                ("Connection URL", i.connection_url.clone()),
                ("Username", Some(i.username.clone())),
                ("Password", Some(password.to_owned())),
                ("Job", Some(job_id)),
            ])
        )?;
        out!("The password is shown only this once; Berth cannot show it again. Save it now.")?;
    }
    if !wait.wait {
        match output {
            Format::Json => out!("{}", table::json(&raw)?)?,
            Format::Text => out!(
                "It is being created; follow it with `berth instances get {name}`, then \
                 `berth instances connect {name}`."
            )?,
        }
        return Ok(());
    }
    eprintln!("Waiting for {name} to be running…");
    let outcome = wait_instance(
        api,
        created.instance.id,
        &[InstanceStatus::Running.as_str()],
        wait.timeout,
        started,
    )
    .await;
    let last = match &outcome {
        Ok(Outcome::Reached(o) | Outcome::Failed(o) | Outcome::Elsewhere(o))
        | Ok(Outcome::TimedOut(Some(o))) => o.raw.clone(),
        _ => None,
    };
    if output == Format::Json {
        // Scripts need the password even when the wait did not go well.
        let merged = match &last {
            Some(latest) => overlay(raw.clone(), latest),
            None => raw.clone(),
        };
        out!("{}", table::json(&merged)?)?;
    }
    let check = format!("berth instances get {}", created.instance.id);
    settled(
        &name,
        InstanceStatus::Running.as_str(),
        &check,
        outcome?,
        wait.timeout,
    )?;
    if output == Format::Text {
        out!(
            "{name} is running (ready in {}). Connect with `berth instances connect {name}`.",
            table::elapsed(started.elapsed())
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// list, get, regions

fn when(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn list_table(instances: &[Found]) -> Table {
    let mut t = Table::new(&[
        "NAME",
        "STATUS",
        "MEMORY",
        "VERSION",
        "REGION",
        "CONNECTION URL",
        "ID",
    ]);
    for found in instances {
        let i = &found.value;
        t.row(vec![
            i.name.clone(),
            status_text(found),
            i.memory.clone(),
            i.version.clone(),
            i.region.clone(),
            i.connection_url.clone().unwrap_or_default(),
            i.id.to_string(),
        ]);
    }
    t
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let mut query = InstanceQuery {
        status: args.status.clone(),
        ..InstanceQuery::default()
    };
    if let Some(p) = &args.project {
        query.project_id = Some(project_id(&api, p).await?);
    }
    let instances = api
        .berth()
        .await?
        .list_all_instances_raw(&query)
        .await
        .map_err(explain)?;
    match args.output.output {
        Format::Json => {
            let items: Vec<&Value> = instances.iter().map(|f| &f.json).collect();
            let page =
                json!({"count": items.len(), "next": null, "previous": null, "results": items});
            out!("{}", table::json(&page)?)?;
        }
        Format::Text => {
            if instances.is_empty() {
                out!("No instances.")?;
            } else {
                out!("{}", list_table(&instances).render())?;
            }
        }
    }
    Ok(())
}

fn describe(found: &Found, project: &str) -> String {
    let i = &found.value;
    let job = i.current_job.as_ref().map(|j| {
        let state = named(&found.json["current_job"], "state", j.state.as_str());
        format!("{} ({}, {state})", j.id, j.job_type)
    });
    fields(&[
        ("Name", Some(i.name.clone())),
        ("ID", Some(i.id.to_string())),
        ("Project", Some(project.to_owned())),
        ("Status", Some(status_text(found))),
        ("Status message", i.status_message.clone()),
        ("Current job", job),
        ("Connection URL", i.connection_url.clone()),
        ("Username", Some(i.username.clone())),
        ("Database", Some(i.database.clone())),
        ("Engine", Some(format!("{} {}", i.engine, i.version))),
        ("Region", Some(i.region.clone())),
        ("Memory", Some(i.memory.clone())),
        ("Storage", Some(i.storage.clone())),
        (
            "Deletion protection",
            Some(if i.deletion_protection { "on" } else { "off" }.to_owned()),
        ),
        ("Created", when(Some(i.created_at))),
        ("Updated", when(Some(i.updated_at))),
    ])
}

/// "name (id)" when the project list can be read, else the ID.
async fn project_label(api: &Api, id: Uuid) -> String {
    match projects(api).await {
        Ok(ps) => match ps.iter().find(|p| p.id == id) {
            Some(p) => format!("{} ({id})", p.name),
            None => id.to_string(),
        },
        Err(_) => id.to_string(),
    }
}

async fn get(args: GetArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let found = resolve(&api, &args.instance, args.project.as_deref()).await?;
    match args.output.output {
        Format::Json => out!("{}", table::json(&found.json)?)?,
        Format::Text => {
            let project = project_label(&api, found.value.project_id).await;
            out!("{}", describe(&found, &project))?;
        }
    }
    Ok(())
}

async fn regions(args: OutputArg) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let answer = api
        .berth()
        .await?
        .list_regions_raw()
        .await
        .map_err(explain)?;
    match args.output {
        Format::Json => out!("{}", table::json(&answer.json)?)?,
        Format::Text => {
            let regions = answer.value;
            if regions.is_empty() {
                out!("No regions: this server runs no instances.")?;
                return Ok(());
            }
            let mut t = Table::new(&["REGION", "ENGINE", "VERSIONS", "MEMORY", "STORAGE"]);
            for r in regions {
                t.row(vec![
                    r.id,
                    r.engine,
                    r.versions.join(","),
                    r.memory_sizes.join(","),
                    r.storage_sizes.join(","),
                ]);
            }
            out!("{}", t.render())?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// pause, resume, restart, update, delete

/// Prints an accepted operation (`{instance, job_id}`), waiting for it when asked.
async fn follow(
    api: &Api,
    accepted: Raw<Accepted>,
    wait: &WaitArgs,
    output: Format,
    doing: &str,
    goal: Option<&[&str]>,
    started: Instant,
) -> anyhow::Result<()> {
    let Raw {
        json: accepted,
        value: Accepted { instance, job_id },
    } = accepted;
    let name = instance.name.clone();
    if output == Format::Text {
        out!("{doing} {name} (job {job_id}).")?;
    }
    if !wait.wait {
        match output {
            Format::Json => out!("{}", table::json(&accepted)?)?,
            Format::Text => out!("Follow it with `berth instances get {name}`.")?,
        }
        return Ok(());
    }
    let (outcome, wanted) = match goal {
        Some(targets) => (
            wait_instance(api, instance.id, targets, wait.timeout, started).await?,
            targets.join(" or "),
        ),
        None => (
            wait_job(api, job_id, wait.timeout, started).await?,
            "done".to_owned(),
        ),
    };
    let (what, check) = match goal {
        Some(_) => (name.clone(), format!("berth instances get {}", instance.id)),
        None => (format!("job {job_id}"), format!("berth jobs get {job_id}")),
    };
    let last = settled(&what, &wanted, &check, outcome, wait.timeout)?;
    let now = match (goal, last.raw) {
        (Some(_), raw) => raw,
        // A job finished: show the instance as it is now.
        (None, _) => Some(
            api.berth()
                .await?
                .get_instance_raw(instance.id)
                .await
                .map_err(explain)?
                .json,
        ),
    };
    match output {
        Format::Json => {
            let mut accepted = accepted;
            accepted["instance"] = now.unwrap_or(Value::Null);
            out!("{}", table::json(&accepted)?)?;
        }
        Format::Text => {
            let status = match &now {
                Some(raw) => raw
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_owned(),
                None => InstanceStatus::Deleted.to_string(),
            };
            out!(
                "{name} is {status} ({}).",
                table::elapsed(started.elapsed())
            )?;
        }
    }
    Ok(())
}

async fn action(action: Action, args: ActionArgs) -> anyhow::Result<()> {
    let (verb, doing, target) = match action {
        Action::Pause => ("pause", "Pausing", InstanceStatus::Paused),
        Action::Resume => ("resume", "Resuming", InstanceStatus::Running),
        Action::Restart => ("restart", "Restarting", InstanceStatus::Running),
    };
    let api = Api::connect().await?;
    let found = resolve(&api, &args.instance, args.project.as_deref()).await?;
    let started = Instant::now();
    let accepted = api
        .berth()
        .await?
        .instance_action_raw(found.value.id, action)
        .await
        .map_err(explain)
        .with_context(|| format!("cannot {verb} {}", found.value.name))?;
    follow(
        &api,
        accepted,
        &args.wait,
        args.output.output,
        doing,
        Some(&[target.as_str()]),
        started,
    )
    .await
}

async fn update(args: UpdateArgs) -> anyhow::Result<()> {
    let body = UpdateInstance {
        name: args.new_name.clone(),
        memory: args.memory.clone(),
        storage: args.storage.clone(),
        deletion_protection: args.deletion_protection,
    };
    if body.name.is_none()
        && body.memory.is_none()
        && body.storage.is_none()
        && body.deletion_protection.is_none()
    {
        bail!("nothing to change: give --name, --memory, --storage or --deletion-protection");
    }
    let api = Api::connect().await?;
    let found = resolve(&api, &args.instance, args.project.as_deref()).await?;
    let started = Instant::now();
    let answer = api
        .berth()
        .await?
        .update_instance_raw(found.value.id, &body)
        .await
        .map_err(explain)
        .with_context(|| format!("cannot update {}", found.value.name))?;
    // 202 {instance, job_id} for a resize, which runs as a job; else 200 with the instance.
    let updated = match answer.value {
        Updated::Started(accepted) => {
            let accepted = Raw {
                json: answer.json,
                value: accepted,
            };
            return follow(
                &api,
                accepted,
                &args.wait,
                args.output.output,
                "Resizing",
                None,
                started,
            )
            .await;
        }
        Updated::Done(instance) => Raw {
            json: answer.json,
            value: instance,
        },
    };
    match args.output.output {
        Format::Json => out!("{}", table::json(&updated.json)?)?,
        Format::Text => {
            let project = project_label(&api, updated.value.project_id).await;
            out!("Updated {}.", updated.value.name)?;
            out!("{}", describe(&updated, &project))?;
        }
    }
    Ok(())
}

#[derive(Debug, PartialEq)]
enum Confirm {
    Proceed,
    Ask,
    Refuse,
}

/// `--yes` goes ahead; otherwise ask a person, and never guess for a script.
fn confirmation(yes: bool, stdin_is_terminal: bool) -> Confirm {
    match (yes, stdin_is_terminal) {
        (true, _) => Confirm::Proceed,
        (false, true) => Confirm::Ask,
        (false, false) => Confirm::Refuse,
    }
}

fn ask(question: &str) -> anyhow::Result<bool> {
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{question} [y/N] ")?;
    stderr.flush()?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let found = resolve(&api, &args.instance, args.project.as_deref()).await?;
    let i = &found.value;
    if i.deletion_protection {
        bail!(
            "{} has deletion protection on; turn it off first with `berth instances update {} \
             --deletion-protection off`",
            i.name,
            i.id
        );
    }
    match confirmation(args.yes, std::io::stdin().is_terminal()) {
        Confirm::Proceed => {}
        Confirm::Refuse => bail!(
            "not deleting {}: standard input is not a terminal, so nobody can confirm; pass \
             --yes to delete without asking",
            i.name
        ),
        Confirm::Ask => {
            let project = project_label(&api, i.project_id).await;
            let question = format!(
                "Delete instance {} ({}) in project {project} and all its data? This cannot be \
                 undone.",
                i.name, i.id
            );
            if !ask(&question)? {
                bail!("cancelled; {} was not deleted", i.name);
            }
        }
    }
    let started = Instant::now();
    let accepted = api
        .berth()
        .await?
        .delete_instance_raw(i.id)
        .await
        .map_err(explain)
        .with_context(|| format!("cannot delete {}", i.name))?;
    follow(
        &api,
        accepted,
        &args.wait,
        args.output.output,
        "Deleting",
        Some(&[InstanceStatus::Deleted.as_str()]),
        started,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// connect

/// Where the CA certificate of `server` is kept: one file per server, so that several servers'
/// CAs do not overwrite each other.
fn ca_path(config_dir: &Path, server: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(server.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    config_dir.join(format!("ca-{hex}.pem"))
}

/// Downloads `GET /api/v1/ca.pem` to the config directory (0644), rewriting it only when the
/// server's CA changed.
async fn download_ca(api: &Api) -> anyhow::Result<PathBuf> {
    let pem = api
        .berth()
        .await?
        .ca_pem()
        .await
        .map_err(explain)
        .context("downloading Berth's CA certificate")?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        bail!("the server's /api/v1/ca.pem is not a PEM certificate");
    }
    let path = ca_path(api.config_dir(), &api.server());
    if std::fs::read(&path).ok().as_deref() == Some(&pem[..]) {
        return Ok(path);
    }
    write_public(&path, &pem).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Writes a world-readable file atomically (temporary file and rename).
fn write_public(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("ca.pem"),
        std::process::id()
    ));
    let result = (|| {
        std::fs::write(&tmp, bytes)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Percent-encodes a libpq URI parameter value (libpq decodes `%XX` but not `+`).
fn uri_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The connection URL with `sslmode=verify-full` and `sslrootcert=<ca>`, replacing any
/// `sslmode`/`sslrootcert` it had.
fn psql_url(connection_url: &str, ca: &Path) -> String {
    let (base, query) = match connection_url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (connection_url, ""),
    };
    let mut params: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = p.split('=').next().unwrap_or("");
            key != "sslmode" && key != "sslrootcert"
        })
        .map(str::to_owned)
        .collect();
    params.push("sslmode=verify-full".into());
    params.push(format!("sslrootcert={}", uri_encode(&ca.to_string_lossy())));
    format!("{base}?{}", params.join("&"))
}

async fn connect(args: ConnectArgs) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;

    let api = Api::connect().await?;
    let found = resolve(&api, &args.instance, args.project.as_deref()).await?;
    let i = &found.value;
    let status = status_text(&found);
    match i.status {
        InstanceStatus::Running => {}
        InstanceStatus::Paused => bail!(
            "{} is paused; resume it first with `berth instances resume {} --wait`",
            i.name,
            i.name
        ),
        InstanceStatus::Failed => bail!(
            "{} has failed: {}",
            i.name,
            i.status_message.as_deref().unwrap_or("no reason given")
        ),
        _ => eprintln!(
            "berth: warning: {} is {status}, not running; connecting may fail",
            i.name
        ),
    }
    let Some(url) = &i.connection_url else {
        bail!("{} has no connection URL yet (it is {status})", i.name);
    };
    let ca = download_ca(&api).await?;
    let target = psql_url(url, &ca);
    let err = std::process::Command::new(&args.psql)
        .arg(&target)
        .args(&args.psql_args)
        .exec();
    if err.kind() == std::io::ErrorKind::NotFound {
        bail!(
            "{} not found: install the PostgreSQL client (e.g. `apt install postgresql-client`, \
             `dnf install postgresql` or `brew install libpq`), or point BERTH_PSQL at psql",
            args.psql.display()
        );
    }
    Err(anyhow::Error::new(err).context(format!("running {}", args.psql.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_types::JobType;

    const T0: &str = "2030-01-01T00:00:00Z";

    fn uid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn project(n: u128, name: &str, member: bool) -> Project {
        serde_json::from_value(json!({
            "id": uid(n), "name": name, "description": "", "created_at": T0, "updated_at": T0,
            "user_count": 1, "instance_count": 0, "role": member.then_some("owner"),
        }))
        .unwrap()
    }

    /// An instance as the server shows it, with `fields` written over the defaults and a field
    /// this client does not know.
    fn instance_json(fields: Value) -> Value {
        let mut json = json!({
            "id": uid(0x1_0001), "name": "db", "project_id": uid(1), "engine": "postgres",
            "version": "15", "region": "local", "memory": "256MB", "storage": "10GB",
            "status": "running", "status_message": null, "connection_url": null,
            "username": "app", "database": "app", "host": "localhost", "port": null,
            "deletion_protection": false, "created_at": T0, "updated_at": T0,
            "current_job": null, "some_future_field": {"x": 1},
        });
        for (k, v) in fields.as_object().unwrap() {
            json[k] = v.clone();
        }
        json
    }

    fn found(fields: Value) -> Found {
        serde_json::from_value(instance_json(fields)).unwrap()
    }

    fn instance(n: u128, name: &str, project: u128) -> Found {
        found(json!({"id": uid(n), "name": name, "project_id": uid(project)}))
    }

    #[test]
    fn projects_by_id_or_name() {
        let ps = vec![project(1, "alpha", true), project(2, "Beta", true)];
        assert_eq!(find_project(&uid(2).to_string(), &ps).unwrap().name, "Beta");
        assert_eq!(find_project("alpha", &ps).unwrap().id, uid(1));
        assert_eq!(find_project("beta", &ps).unwrap().id, uid(2));
        let err = find_project("gamma", &ps).unwrap_err().to_string();
        let listed = format!("alpha ({}), Beta ({})", uid(1), uid(2));
        assert!(err.contains(&listed), "{err}");
        assert!(find_project("x", &[])
            .unwrap_err()
            .to_string()
            .contains("no project"));
    }

    #[test]
    fn the_default_project_is_the_only_membership() {
        let one = vec![project(1, "alpha", true)];
        assert_eq!(default_project(&one).unwrap().id, uid(1));

        // A platform admin sees every project but is a member of one.
        let admin = vec![project(1, "alpha", false), project(2, "mine", true)];
        assert_eq!(default_project(&admin).unwrap().id, uid(2));

        let several = vec![project(1, "alpha", true), project(2, "beta", true)];
        let err = default_project(&several).unwrap_err().to_string();
        assert!(err.contains("--project"), "{err}");
        let listed = format!("alpha ({}), beta ({})", uid(1), uid(2));
        assert!(err.contains(&listed), "{err}");

        let err = default_project(&[]).unwrap_err().to_string();
        assert!(err.contains("no project"), "{err}");
    }

    #[test]
    fn names_resolve_to_one_instance_or_say_why_not() {
        assert!(matches!(pick(vec![]), Pick::None));
        match pick(vec![instance(11, "db", 1)]) {
            Pick::One(f) => assert_eq!(f.value.id, uid(11)),
            _ => panic!("expected one"),
        }
        match pick(vec![instance(12, "db", 2), instance(11, "db", 1)]) {
            Pick::Many(ids) => {
                assert_eq!(ids, [uid(1), uid(2)]);
                let ps = vec![project(1, "alpha", true)];
                let msg = ambiguous("db", &ids, &ps);
                let listed = format!("alpha ({}), {}", uid(1), uid(2));
                assert!(msg.contains(&listed), "{msg}");
                assert!(msg.contains("--project"), "{msg}");
            }
            _ => panic!("expected many"),
        }
    }

    #[test]
    fn instances_leave_room_for_a_newer_server() {
        let f = found(json!({"status": "creating", "current_job":
            {"id": uid(7), "type": "create", "state": "PENDING"}}));
        assert_eq!(
            f.value.current_job.as_ref().unwrap().job_type,
            JobType::Create
        );
        assert!(f.value.connection_url.is_none());
        assert_eq!(f.json["some_future_field"]["x"], 1, "kept for -o json");

        // A status (and a job state) this client does not know: read, and shown as named.
        let f = found(json!({"status": "backing-up", "current_job":
            {"id": uid(7), "type": "restart", "state": "QUEUED"}}));
        assert_eq!(f.value.status, InstanceStatus::Unknown);
        assert_eq!(status_text(&f), "backing-up");
        let text = describe(&f, "alpha");
        assert!(text.contains("Status:               backing-up"), "{text}");
        assert!(text.contains("(restart, QUEUED)"), "{text}");

        assert!(serde_json::from_value::<Found>(json!("not an object")).is_err());
    }

    fn region(id: &str) -> Region {
        Region {
            id: id.into(),
            engine: "postgres".into(),
            versions: vec!["16".into(), "15".into()],
            memory_sizes: vec!["256MB".into(), "1GB".into()],
            storage_sizes: vec!["10GB".into()],
        }
    }

    #[test]
    fn create_defaults_come_from_the_regions() {
        let one = [region("local")];
        assert_eq!(
            choose_shape(&one, None, None, None).unwrap(),
            ("local".into(), "16".into(), "256MB".into())
        );
        assert_eq!(
            choose_shape(&one, Some("local"), Some("15"), None).unwrap(),
            ("local".into(), "15".into(), "256MB".into())
        );
        let two = [region("a"), region("b")];
        let err = choose_shape(&two, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--region: a, b"), "{err}");
        assert_eq!(
            choose_shape(&two, Some("b"), None, Some("1GB")).unwrap().2,
            "1GB"
        );
        let err = choose_shape(&two, Some("c"), None, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no region \"c\""), "{err}");
        assert!(choose_shape(&[], None, None, None).is_err());
    }

    #[test]
    fn list_table_columns() {
        let i = found(json!({
            "name": "db1", "status": "running", "memory": "256MB",
            "version": "15", "region": "local",
            "connection_url": "postgresql://app@localhost:23000/app?sslmode=verify-full"
        }));
        let pending = found(json!({"name": "db2", "status": "creating"}));
        let text = list_table(&[i, pending]).render();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME  STATUS    MEMORY  VERSION  REGION  CONNECTION URL"));
        assert!(lines[1].starts_with("db1   running   256MB   15       local   postgresql://"));
        assert!(lines[2].contains("  -  "), "{}", lines[2]);
    }

    #[test]
    fn describe_shows_what_matters() {
        let i = found(json!({
            "name": "db1", "status": "failed",
            "status_message": "create failed: x; delete it and create it again",
            "engine": "postgres", "version": "15", "deletion_protection": true,
            "created_at": "2030-01-01T00:00:00.123Z"
        }));
        let text = describe(&i, "alpha (p1)");
        assert!(
            text.contains("Status message:       create failed"),
            "{text}"
        );
        assert!(text.contains("Deletion protection:  on"), "{text}");
        assert!(text.contains("Engine:               postgres 15"), "{text}");
        assert!(
            text.contains("Created:              2030-01-01T00:00:00Z"),
            "{text}"
        );
        assert!(!text.contains("Connection URL"), "{text}");
        assert!(!text.contains("Current job"), "{text}");
    }

    #[test]
    fn deleting_needs_a_person_or_yes() {
        assert_eq!(confirmation(true, false), Confirm::Proceed);
        assert_eq!(confirmation(true, true), Confirm::Proceed);
        assert_eq!(confirmation(false, true), Confirm::Ask);
        assert_eq!(confirmation(false, false), Confirm::Refuse);
    }

    #[test]
    fn psql_gets_verify_full_and_the_ca() {
        let ca = Path::new("/home/a b/.config/berth/ca-0011.pem");
        assert_eq!(
            psql_url(
                "postgresql://app@localhost:23000/app?sslmode=verify-full",
                ca
            ),
            "postgresql://app@localhost:23000/app?sslmode=verify-full&sslrootcert=\
             %2Fhome%2Fa%20b%2F.config%2Fberth%2Fca-0011.pem"
        );
        // A weaker sslmode is replaced; other parameters stay.
        assert_eq!(
            psql_url(
                "postgresql://app@[::1]:5432/app?sslmode=require&connect_timeout=5",
                Path::new("/c.pem")
            ),
            "postgresql://app@[::1]:5432/app?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fc.pem"
        );
        assert_eq!(
            psql_url("postgresql://app@h/app", Path::new("/c+d.pem")),
            "postgresql://app@h/app?sslmode=verify-full&sslrootcert=%2Fc%2Bd.pem"
        );
    }

    #[test]
    fn ca_files_are_per_server() {
        let dir = Path::new("/cfg");
        let a = ca_path(dir, "https://a.example");
        let b = ca_path(dir, "https://b.example");
        assert_ne!(a, b);
        assert_eq!(a, ca_path(dir, "https://a.example"));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("ca-") && name.ends_with(".pem") && name.len() == 23,
            "{name}"
        );
    }

    #[test]
    fn write_public_is_readable_by_all() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = crate::cli::store::tests::TempDir::new();
        let path = tmp.0.join("sub").join("ca-x.pem");
        write_public(&path, b"pem").unwrap();
        write_public(&path, b"pem2").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"pem2");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn overlay_keeps_the_password() {
        let created = json!({"id": "x", "status": "creating", "password": "s3cret", "job_id": "j"});
        let latest = json!({"id": "x", "status": "running", "current_job": null});
        let merged = overlay(created, &latest);
        assert_eq!(merged["status"], "running");
        assert_eq!(merged["password"], "s3cret");
        assert_eq!(merged["job_id"], "j");
    }

    #[test]
    fn wait_errors_say_what_happened() {
        let o = |status: &str, message: Option<&str>| Observation {
            status: status.into(),
            message: message.map(Into::into),
            raw: None,
        };
        let t = Duration::from_secs(300);
        let err = settled(
            "db1",
            "running",
            "berth instances get x",
            Outcome::Failed(o("failed", Some("no port"))),
            t,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "db1 failed: no port");
        let err = settled(
            "db1",
            "running",
            "berth instances get x",
            Outcome::TimedOut(Some(o("creating", None))),
            t,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("still creating") && err.contains("5m00s"),
            "{err}"
        );
        assert!(err.contains("see `berth instances get x`"), "{err}");
        let err = settled(
            "db1",
            "paused",
            "c",
            Outcome::Elsewhere(o("running", None)),
            t,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "db1 is running instead of paused");
        assert!(settled(
            "db1",
            "running",
            "c",
            Outcome::Reached(o("running", None)),
            t
        )
        .is_ok());
    }
}
