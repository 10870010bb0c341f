//! The audit log: every authentication event (sign-ins, tokens issued, reuse detected,
//! credentials created and revoked, device approvals) with actor, client, address, user agent
//! and time — never a secret.
//!
//! Events are written by a background task in batches, so recording one costs a channel send
//! and a token endpoint issuing thousands of tokens a second does not issue as many INSERTs.
//! While the store is down the writer holds its batch (and the channel the following events)
//! and writes them once the store is back, for up to [`OUTAGE_PATIENCE`].

use std::time::Duration;

use berth_store::audit::{AuditFilter, AuditRow};
use berth_store::{PgPool, StoreHealth};
use berth_types::{AuditQuery, Page, Permission};
use chrono::Utc;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{validate, App, AppError, Principal};

const BATCH: usize = 500;
/// How long a batch waits for a store that is down before its events are given up.
const OUTAGE_PATIENCE: Duration = Duration::from_secs(300);

enum Msg {
    Event(Box<AuditRow>),
    Flush(oneshot::Sender<()>),
}

pub(crate) struct AuditLog {
    tx: mpsc::Sender<Msg>,
}

impl AuditLog {
    pub fn start(db: PgPool, health: StoreHealth) -> AuditLog {
        let (tx, rx) = mpsc::channel(10_000);
        tokio::spawn(write_batches(db, health, rx));
        AuditLog { tx }
    }
}

async fn write_batches(db: PgPool, health: StoreHealth, mut rx: mpsc::Receiver<Msg>) {
    let mut rows = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Event(row) => rows.push(*row),
                Msg::Flush(done) => flushes.push(done),
            }
            next = if rows.len() < BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        write(&db, &health, &rows).await;
        rows.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes one batch: a statement error is retried twice; a store that is away is waited for.
async fn write(db: &PgPool, health: &StoreHealth, rows: &[AuditRow]) {
    let give_up_at = tokio::time::Instant::now() + OUTAGE_PATIENCE;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Err(e) = berth_store::audit::insert_batch(db, rows).await else {
            return;
        };
        // A busy pool (acquire timed out) is waited out like an outage, without declaring one.
        let busy = matches!(e, sqlx::Error::PoolTimedOut);
        if health.report(&e) || !health.is_up() || busy {
            if attempt == 1 {
                tracing::warn!(error = %e, events = rows.len(), "audit events wait for the store");
            }
            let left = give_up_at.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !health.wait_up_for(left).await {
                tracing::error!(error = %e, lost = rows.len(), "audit events could not be written: the store stayed away");
                return;
            }
            // The store may flap: never retry into it in a tight loop.
            tokio::time::sleep(Duration::from_millis(200)).await;
        } else if attempt < 3 {
            tracing::warn!(error = %e, attempt, "writing audit events failed; retrying");
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
        } else {
            // One bad event must not take its whole batch with it: write them singly.
            let mut lost = 0;
            for row in rows {
                if berth_store::audit::insert_batch(db, std::slice::from_ref(row))
                    .await
                    .is_err()
                {
                    lost += 1;
                }
            }
            if lost > 0 {
                tracing::error!(error = %e, lost, "audit events could not be written");
            }
            return;
        }
    }
}

/// One event, built up before it is recorded.
pub(crate) struct Event {
    row: AuditRow,
}

impl Event {
    pub fn new(event_type: &str) -> Event {
        Event {
            row: AuditRow {
                id: Uuid::now_v7(),
                occurred_at: Utc::now(),
                event_type: event_type.to_owned(),
                actor_user_id: None,
                actor_username: None,
                client_id: None,
                project_id: None,
                ip: None,
                user_agent: None,
                target_type: None,
                target_id: None,
                details: serde_json::json!({}),
            },
        }
    }

    pub fn by(mut self, p: &Principal) -> Event {
        self.row.actor_user_id = Some(p.user_id);
        self.row.actor_username = Some(p.username.clone());
        if self.row.client_id.is_none() {
            self.row.client_id = p.client_id.clone();
        }
        self
    }

    pub fn user(mut self, id: Uuid, username: &str) -> Event {
        self.row.actor_user_id = Some(id);
        self.row.actor_username = Some(username.to_owned());
        self
    }

