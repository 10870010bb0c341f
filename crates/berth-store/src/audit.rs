//! The `audit_events` table.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, QueryBuilder};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub event_type: String,
    pub actor_user_id: Option<Uuid>,
    pub actor_username: Option<String>,
    pub client_id: Option<String>,
    pub project_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub details: serde_json::Value,
}

/// Writes a batch of events in one statement.
pub async fn insert_batch<'e>(
    db: impl PgExecutor<'e>,
    rows: &[AuditRow],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::new(
        "INSERT INTO audit_events (id, occurred_at, event_type, actor_user_id, actor_username, client_id, project_id, ip, user_agent, target_type, target_id, details) ",
    );
    q.push_values(rows, |mut b, r| {
        b.push_bind(r.id)
            .push_bind(r.occurred_at)
            .push_bind(&r.event_type)
            .push_bind(r.actor_user_id)
            .push_bind(&r.actor_username)
            .push_bind(&r.client_id)
            .push_bind(r.project_id)
            .push_bind(&r.ip)
            .push_bind(&r.user_agent)
            .push_bind(&r.target_type)
            .push_bind(&r.target_id)
            .push_bind(&r.details);
    });
    q.build().execute(db).await?;
    Ok(())
}

/// Which events to list. `projects` limits to events of those projects (None: all events).
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub event_type: Option<String>,
    pub actor: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub project_id: Option<Uuid>,
    pub projects: Option<Vec<Uuid>>,
}

fn push_filter(q: &mut QueryBuilder<'_, sqlx::Postgres>, f: &AuditFilter) {
    q.push(" WHERE true");
    if let Some(t) = &f.event_type {
        // A trailing `*` matches a family of events (`auth.*`).
        if let Some(prefix) = t.strip_suffix('*') {
            q.push(" AND starts_with(event_type, ")
                .push_bind(prefix.to_owned())
                .push(")");
        } else {
            q.push(" AND event_type = ").push_bind(t.clone());
        }
    }
    if let Some(a) = &f.actor {
        match a.parse::<Uuid>() {
            Ok(id) => q.push(" AND actor_user_id = ").push_bind(id),
            Err(_) => q.push(" AND actor_username = ").push_bind(a.clone()),
        };
    }
    if let Some(s) = f.since {
        q.push(" AND occurred_at >= ").push_bind(s);
    }
    if let Some(u) = f.until {
        q.push(" AND occurred_at < ").push_bind(u);
    }
    if let Some(p) = f.project_id {
        q.push(" AND project_id = ").push_bind(p);
    }
    if let Some(ps) = &f.projects {
        q.push(" AND project_id = ANY(")
            .push_bind(ps.clone())
            .push(")");
    }
}

pub async fn list<'e>(
    db: impl PgExecutor<'e>,
    f: &AuditFilter,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT * FROM audit_events");
    push_filter(&mut q, f);
    q.push(" ORDER BY occurred_at DESC, id DESC LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    q.build_query_as().fetch_all(db).await
}

pub async fn count<'e>(db: impl PgExecutor<'e>, f: &AuditFilter) -> Result<i64, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT count(*) FROM audit_events");
    push_filter(&mut q, f);
    q.build_query_scalar().fetch_one(db).await
}

/// Deletes events older than `days`.
pub async fn prune<'e>(db: impl PgExecutor<'e>, days: u64) -> Result<u64, sqlx::Error> {
    let r = sqlx::query(
        "DELETE FROM audit_events WHERE occurred_at < now() - make_interval(days => $1)",
    )
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .execute(db)
    .await?;
    Ok(r.rows_affected())
}
