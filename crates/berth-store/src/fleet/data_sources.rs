//! The `data_sources` table: external databases a project imports from. The password is
//! stored sealed by the caller; this module never sees it in the clear.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, QueryBuilder};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DataSourceRow {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    pub host: String,
    pub port: i32,
    pub database_name: String,
    pub username: String,
    pub password_sealed: Vec<u8>,
    pub sslmode: String,
    pub ca_certificate: Option<String>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_tested_at: Option<DateTime<Utc>>,
    pub last_test_ok: Option<bool>,
    pub last_test_error: Option<String>,
}

/// Everything a data source is made of (a new one, or the whole of an edited one).
pub struct DataSourceFields<'a> {
    pub name: &'a str,
    pub host: &'a str,
    pub port: i32,
    pub database_name: &'a str,
    pub username: &'a str,
    pub password_sealed: &'a [u8],
    pub sslmode: &'a str,
    pub ca_certificate: Option<&'a str>,
}

pub async fn insert<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    project_id: Uuid,
    f: &DataSourceFields<'_>,
    by: Uuid,
) -> Result<DataSourceRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO data_sources (id, project_id, name, host, port, database_name, username,
                                   password_sealed, sslmode, ca_certificate, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *",
    )
    .bind(id)
    .bind(project_id)
    .bind(f.name)
    .bind(f.host)
    .bind(f.port)
    .bind(f.database_name)
    .bind(f.username)
    .bind(f.password_sealed)
    .bind(f.sslmode)
    .bind(f.ca_certificate)
    .bind(by)
    .fetch_one(db)
    .await
}

/// Replaces every field; a changed connection forgets the last test's outcome.
pub async fn update<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    f: &DataSourceFields<'_>,
    connection_changed: bool,
) -> Result<DataSourceRow, sqlx::Error> {
    sqlx::query_as(
        "UPDATE data_sources SET name = $2, host = $3, port = $4, database_name = $5,
                username = $6, password_sealed = $7, sslmode = $8, ca_certificate = $9,
                updated_at = now(),
                last_tested_at = CASE WHEN $10 THEN NULL ELSE last_tested_at END,
                last_test_ok = CASE WHEN $10 THEN NULL ELSE last_test_ok END,
                last_test_error = CASE WHEN $10 THEN NULL ELSE last_test_error END
         WHERE id = $1 RETURNING *",
    )
    .bind(id)
    .bind(f.name)
    .bind(f.host)
    .bind(f.port)
    .bind(f.database_name)
    .bind(f.username)
    .bind(f.password_sealed)
    .bind(f.sslmode)
    .bind(f.ca_certificate)
    .bind(connection_changed)
    .fetch_one(db)
    .await
}

pub async fn get<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<DataSourceRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM data_sources WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The row, locked until the transaction ends (an edit racing another).
pub async fn get_for_update<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<DataSourceRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM data_sources WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(db)
        .await
}

fn push_filter(q: &mut QueryBuilder<'_, sqlx::Postgres>, projects: Option<&[Uuid]>) {
    q.push(" WHERE true");
    if let Some(ps) = projects {
        q.push(" AND project_id = ANY(")
            .push_bind(ps.to_vec())
            .push(")");
    }
}

/// Data sources of these projects (None: all), oldest first.
pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    projects: Option<&[Uuid]>,
    limit: i64,
    offset: i64,
) -> Result<Vec<DataSourceRow>, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT * FROM data_sources");
    push_filter(&mut q, projects);
    q.push(" ORDER BY created_at, id LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    q.build_query_as().fetch_all(db).await
}

pub async fn count<'e>(
    db: impl PgExecutor<'e>,
    projects: Option<&[Uuid]>,
) -> Result<i64, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT count(*) FROM data_sources");
    push_filter(&mut q, projects);
    q.build_query_scalar().fetch_one(db).await
}

pub async fn delete<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM data_sources WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?
        .rows_affected()
        > 0)
}

/// Records what a test found (unless the data source was edited since it was read).
pub async fn set_test<'e>(
    db: impl PgExecutor<'e>,
    id: Uuid,
    read_at: DateTime<Utc>,
    ok: bool,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE data_sources SET last_tested_at = now(), last_test_ok = $3, last_test_error = $4
         WHERE id = $1 AND updated_at = $2",
    )
    .bind(id)
    .bind(read_at)
    .bind(ok)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// Instances whose import from this data source has not ended (their jobs would need it).
pub async fn importing<'e>(db: impl PgExecutor<'e>, id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT instance_id FROM jobs
         WHERE type = 'import' AND state IN ('PENDING', 'STARTED')
           AND instance_id IS NOT NULL AND payload ->> 'data_source_id' = $1",
    )
    .bind(id.to_string())
    .fetch_all(db)
    .await
}
