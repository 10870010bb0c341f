//! The `db_users` and `db_databases` tables: the database users and databases made through the
//! API inside each instance, with where each is (`creating`, `active`, `deleting`).

use berth_types::{DbObjectState, DbUserProfile};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Clone, sqlx::FromRow)]
pub struct DbUserRow {
    pub instance_id: Uuid,
    pub name: String,
    pub profile: DbUserProfile,
    pub password_verifier: String,
    pub state: DbObjectState,
    pub created_at: DateTime<Utc>,
}

/// Without the verifier.
impl std::fmt::Debug for DbUserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbUserRow")
            .field("name", &self.name)
            .field("profile", &self.profile)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DatabaseRow {
    pub instance_id: Uuid,
    pub name: String,
    pub owner: String,
    pub state: DbObjectState,
    pub created_at: DateTime<Utc>,
}

const USER_COLUMNS: &str = "instance_id, name, profile, password_verifier, state, created_at";
const DATABASE_COLUMNS: &str = "instance_id, name, owner, state, created_at";

pub async fn users<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Vec<DbUserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM db_users WHERE instance_id = $1 ORDER BY name"
    ))
    .bind(instance_id)
    .fetch_all(db)
    .await
}

pub async fn user<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    name: &str,
) -> Result<Option<DbUserRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM db_users WHERE instance_id = $1 AND name = $2"
    ))
    .bind(instance_id)
    .bind(name)
    .fetch_optional(db)
    .await
}

pub async fn insert_user<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    name: &str,
    profile: DbUserProfile,
    verifier: &str,
    by: Option<Uuid>,
) -> Result<DbUserRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO db_users (instance_id, name, profile, password_verifier, created_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
    ))
    .bind(instance_id)
    .bind(name)
    .bind(profile)
    .bind(verifier)
    .bind(by)
    .fetch_one(db)
    .await
}

pub async fn set_user_verifier<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    name: &str,
    verifier: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(
        "UPDATE db_users SET password_verifier = $3
         WHERE instance_id = $1 AND name = $2 AND state <> 'deleting'",
    )
    .bind(instance_id)
    .bind(name)
    .bind(verifier)
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

pub async fn databases<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
) -> Result<Vec<DatabaseRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DATABASE_COLUMNS} FROM db_databases WHERE instance_id = $1 ORDER BY name"
    ))
    .bind(instance_id)
    .fetch_all(db)
    .await
}

pub async fn insert_database<'e>(
    db: impl PgExecutor<'e>,
    instance_id: Uuid,
    name: &str,
    owner: &str,
    by: Option<Uuid>,
) -> Result<DatabaseRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO db_databases (instance_id, name, owner, created_by)
         VALUES ($1, $2, $3, $4) RETURNING {DATABASE_COLUMNS}"
    ))
    .bind(instance_id)
    .bind(name)
    .bind(owner)
    .bind(by)
    .fetch_one(db)
    .await
}

/// Marks a user or database (`table`: which) as being removed; false if there is none, or it is
/// being removed already.
pub async fn mark_deleting<'e>(
    db: impl PgExecutor<'e>,
    table: Table,
    instance_id: Uuid,
    name: &str,
) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query(&format!(
        "UPDATE {} SET state = 'deleting' WHERE instance_id = $1 AND name = $2 AND state <> 'deleting'",
        table.name()
    ))
    .bind(instance_id)
    .bind(name)
    .execute(db)
    .await?
    .rows_affected()
        > 0)
}

/// After a job made the instance match: what was being made is there, what was being removed
/// is gone.
pub async fn settle<'e>(
    db: impl PgExecutor<'e> + Copy,
    table: Table,
    instance_id: Uuid,
) -> Result<(), sqlx::Error> {
    let t = table.name();
    sqlx::query(&format!(
        "DELETE FROM {t} WHERE instance_id = $1 AND state = 'deleting'"
    ))
    .bind(instance_id)
    .execute(db)
    .await?;
    sqlx::query(&format!(
        "UPDATE {t} SET state = 'active' WHERE instance_id = $1 AND state = 'creating'"
    ))
    .bind(instance_id)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum Table {
    Users,
    Databases,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Users => "db_users",
            Table::Databases => "db_databases",
        }
    }
}
