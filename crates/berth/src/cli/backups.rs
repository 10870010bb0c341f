//! `berth backups list|create|delete|policy`: an instance's backups and its backup policy.
//! Instances are named as for `berth instances`; a deleted instance by its ID, while its
//! backups are kept. Restores are `berth instances restore` and `berth instances clone`.

use std::time::Duration;

use anyhow::{bail, Context};
use berth_types::{BackupPolicy, BackupQuery, BackupType, CreateBackup, Weekday};
use chrono::SecondsFormat;
use uuid::Uuid;

use super::api::{explain, Api};
use super::instances;
use super::table::{self, fields, Format, Table};

#[derive(clap::Subcommand)]
pub enum BackupsCommand {
    /// List an instance's backups, newest first, with the window it can be restored to.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Take a backup now.
    Create(CreateArgs),
    /// Delete a backup (refused while a newer one is based on it).
    #[command(visible_alias = "rm")]
    Delete(DeleteArgs),
    /// Show the backup policy, or change it with the options.
    Policy(PolicyArgs),
}

#[derive(clap::Args)]
pub struct Instance {
    /// Instance name or ID (the ID of a deleted one).
    instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    project: Option<String>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    instance: Instance,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    instance: Instance,
    /// full, diff (changes since the last full one) or incr (since the last one).
    #[arg(long = "type", value_name = "TYPE", default_value = "full", value_parser = parse_type)]
    backup_type: BackupType,
    /// Wait until the backup has finished.
    #[arg(long)]
    wait: bool,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    instance: Instance,
    /// The backup's ID.
    backup: Uuid,
}

#[derive(clap::Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    instance: Instance,
    /// The daily full backup's UTC time, optionally with its days: 03:00 or 03:00,sun,wed.
    #[arg(long, value_name = "HH:MM[,DAYS]")]
    schedule: Option<String>,
    /// A differential backup every this many hours between full ones (0: none).
    #[arg(long, value_name = "HOURS")]
    differential_every: Option<i32>,
    /// How long backups are kept: 30d (days) or 4full (full backups).
    #[arg(long, value_name = "30d|4full")]
    retention: Option<String>,
    /// Turn scheduled backups on or off.
    #[arg(long, value_name = "on|off")]
    scheduled: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

fn parse_type(s: &str) -> Result<BackupType, String> {
    s.parse()
        .map_err(|_| format!("{s:?}: use full, diff or incr"))
}

pub async fn run(command: BackupsCommand) -> anyhow::Result<()> {
    match command {
        BackupsCommand::List(args) => list(args).await,
        BackupsCommand::Create(args) => create(args).await,
        BackupsCommand::Delete(args) => delete(args).await,
        BackupsCommand::Policy(args) => policy(args).await,
    }
}

/// The instance's ID: a live one by name or ID, a deleted one by its ID.
async fn instance_id(api: &Api, i: &Instance) -> anyhow::Result<Uuid> {
    match instances::resolve(api, &i.instance, i.project.as_deref()).await {
        Ok(found) => Ok(found.value.id),
        Err(e) => Uuid::parse_str(&i.instance).map_err(|_| e),
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    let berth = api.berth().await?;
    let backups = berth
        .list_all_backups(id, &BackupQuery::default())
        .await
        .map_err(explain)?;
    let window = berth.restore_window(id).await.map_err(explain)?;
    if args.output == Format::Json {
        let doc = serde_json::json!({ "backups": backups, "restore_window": window });
        return out!("{}", table::json(&doc)?);
    }
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    };
    let mut t = Table::new(&[
        "ID", "TYPE", "STATUS", "TRIGGER", "FINISHED", "SIZE", "STORED",
    ]);
    for b in &backups {
        t.row(vec![
            b.id.to_string(),
            b.backup_type.to_string(),
            b.status.as_str().to_owned(),
            b.trigger.to_string(),
            when(b.finished_at),
            b.size.map(megabytes).unwrap_or_default(),
            b.repository_size.map(megabytes).unwrap_or_default(),
        ]);
    }
    out!("{}", t.render())?;
    match (window.earliest, window.latest) {
        (Some(e), Some(l)) => out!(
            "Restorable from {} to {}.",
            when(Some(e)),
            if window.continuous {
                "now".to_owned()
            } else {
                when(Some(l))
            }
        ),
        _ => out!("Not restorable yet: no backup has completed."),
    }
}

