//! `berth db-users …` and `berth databases …`: the users and databases inside an instance.

use berth_types::{CreateDatabase, CreateDbUser, DbUserProfile};

use super::api::{explain, Api};
use super::firewall::{applied, instance_id, Instance};
use super::table::{self, Format, Table};

#[derive(clap::Subcommand)]
pub enum DbUsersCommand {
    /// List the instance's owner role and the users made through Berth.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Make a user with a generated password, printed once.
    Create(CreateUserArgs),
    /// Remove a user; what it owned goes to the owner role.
    #[command(visible_alias = "rm")]
    Delete(NameArgs),
    /// Give a user (or the owner role) a new password, printed once.
    ResetPassword(NameArgs),
}

#[derive(clap::Subcommand)]
pub enum DatabasesCommand {
    /// List the owner's database and the databases made through Berth.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Make a database.
    Create(CreateDatabaseArgs),
    /// Drop a database made through Berth (its sessions are ended).
    #[command(visible_alias = "rm")]
    Delete(NameArgs),
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    instance: Instance,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct NameArgs {
    #[command(flatten)]
    instance: Instance,
    name: String,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Profile {
    ReadOnly,
    ReadWrite,
    Admin,
}

#[derive(clap::Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    instance: Instance,
    name: String,
    /// What the user may do.
    #[arg(long, value_enum, default_value_t = Profile::ReadWrite)]
    profile: Profile,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct CreateDatabaseArgs {
    #[command(flatten)]
    instance: Instance,
    name: String,
    /// The user that owns it (default: the owner role).
    #[arg(long)]
    owner: Option<String>,
}

pub async fn run_users(command: DbUsersCommand) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    match command {
        DbUsersCommand::List(args) => {
            let id = instance_id(&api, &args.instance).await?;
            let page = api
                .berth()
                .await?
                .list_db_users(id)
                .await
                .map_err(explain)?;
            if args.output == Format::Json {
                return out!("{}", table::json(&serde_json::to_value(&page.results)?)?);
            }
            let mut t = Table::new(&["NAME", "PROFILE", "STATE", "CREATED"]);
            for u in &page.results {
                t.row(vec![
                    u.name.clone(),
                    u.profile.to_string(),
                    u.state.to_string(),
                    u.created_at.format("%Y-%m-%d %H:%M").to_string(),
                ]);
            }
            out!("{}", t.render())
        }
        DbUsersCommand::Create(args) => {
            let id = instance_id(&api, &args.instance).await?;
            let profile = match args.profile {
                Profile::ReadOnly => DbUserProfile::ReadOnly,
                Profile::ReadWrite => DbUserProfile::ReadWrite,
                Profile::Admin => DbUserProfile::Admin,
            };
            let created = api
                .berth()
                .await?
                .create_db_user(
                    id,
                    &CreateDbUser {
                        name: args.name.clone(),
                        profile,
                    },
                )
                .await
                .map_err(explain)?;
            applied(&api, created.job_id).await?;
            if args.output == Format::Json {
                return out!("{}", table::json(&serde_json::to_value(&created)?)?);
            }
            out!(
                "Created {} ({}).\nPassword (shown only now): {}",
                created.user.name,
                created.user.profile,
                created.password
            )
        }
        DbUsersCommand::Delete(args) => {
            let id = instance_id(&api, &args.instance).await?;
            let change = api
                .berth()
                .await?
                .delete_db_user(id, &args.name)
                .await
                .map_err(explain)?;
            applied(&api, change.job_id).await?;
            out!("Deleted {}.", args.name)
        }
        DbUsersCommand::ResetPassword(args) => {
            let id = instance_id(&api, &args.instance).await?;
            let reset = api
                .berth()
                .await?
                .reset_db_user_password(id, &args.name)
                .await
                .map_err(explain)?;
            applied(&api, reset.job_id).await?;
            out!(
                "New password of {} (shown only now; the old one no longer works): {}",
                reset.username,
                reset.password
            )
        }
    }
}

pub async fn run_databases(command: DatabasesCommand) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    match command {
        DatabasesCommand::List(args) => {
            let id = instance_id(&api, &args.instance).await?;
            let page = api
                .berth()
                .await?
                .list_databases(id)
                .await
                .map_err(explain)?;
            if args.output == Format::Json {
                return out!("{}", table::json(&serde_json::to_value(&page.results)?)?);
            }
            let mut t = Table::new(&["NAME", "OWNER", "STATE", "CREATED"]);
            for d in &page.results {
                t.row(vec![
                    d.name.clone(),
                    d.owner.clone(),
                    d.state.to_string(),
                    d.created_at.format("%Y-%m-%d %H:%M").to_string(),
                ]);
            }
            out!("{}", t.render())
        }
        DatabasesCommand::Create(args) => {
            let id = instance_id(&api, &args.instance).await?;
            let accepted = api
                .berth()
                .await?
                .create_database(
                    id,
                    &CreateDatabase {
                        name: args.name.clone(),
                        owner: args.owner.clone(),
                    },
                )
                .await
                .map_err(explain)?;
            applied(&api, accepted.job_id).await?;
            out!(
                "Created database {} (owner {}).",
                accepted.database.name,
                accepted.database.owner
            )
        }
        DatabasesCommand::Delete(args) => {
            let id = instance_id(&api, &args.instance).await?;
            let change = api
                .berth()
                .await?
                .delete_database(id, &args.name)
                .await
                .map_err(explain)?;
            applied(&api, change.job_id).await?;
            out!("Dropped database {}.", args.name)
        }
    }
}