    pub fn client(mut self, client_id: Option<&str>) -> Event {
        self.row.client_id = client_id.map(str::to_owned);
        self
    }

    pub fn project(mut self, project: Uuid) -> Event {
        self.row.project_id = Some(project);
        self
    }

    pub fn target(mut self, kind: &str, id: impl ToString) -> Event {
        self.row.target_type = Some(kind.to_owned());
        self.row.target_id = Some(id.to_string());
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Event {
        self.row.details = details;
        self
    }
}

/// PostgreSQL text and jsonb cannot hold U+0000, and one such value would fail its whole batch:
/// it is recorded as the six characters `\u0000` instead.
fn escape_nul(row: &mut AuditRow) {
    fn text(s: &mut String) {
        if s.contains('\0') {
            *s = s.replace('\0', "\\u0000");
        }
    }
    fn json(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => text(s),
            serde_json::Value::Array(items) => items.iter_mut().for_each(json),
            serde_json::Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    let old = std::mem::take(map);
                    for (mut k, mut v) in old {
                        text(&mut k);
                        json(&mut v);
                        map.insert(k, v);
                    }
                } else {
                    map.values_mut().for_each(json);
                }
            }
            _ => {}
        }
    }
    text(&mut row.event_type);
    for field in [
        &mut row.actor_username,
        &mut row.client_id,
        &mut row.ip,
        &mut row.user_agent,
        &mut row.target_type,
        &mut row.target_id,
    ]
    .into_iter()
    .flatten()
    {
        text(field);
    }
    json(&mut row.details);
}

fn view(r: AuditRow) -> berth_types::AuditEvent {
    berth_types::AuditEvent {
        id: r.id,
        occurred_at: r.occurred_at,
        event_type: r.event_type,
        actor_user_id: r.actor_user_id,
        actor_username: r.actor_username,
        client_id: r.client_id,
        project_id: r.project_id,
        ip: r.ip,
        user_agent: r.user_agent,
        target_type: r.target_type,
        target_id: r.target_id,
        details: r.details,
    }
}

impl App {
    /// Records an event with the current request's address and user agent.
    pub(crate) async fn audit(&self, event: Event) {
        let mut row = event.row;
        if let Some(client) = crate::context::current_client() {
            row.ip = Some(client.ip.to_string());
            row.user_agent = client.user_agent;
        }
        escape_nul(&mut row);
        if self
            .inner
            .audit
            .tx
            .send(Msg::Event(Box::new(row)))
            .await
            .is_err()
        {
            tracing::error!("audit log writer has stopped");
        }
    }

    /// Waits until every event recorded so far is in the store.
    pub async fn flush_audit(&self) {
        let (done, wait) = oneshot::channel();
        if self.inner.audit.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Platform admins see every event; other users see the events of projects whose role
    /// grants `audit:read` (owners and admins).
    pub async fn list_audit_events(
        &self,
        p: &Principal,
        q: &AuditQuery,
    ) -> Result<Page<berth_types::AuditEvent>, AppError> {
        let (limit, offset) = validate::page(q.limit, q.offset)?;
        let projects = self
            .visible_projects(p, Permission::AuditRead, q.project_id)
            .await?;
        let filter = AuditFilter {
            event_type: q.event_type.clone(),
            actor: q.actor.clone(),
            since: q.since,
            until: q.until,
            project_id: q.project_id,
            projects,
        };
        let count = berth_store::audit::count(self.db(), &filter).await?;
        let rows = berth_store::audit::list(self.db(), &filter, limit, offset).await?;
        Ok(crate::page(
            count,
            limit,
            offset,
            rows.into_iter().map(view).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_escaped_everywhere() {
        let mut row = Event::new("auth.login.failed")
            .details(serde_json::json!({"login": "ada\0x", "list": ["\0"], "k\0": 1}))
            .row;
        row.user_agent = Some("curl\0".into());
        escape_nul(&mut row);
        assert_eq!(row.details["login"], "ada\\u0000x");
        assert_eq!(row.details["list"][0], "\\u0000");
        assert_eq!(row.details["k\\u0000"], 1);
        assert_eq!(row.user_agent.as_deref(), Some("curl\\u0000"));
    }
}
