//! Database users and databases inside an instance, made through the API. The store says what
//! should exist (each row `creating`, `active` or `deleting`); a `db_users` or `databases` job
//! makes the running instance match and settles the rows. Passwords are generated here, shown
//! once, and kept only as SCRAM verifiers. The owner role and its database came with the
//! instance: they are listed, the owner's password can be reset (so a lost create response is
//! not a lost database), and neither can be deleted.

use berth_engine::{Engine, ManagedDatabase, ManagedRole};
use berth_store::fleet::db_users::{DatabaseRow, DbUserRow, Table};
use berth_store::fleet::instances::InstanceRow;
use berth_types::{
    CreateDatabase, CreateDbUser, Database, DatabaseAccepted, DbChange, DbObjectState, DbUser,
    DbUserCreated, DbUserProfile, InstanceStatus, JobType, Page, PasswordReset, Permission,
};
use uuid::Uuid;

use crate::audit::Event;
use crate::{App, AppError, Principal};

const MAX_USERS: usize = 100;
const MAX_DATABASES: usize = 100;
/// Role names PostgreSQL or Berth keeps for itself (besides `pg_…`).
const RESERVED_ROLES: &[&str] = &[
    "postgres",
    "public",
    "none",
    "current_user",
    "current_role",
    "session_user",
    "berth",
];
const RESERVED_DATABASES: &[&str] = &["postgres", "template0", "template1"];

/// A role or database name: lower-case letters, digits and `_`, not starting with a digit, at
/// most 63 bytes (PostgreSQL's limit), so it never needs quoting to be typed.
fn object_name(what: &str, text: &str) -> Result<String, AppError> {
    let ok = !text.is_empty()
        && text.len() <= 63
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(AppError::Validation(format!(
            "{what} `{}` must be 1 to 63 lower-case letters, digits or `_`, not starting with a digit",
            text.chars().take(64).collect::<String>()
        )));
    }
    Ok(text.to_owned())
}

fn user_view(r: DbUserRow) -> DbUser {
    DbUser {
        name: r.name,
        profile: r.profile,
        state: r.state,
        created_at: r.created_at,
    }
}

fn database_view(r: DatabaseRow) -> Database {
    Database {
        name: r.name,
        owner: r.owner,
        state: r.state,
        created_at: r.created_at,
    }
}

/// Users and databases are changed with SQL, so the server must be up.
fn must_be_running(row: &InstanceRow, what: &str) -> Result<(), AppError> {
    if row.status == InstanceStatus::Running {
        return Ok(());
    }
    Err(AppError::conflict(
        "instance",
        format!(
            "cannot change the {what} of an instance that is {}; it must be running",
            row.status
        ),
    ))
}

impl App {
    pub async fn list_db_users(
        &self,
        p: &Principal,
        instance: Uuid,
    ) -> Result<Page<DbUser>, AppError> {
        let authorized = self
            .authorize_instance(p, instance, Permission::InstancesRead)
            .await?;
        let row = authorized.row();
        let mut users = vec![DbUser {
            name: row.owner_username.clone(),
            profile: DbUserProfile::Owner,
            state: DbObjectState::Active,
            created_at: row.created_at,
        }];
        users.extend(
            berth_store::fleet::db_users::users(self.db(), row.id)
                .await?
                .into_iter()
                .map(user_view),
        );
        Ok(crate::page(users.len() as i64, 500, 0, users))
    }

