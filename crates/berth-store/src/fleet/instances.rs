//! The `instances` table.

use berth_types::{DesiredState, InstanceStatus};
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, QueryBuilder};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub engine: String,
    pub version: String,
    pub region: String,
    pub memory: String,
    pub storage: String,
    pub status: InstanceStatus,
    pub status_message: Option<String>,
    pub desired_state: DesiredState,
    pub port: Option<i32>,
    pub owner_username: String,
    pub database_name: String,
    pub deletion_protection: bool,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub source_instance_id: Option<Uuid>,
    pub source_backup_id: Option<Uuid>,
    pub source_point_in_time: Option<DateTime<Utc>>,
    pub recovered_to_time: Option<DateTime<Utc>>,
    pub recovered_to_lsn: Option<String>,
    pub archived_until: Option<DateTime<Utc>>,
    pub archive_removed_at: Option<DateTime<Utc>>,
    pub source_data_source_id: Option<Uuid>,
}

pub struct NewInstance<'a> {
    pub id: Uuid,
    /// Set when a spare was claimed (the instance takes over the spare's port).
    pub port: Option<i32>,
    pub project_id: Uuid,
    pub name: &'a str,
    pub engine: &'a str,
    pub version: &'a str,
    pub region: &'a str,
    pub memory: &'a str,
    pub storage: &'a str,
    pub owner_username: &'a str,
    pub database_name: &'a str,
    pub created_by: Uuid,
    /// Restores and clones: where the data comes from.
    pub source_instance_id: Option<Uuid>,
    pub source_backup_id: Option<Uuid>,
    pub source_point_in_time: Option<DateTime<Utc>>,
    /// Imports: the data source copied.
    pub source_data_source_id: Option<Uuid>,
}

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    i: &NewInstance<'_>,
) -> Result<InstanceRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO instances (id, project_id, name, engine, version, region, memory, storage, status,
                                owner_username, database_name, created_by, port, source_instance_id,
                                source_backup_id, source_point_in_time, source_data_source_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $13, $9, $10, $11, $12, $14, $15, $16, $17)
         RETURNING *",
    )
    .bind(i.id)
    .bind(i.project_id)
    .bind(i.name)
    .bind(i.engine)
    .bind(i.version)
    .bind(i.region)
    .bind(i.memory)
    .bind(i.storage)
    .bind(i.owner_username)
    .bind(i.database_name)
    .bind(i.created_by)
    .bind(i.port)
    .bind(InstanceStatus::Creating)
    .bind(i.source_instance_id)
    .bind(i.source_backup_id)
    .bind(i.source_point_in_time)
    .bind(i.source_data_source_id)
    .fetch_one(db)
    .await
}

/// An instance, also when it has been deleted (its backups outlive it).
pub async fn get_any<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<InstanceRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM instances WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Records that everything committed before `at` is archived.
pub async fn set_archived_until<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE instances SET archived_until = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(db)
        .await?;
    Ok(())
}

/// Records the data source an import into an existing instance copied.
pub async fn set_imported_from<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    data_source: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE instances SET source_data_source_id = $2, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(data_source)
    .execute(db)
    .await?;
    Ok(())
}

/// Records what a restore recovered to.
pub async fn set_recovered<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    time: Option<DateTime<Utc>>,
    lsn: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE instances SET recovered_to_time = $2, recovered_to_lsn = $3 WHERE id = $1")
        .bind(id)
        .bind(time)
        .bind(lsn)
        .execute(db)
        .await?;
    Ok(())
}

/// Deleted instances of this region whose archive is still kept.
pub async fn deleted_with_archive<'e>(
    db: impl PgExecutor<'e>,
    region: &str,
) -> Result<Vec<InstanceRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM instances WHERE deleted_at IS NOT NULL AND archive_removed_at IS NULL AND region = $1",
    )
    .bind(region)
    .fetch_all(db)
    .await
}

