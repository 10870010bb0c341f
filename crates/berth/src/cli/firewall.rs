//! `berth firewall list|add|remove`: the networks an instance accepts TCP connections from.

use std::time::Duration;

use anyhow::bail;
use berth_types::CreateFirewallRule;
use uuid::Uuid;

use super::api::{explain, Api};
use super::instances;
use super::table::{self, Format, Table};

#[derive(clap::Subcommand)]
pub enum FirewallCommand {
    /// List the instance's rules.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Let a network (or one address) connect: 203.0.113.0/24, 2001:db8::/32, 198.51.100.7.
    Add(AddArgs),
    /// Remove a rule, by its ID or its network.
    #[command(visible_alias = "rm")]
    Remove(RemoveArgs),
}

/// The instance a command is about (shared by the commands that manage what is inside one).
#[derive(clap::Args)]
pub struct Instance {
    /// Instance name or ID.
    pub instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    pub project: Option<String>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    instance: Instance,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct AddArgs {
    #[command(flatten)]
    instance: Instance,
    /// The network or address.
    cidr: String,
    /// What the rule is for.
    #[arg(long, default_value = "")]
    description: String,
}

#[derive(clap::Args)]
pub struct RemoveArgs {
    #[command(flatten)]
    instance: Instance,
    /// The rule's ID, or its network as listed.
    rule: String,
}

pub async fn run(command: FirewallCommand) -> anyhow::Result<()> {
    match command {
        FirewallCommand::List(args) => list(args).await,
        FirewallCommand::Add(args) => add(args).await,
        FirewallCommand::Remove(args) => remove(args).await,
    }
}

pub(super) async fn instance_id(api: &Api, i: &Instance) -> anyhow::Result<Uuid> {
    Ok(instances::resolve(api, &i.instance, i.project.as_deref())
        .await?
        .value
        .id)
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    let rules = api
        .berth()
        .await?
        .list_firewall_rules(id)
        .await
        .map_err(explain)?
        .results;
    if args.output == Format::Json {
        return out!("{}", table::json(&serde_json::to_value(&rules)?)?);
    }
    if rules.is_empty() {
        return out!("No rules: nobody may connect over TCP.");
    }
    let mut t = Table::new(&["CIDR", "DESCRIPTION", "ID"]);
    for r in &rules {
        t.row(vec![
            r.cidr.clone(),
            r.description.clone(),
            r.id.to_string(),
        ]);
    }
    out!("{}", t.render())
}

/// Waits until the job that applies a change has ended.
pub(super) async fn applied(api: &Api, job: Uuid) -> anyhow::Result<()> {
    let berth = api.berth().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let j = berth.get_job(job).await.map_err(explain)?;
        if !j.state.is_active() {
            if j.state != berth_types::JobState::Success {
                bail!(
                    "applying the change failed: {}",
                    j.error.unwrap_or_else(|| j.state.to_string())
                );
            }
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            bail!("the change is still being applied; follow it with `berth jobs get {job}`");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn add(args: AddArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    let req = CreateFirewallRule {
        cidr: args.cidr.clone(),
        description: args.description.clone(),
    };
    let accepted = api
        .berth()
        .await?
        .add_firewall_rule(id, &req)
        .await
        .map_err(explain)?;
    applied(&api, accepted.job_id).await?;
    out!(
        "Added {} ({}); it applies now.",
        accepted.rule.cidr,
        accepted.rule.id
    )
}

async fn remove(args: RemoveArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instance_id(&api, &args.instance).await?;
    let berth = api.berth().await?;
    let rule = match Uuid::parse_str(&args.rule) {
        Ok(rule) => rule,
        Err(_) => {
            let wanted = single_address(&args.rule);
            let rules = berth
                .list_firewall_rules(id)
                .await
                .map_err(explain)?
                .results;
            match rules
                .iter()
                .find(|r| r.cidr == wanted || r.cidr == args.rule)
            {
                Some(r) => r.id,
                None => bail!(
                    "no rule {:?}; see `berth firewall list {}`",
                    args.rule,
                    args.instance.instance
                ),
            }
        }
    };
    let change = berth
        .delete_firewall_rule(id, rule)
        .await
        .map_err(explain)?;
    applied(&api, change.job_id).await?;
    out!("Removed the rule; it applies now.")
}

/// A single address as the server lists it (`a.b.c.d` → `a.b.c.d/32`).
fn single_address(text: &str) -> String {
    match text.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => format!("{text}/32"),
        Ok(std::net::IpAddr::V6(v6)) => format!("{v6}/128"),
        Err(_) => text.to_owned(),
    }
}