    pub async fn create_db_user(
        &self,
        p: &Principal,
        instance: Uuid,
        req: &CreateDbUser,
    ) -> Result<DbUserCreated, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let name = object_name("user name", &req.name)?;
        if name.starts_with("pg_") || RESERVED_ROLES.contains(&name.as_str()) {
            return Err(AppError::Validation(format!(
                "user name `{name}` is reserved by PostgreSQL or Berth"
            )));
        }
        if req.profile == DbUserProfile::Owner {
            return Err(AppError::Validation(
                "the owner profile is the instance's owner role's; choose read_only, read_write or admin"
                    .into(),
            ));
        }
        let password = berth_tls::generate_password();
        let verifier = berth_tls::scram_sha256_verifier(&password);
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if name == row.owner_username {
            return Err(AppError::conflict(
                "database user",
                format!("`{name}` is the instance's owner role"),
            ));
        }
        must_be_running(&row, "users")?;
        if berth_store::fleet::db_users::users(&mut *tx, id)
            .await?
            .len()
            >= MAX_USERS
        {
            return Err(AppError::Validation(format!(
                "an instance has at most {MAX_USERS} database users; delete one first"
            )));
        }
        let user = berth_store::fleet::db_users::insert_user(
            &mut *tx,
            id,
            &name,
            req.profile,
            &verifier,
            Some(p.user_id),
        )
        .await
        .map_err(|e| AppError::clash(e, &name))?;
        let job = self
            .commit_change(
                tx,
                &row,
                JobType::DbUsers,
                serde_json::json!({}),
                p,
                Event::new("db_user.created")
                    .details(serde_json::json!({ "name": name, "profile": req.profile })),
            )
            .await?;
        Ok(DbUserCreated {
            user: user_view(user),
            password,
            job_id: job,
        })
    }

    pub async fn delete_db_user(
        &self,
        p: &Principal,
        instance: Uuid,
        name: &str,
    ) -> Result<DbChange, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if name == row.owner_username {
            return Err(AppError::conflict(
                "database user",
                "the instance's owner role cannot be deleted",
            ));
        }
        if name.starts_with("pg_") || RESERVED_ROLES.contains(&name) {
            return Err(AppError::conflict(
                "database user",
                format!("`{name}` is a system role and cannot be deleted"),
            ));
        }
        must_be_running(&row, "users")?;
        if let Some(db) = berth_store::fleet::db_users::databases(&mut *tx, id)
            .await?
            .into_iter()
            .find(|d| d.owner == name && d.state != DbObjectState::Deleting)
        {
            return Err(AppError::conflict(
                "database user",
                format!(
                    "user `{name}` owns database `{}`; delete the database first",
                    db.name
                ),
            ));
        }
        if !berth_store::fleet::db_users::mark_deleting(&mut *tx, Table::Users, id, name).await? {
            return Err(AppError::NotFound("database user"));
        }
        let job = self
            .commit_change(
                tx,
                &row,
                JobType::DbUsers,
                serde_json::json!({}),
                p,
                Event::new("db_user.deleted").details(serde_json::json!({ "name": name })),
            )
            .await?;
        Ok(DbChange { job_id: job })
    }

    /// A new password for a user or the owner role: shown once; the old one works until the
    /// job has run.
    pub async fn reset_db_user_password(
        &self,
        p: &Principal,
        instance: Uuid,
        name: &str,
    ) -> Result<PasswordReset, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let password = berth_tls::generate_password();
        let verifier = berth_tls::scram_sha256_verifier(&password);
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if name != row.owner_username && (name.starts_with("pg_") || RESERVED_ROLES.contains(&name))
        {
            return Err(AppError::conflict(
                "database user",
                format!("`{name}` is a system role; its password is Berth's"),
            ));
        }
        // The owner's verifier travels in the job (never shown by the API); a user's is kept.
        let payload = if name == row.owner_username {
            serde_json::json!({ "owner_password_verifier": verifier })
        } else if berth_store::fleet::db_users::set_user_verifier(&mut *tx, id, name, &verifier)
            .await?
        {
            serde_json::json!({})
        } else {
            return Err(AppError::NotFound("database user"));
        };
        must_be_running(&row, "users")?;
        let job = self
            .commit_change(
                tx,
                &row,
                JobType::DbUsers,
                payload,
                p,
                Event::new("db_user.password_reset").details(serde_json::json!({ "name": name })),
            )
            .await?;
        Ok(PasswordReset {
            username: name.to_owned(),
            password,
            job_id: job,
        })
    }

    pub async fn list_databases(
        &self,
        p: &Principal,
        instance: Uuid,
    ) -> Result<Page<Database>, AppError> {
        let authorized = self
            .authorize_instance(p, instance, Permission::InstancesRead)
            .await?;
        let row = authorized.row();
        let mut databases = vec![Database {
            name: row.database_name.clone(),
            owner: row.owner_username.clone(),
            state: DbObjectState::Active,
            created_at: row.created_at,
        }];
        databases.extend(
            berth_store::fleet::db_users::databases(self.db(), row.id)
                .await?
                .into_iter()
                .map(database_view),
        );
        Ok(crate::page(databases.len() as i64, 500, 0, databases))
    }

    pub async fn create_database(
        &self,
        p: &Principal,
        instance: Uuid,
        req: &CreateDatabase,
    ) -> Result<DatabaseAccepted, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let name = object_name("database name", &req.name)?;
        if RESERVED_DATABASES.contains(&name.as_str()) {
            return Err(AppError::Validation(format!(
                "database name `{name}` is reserved by PostgreSQL"
            )));
        }
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if name == row.database_name {
            return Err(AppError::conflict(
                "database",
                format!("`{name}` is the instance's own database"),
            ));
        }
        let owner = match req.owner.as_deref() {
            None => row.owner_username.clone(),
            Some(o) if o == row.owner_username => o.to_owned(),
            Some(o) => match berth_store::fleet::db_users::user(&mut *tx, id, o).await? {
                Some(u) if u.state != DbObjectState::Deleting => u.name,
                _ => {
                    return Err(AppError::Validation(format!(
                        "owner `{}` is not a user of this instance",
                        o.chars().take(64).collect::<String>()
                    )))
                }
            },
        };
        must_be_running(&row, "databases")?;
        if berth_store::fleet::db_users::databases(&mut *tx, id)
            .await?
            .len()
            >= MAX_DATABASES
        {
            return Err(AppError::Validation(format!(
                "an instance has at most {MAX_DATABASES} databases made through Berth; delete one first"
            )));
        }
        let database = berth_store::fleet::db_users::insert_database(
            &mut *tx,
            id,
            &name,
            &owner,
            Some(p.user_id),
        )
        .await
        .map_err(|e| AppError::clash(e, &name))?;
        let job = self
            .commit_change(
                tx,
                &row,
                JobType::Databases,
                serde_json::json!({}),
                p,
                Event::new("database.created")
                    .details(serde_json::json!({ "name": name, "owner": owner })),
            )
            .await?;
        Ok(DatabaseAccepted {
            database: database_view(database),
            job_id: job,
        })
    }

    pub async fn delete_database(
        &self,
        p: &Principal,
        instance: Uuid,
        name: &str,
    ) -> Result<DbChange, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if name == row.database_name || RESERVED_DATABASES.contains(&name) {
            return Err(AppError::conflict(
                "database",
                format!("`{name}` came with the instance and cannot be deleted"),
            ));
        }
        must_be_running(&row, "databases")?;
        if !berth_store::fleet::db_users::mark_deleting(&mut *tx, Table::Databases, id, name)
            .await?
        {
            return Err(AppError::NotFound("database"));
        }
        let job = self
            .commit_change(
                tx,
                &row,
                JobType::Databases,
                serde_json::json!({}),
                p,
                Event::new("database.deleted").details(serde_json::json!({ "name": name })),
            )
            .await?;
        Ok(DbChange { job_id: job })
    }

    /// Makes the instance's users what the store says, then settles the rows.
    pub(crate) async fn apply_db_users(
        &self,
        engine: &dyn Engine,
        row: &InstanceRow,
        owner_verifier: Option<&str>,
    ) -> Result<(), AppError> {
        let spec = crate::jobs::instance_spec(row)?;
        let users = berth_store::fleet::db_users::users(self.db(), row.id).await?;
        let roles: Vec<ManagedRole<'_>> = users
            .iter()
            .filter(|u| u.state != DbObjectState::Deleting)
            .map(|u| ManagedRole {
                name: &u.name,
                profile: u.profile,
                password_verifier: &u.password_verifier,
            })
            .collect();
        engine
            .sync_roles(&spec, &row.owner_username, owner_verifier, &roles)
            .await?;
        berth_store::fleet::db_users::settle(self.db(), Table::Users, row.id).await?;
        Ok(())
    }

    /// Makes the instance's databases what the store says, then settles the rows.
    pub(crate) async fn apply_databases(
        &self,
        engine: &dyn Engine,
        row: &InstanceRow,
    ) -> Result<(), AppError> {
        let spec = crate::jobs::instance_spec(row)?;
        let rows = berth_store::fleet::db_users::databases(self.db(), row.id).await?;
        let databases: Vec<ManagedDatabase<'_>> = rows
            .iter()
            .filter(|d| d.state != DbObjectState::Deleting)
            .map(|d| ManagedDatabase {
                name: &d.name,
                owner: &d.owner,
            })
            .collect();
        engine.sync_databases(&spec, &databases).await?;
        berth_store::fleet::db_users::settle(self.db(), Table::Databases, row.id).await?;
        Ok(())
    }
}