/// Ids of a project's deleted instances whose archive is still kept.
pub async fn kept_archives_in_project<'e>(
    db: impl PgExecutor<'e>,
    project: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM instances
         WHERE project_id = $1 AND deleted_at IS NOT NULL AND archive_removed_at IS NULL",
    )
    .bind(project)
    .fetch_all(db)
    .await
}

pub async fn mark_archive_removed<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE instances SET archive_removed_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// A live (not deleted) instance.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<InstanceRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM instances WHERE id = $1 AND deleted_at IS NULL")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn get_for_update<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<InstanceRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM instances WHERE id = $1 AND deleted_at IS NULL FOR UPDATE")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Which instances a list shows. `projects` None means every project (platform admins).
#[derive(Debug, Default, Clone)]
pub struct InstanceFilter {
    pub projects: Option<Vec<Uuid>>,
    pub project_id: Option<Uuid>,
    pub status: Option<String>,
    pub name: Option<String>,
}

fn push_filter(q: &mut QueryBuilder<'_, sqlx::Postgres>, f: &InstanceFilter) {
    q.push(" WHERE deleted_at IS NULL");
    if let Some(ps) = &f.projects {
        q.push(" AND project_id = ANY(")
            .push_bind(ps.clone())
            .push(")");
    }
    if let Some(p) = f.project_id {
        q.push(" AND project_id = ").push_bind(p);
    }
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.clone());
    }
    if let Some(n) = &f.name {
        q.push(" AND name = ").push_bind(n.clone());
    }
}

pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    f: &InstanceFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<InstanceRow>, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT * FROM instances");
    push_filter(&mut q, f);
    q.push(" ORDER BY created_at, id LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    q.build_query_as().fetch_all(db).await
}

pub async fn count<'e>(db: impl PgExecutor<'e>, f: &InstanceFilter) -> Result<i64, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT count(*) FROM instances");
    push_filter(&mut q, f);
    q.build_query_scalar().fetch_one(db).await
}

pub async fn set_status<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    status: InstanceStatus,
    message: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE instances SET status = $2, status_message = $3, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(message)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_desired<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    desired: DesiredState,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE instances SET desired_state = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(desired)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn update<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    name: Option<&str>,
    memory: Option<&str>,
    storage: Option<&str>,
    deletion_protection: Option<bool>,
) -> Result<Option<InstanceRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE instances SET name = coalesce($2, name), memory = coalesce($3, memory),
            storage = coalesce($4, storage), deletion_protection = coalesce($5, deletion_protection),
            updated_at = now()
         WHERE id = $1 AND deleted_at IS NULL RETURNING *",
    )
    .bind(id)
    .bind(name)
    .bind(memory)
    .bind(storage)
    .bind(deletion_protection)
    .fetch_optional(db)
    .await
}

/// Gives the instance the port its transaction claimed (`ports::try_claim`).
pub async fn set_port<'e>(db: impl PgExecutor<'e>, id: Uuid, port: i32) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE instances SET port = $2 WHERE id = $1")
        .bind(id)
        .bind(port)
        .execute(db)
        .await?;
    Ok(())
}

/// Marks an instance gone and releases its port and name.
pub async fn mark_deleted<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE instances SET status = $2, status_message = NULL, port = NULL, deleted_at = now(), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(InstanceStatus::Deleted)
    .execute(db)
    .await?;
    Ok(())
}

/// Live instances in this region, for supervision and start-up.
pub async fn all_live<'e>(
    db: impl PgExecutor<'e>,
    region: &str,
) -> Result<Vec<InstanceRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM instances WHERE deleted_at IS NULL AND region = $1")
        .bind(region)
        .fetch_all(db)
        .await
}

pub async fn count_in_project<'e>(
    db: impl PgExecutor<'e>,
    project: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM instances WHERE project_id = $1 AND deleted_at IS NULL",
    )
    .bind(project)
    .fetch_one(db)
    .await
}
