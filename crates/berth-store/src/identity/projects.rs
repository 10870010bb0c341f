//! The `projects` and `memberships` tables.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProjectRow {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub user_count: i64,
    pub instance_count: i64,
    /// The viewing user's role, when they are a member.
    pub role: Option<String>,
}

const SELECT: &str = "SELECT p.*,
        (SELECT count(*) FROM memberships m WHERE m.project_id = p.id) AS user_count,
        (SELECT count(*) FROM instances i WHERE i.project_id = p.id AND i.deleted_at IS NULL) AS instance_count,
        (SELECT m.role FROM memberships m WHERE m.project_id = p.id AND m.user_id = $1) AS role
     FROM projects p";

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    name: &str,
    description: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO projects (id, name, description) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(description)
        .execute(db)
        .await?;
    Ok(())
}

/// One project as seen by `viewer`.
pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    viewer: Uuid,
    id: Uuid,
) -> Result<Option<ProjectRow>, sqlx::Error> {
    sqlx::query_as(&format!("{SELECT} WHERE p.id = $2"))
        .bind(viewer)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Projects visible to `viewer`: all of them when `all` (platform admins), else their memberships.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    viewer: Uuid,
    all: bool,
    limit: i64,
    offset: i64,
) -> Result<Vec<ProjectRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "{SELECT} WHERE $2 OR EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = p.id AND m.user_id = $1)
         ORDER BY p.created_at, p.id LIMIT $3 OFFSET $4"
    ))
    .bind(viewer)
    .bind(all)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

pub async fn count<'e>(
    db: impl PgExecutor<'e>,
    viewer: Uuid,
    all: bool,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM projects p
         WHERE $2 OR EXISTS (SELECT 1 FROM memberships m WHERE m.project_id = p.id AND m.user_id = $1)",
    )
    .bind(viewer)
    .bind(all)
    .fetch_one(db)
    .await
}

pub async fn update<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE projects SET name = coalesce($2, name), description = coalesce($3, description), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(description)
    .execute(db)
    .await?;
    Ok(r.rows_affected() > 0)
}

pub async fn delete<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM projects WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        > 0)
}

/// The role `user` holds in `project`, if any.
pub async fn role_of<'e>(
    db: impl PgExecutor<'e>,
    project: Uuid,
    user: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2")
        .bind(project)
        .bind(user)
        .fetch_optional(db)
        .await
}

/// Every distinct role `user` holds in any project.
pub async fn roles_of_user<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT role FROM memberships WHERE user_id = $1")
        .bind(user)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: Uuid,
    pub username: String,
    pub email: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

pub async fn members<'e>(
    db: impl PgExecutor<'e>,
    project: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT m.user_id, u.username, u.email, m.role, m.created_at
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.project_id = $1 ORDER BY m.created_at, u.username LIMIT $2 OFFSET $3",
    )
    .bind(project)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

pub async fn member_count<'e>(db: impl PgExecutor<'e>, project: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM memberships WHERE project_id = $1")
        .bind(project)
        .fetch_one(db)
        .await
}

pub async fn owner_count<'e>(db: impl PgExecutor<'e>, project: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM memberships WHERE project_id = $1 AND role = 'owner'")
        .bind(project)
        .fetch_one(db)
        .await
}

pub async fn put_member<'e>(
    db: impl PgExecutor<'e>,
    project: Uuid,
    user: Uuid,
    role: &str,
) -> Result<MemberRow, sqlx::Error> {
    sqlx::query_as(
        "WITH m AS (
            INSERT INTO memberships (project_id, user_id, role) VALUES ($1, $2, $3)
            ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role
            RETURNING *)
         SELECT m.user_id, u.username, u.email, m.role, m.created_at FROM m JOIN users u ON u.id = m.user_id",
    )
    .bind(project)
    .bind(user)
    .bind(role)
    .fetch_one(db)
    .await
}

pub async fn remove_member<'e>(
    db: impl PgExecutor<'e>,
    project: Uuid,
    user: Uuid,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM memberships WHERE project_id = $1 AND user_id = $2")
        .bind(project)
        .bind(user)
        .execute(db)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Serialises membership changes of one project (so "keep at least one owner" holds under
/// concurrency) by locking its row for the rest of the transaction.
pub async fn lock<'e>(db: impl PgExecutor<'e>, project: Uuid) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("SELECT 1 FROM projects WHERE id = $1 FOR UPDATE")
            .bind(project)
            .fetch_optional(db)
            .await?
            .is_some(),
    )
}

pub async fn exists<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM projects WHERE id = $1)")
        .bind(id)
        .fetch_one(db)
        .await
}

/// Names of projects whose only owner is `user`.
pub async fn sole_owned_by<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT p.name FROM projects p JOIN memberships m ON m.project_id = p.id
         WHERE m.user_id = $1 AND m.role = 'owner'
           AND NOT EXISTS (SELECT 1 FROM memberships o WHERE o.project_id = p.id AND o.role = 'owner' AND o.user_id <> $1)
         ORDER BY p.name",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

/// Projects where `user` holds one of `roles`.
pub async fn ids_with_roles<'e>(
    db: impl PgExecutor<'e>,
    user: Uuid,
    roles: &[&str],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT project_id FROM memberships WHERE user_id = $1 AND role = ANY($2)")
        .bind(user)
        .bind(roles)
        .fetch_all(db)
        .await
}

/// The id of the project named `name` (names are unique).
pub async fn id_by_name<'e>(
    db: impl PgExecutor<'e>,
    name: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM projects WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await
}