fn megabytes(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    let berth = api.berth().await?;
    let req = CreateBackup {
        backup_type: Some(args.backup_type),
    };
    let accepted = berth.create_backup(id, &req).await.map_err(explain)?;
    if args.wait {
        let deadline = std::time::Instant::now() + Duration::from_secs(4 * 3600);
        loop {
            let job = berth.get_job(accepted.job_id).await.map_err(explain)?;
            if !job.state.is_active() {
                if job.state != berth_types::JobState::Success {
                    bail!(
                        "the backup failed: {}",
                        job.error.unwrap_or_else(|| job.state.to_string())
                    );
                }
                break;
            }
            if std::time::Instant::now() > deadline {
                bail!(
                    "the backup is still running; follow it with `berth jobs get {}`",
                    job.id
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let backup = berth
        .get_backup(id, accepted.backup.id)
        .await
        .map_err(explain)?;
    match args.output {
        Format::Json => out!("{}", table::json(&serde_json::to_value(&backup)?)?),
        Format::Text => out!(
            "{}",
            fields(&[
                ("Backup", Some(backup.id.to_string())),
                ("Type", Some(backup.backup_type.to_string())),
                ("Status", Some(backup.status.as_str().to_owned())),
                ("Size", backup.size.map(megabytes)),
                ("Job", Some(accepted.job_id.to_string())),
            ])
        ),
    }
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    api.berth()
        .await?
        .delete_backup(id, args.backup)
        .await
        .map_err(explain)?;
    out!("Deleted backup {}.", args.backup)
}

async fn policy(args: PolicyArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    let berth = api.berth().await?;
    let mut policy = berth.get_backup_policy(id).await.map_err(explain)?;
    let changing = args.schedule.is_some()
        || args.differential_every.is_some()
        || args.retention.is_some()
        || args.scheduled.is_some();
    if let Some(s) = &args.schedule {
        let mut parts = s.split(',');
        policy.full_backup_time = parts.next().unwrap_or_default().trim().to_owned();
        let days: Vec<Weekday> = parts
            .map(|d| parse_day(d.trim()))
            .collect::<anyhow::Result<_>>()?;
        if !days.is_empty() {
            policy.full_backup_days = days;
        }
    }
    if let Some(h) = args.differential_every {
        policy.differential_every_hours = (h > 0).then_some(h);
    }
    if let Some(r) = &args.retention {
        apply_retention(&mut policy, r)?;
    }
    if let Some(on) = &args.scheduled {
        policy.enabled = match on.as_str() {
            "on" => true,
            "off" => false,
            _ => bail!("--scheduled takes on or off"),
        };
    }
    if changing {
        policy = berth
            .put_backup_policy(id, &policy)
            .await
            .map_err(explain)?;
    }
    match args.output {
        Format::Json => out!("{}", table::json(&serde_json::to_value(&policy)?)?),
        Format::Text => {
            let days: Vec<String> = policy
                .full_backup_days
                .iter()
                .map(|d| format!("{d:?}").to_lowercase())
                .collect();
            out!(
                "{}",
                fields(&[
                    (
                        "Scheduled",
                        Some(if policy.enabled { "on" } else { "off" }.to_owned())
                    ),
                    (
                        "Full backup",
                        Some(format!(
                            "{} UTC on {}",
                            policy.full_backup_time,
                            days.join(", ")
                        ))
                    ),
                    (
                        "Differential",
                        Some(match policy.differential_every_hours {
                            Some(h) => format!("every {h} h"),
                            None => "none".into(),
                        })
                    ),
                    (
                        "Retention",
                        Some(
                            match (policy.retention_days, policy.retention_full_backups) {
                                (Some(d), _) => format!("{d} days"),
                                (_, Some(n)) => format!("{n} full backups"),
                                _ => String::new(),
                            }
                        )
                    ),
                ])
            )
        }
    }
}

fn parse_day(s: &str) -> anyhow::Result<Weekday> {
    let s = s.to_ascii_lowercase();
    Weekday::ALL
        .into_iter()
        .find(|d| {
            let name = format!("{d:?}").to_lowercase();
            s.len() >= 2 && name.starts_with(&s)
        })
        .with_context(|| format!("{s:?} is not a day of the week"))
}

fn apply_retention(policy: &mut BackupPolicy, r: &str) -> anyhow::Result<()> {
    if let Some(d) = r.strip_suffix('d') {
        policy.retention_days = Some(d.parse().context("--retention 30d: a number of days")?);
        policy.retention_full_backups = None;
    } else if let Some(n) = r.strip_suffix("full") {
        policy.retention_full_backups = Some(
            n.parse()
                .context("--retention 4full: a number of full backups")?,
        );
        policy.retention_days = None;
    } else {
        bail!("--retention takes days (30d) or full backups (4full)");
    }
    Ok(())
}
