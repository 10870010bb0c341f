//! Configuration files of a local instance. `postgresql.conf` (initdb's) ends by including two
//! files Berth owns: `berth.memory.conf`, the memory class's settings, rewritten at every start
//! (so a resize takes effect at its restart), and `berth.user.conf`, the parameters users set,
//! rewritten by [`Engine::set_parameters`](crate::Engine::set_parameters). Later lines win, so
//! a user's value beats the class's. What users must never change (TLS, archiving, where
//! PostgreSQL listens, its files) is passed on the server's command line instead, which beats
//! every file.

use std::path::Path;
use std::time::Duration;

use sqlx::Connection;

use super::LocalEngine;
use crate::{io, EngineError, InstanceSpec, LiveParameter, MemoryClass};

const MEMORY_FILE: &str = "berth.memory.conf";
const USER_FILE: &str = "berth.user.conf";
const INCLUDES: &str =
    "\n# Berth: the memory class's settings, then the user's (later lines win).\n\
include_if_exists = 'berth.memory.conf'\ninclude_if_exists = 'berth.user.conf'\n";
/// How long a reload may take to reach the server.
const RELOAD_WITHIN: Duration = Duration::from_secs(10);
/// What `pg_file_settings` says of a value that is valid but waits for a restart.
const NEEDS_RESTART: &str = "setting could not be applied";

/// `name = 'value'` lines; a name or value the caller should never have passed is refused.
fn render(settings: &[(String, String)]) -> Result<String, EngineError> {
    let mut out = String::from("# Written by Berth; changes here are overwritten.\n");
    for (name, value) in settings {
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            || value.chars().any(char::is_control)
        {
            return Err(EngineError::Failed(format!(
                "not a setting: {name:?} = {value:?}"
            )));
        }
        out.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    Ok(out)
}

impl LocalEngine {
    /// Makes `postgresql.conf` include Berth's files (once; instances made before they existed
    /// get the lines at their next start).
    fn ensure_includes(&self, pgdata: &Path) -> Result<(), EngineError> {
        let path = pgdata.join("postgresql.conf");
        let text =
            std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
        if text.contains(&format!("include_if_exists = '{USER_FILE}'")) {
            return Ok(());
        }
        self.write_owned(
            pgdata,
            "postgresql.conf",
            (text + INCLUDES).as_bytes(),
            0o600,
        )
    }

    /// The memory class's settings, for the next start (or reload).
    pub(super) fn write_memory_settings(
        &self,
        pgdata: &Path,
        memory: &MemoryClass,
    ) -> Result<(), EngineError> {
        self.ensure_includes(pgdata)?;
        let text = render(&memory.settings())?;
        self.write_owned(pgdata, MEMORY_FILE, text.as_bytes(), 0o600)
    }

    /// The users' settings, for the next start (or reload).
    pub(super) fn write_user_settings(
        &self,
        pgdata: &Path,
        settings: &[(String, String)],
    ) -> Result<(), EngineError> {
        self.ensure_includes(pgdata)?;
        let text = render(settings)?;
        self.write_owned(pgdata, USER_FILE, text.as_bytes(), 0o600)
    }

    pub(super) async fn apply_parameters(
        &self,
        s: &InstanceSpec,
        settings: &[(String, String)],
    ) -> Result<(), EngineError> {
        let pgdata = self.dir(s.id).join("pgdata");
        if !pgdata.join("PG_VERSION").is_file() {
            return Err(EngineError::Failed(format!(
                "instance {} has no data directory",
                s.id
            )));
        }
        let previous = std::fs::read(pgdata.join(USER_FILE)).ok();
        self.write_user_settings(&pgdata, settings)?;
        if !self.is_running(s.id).await {
            // Read at the next start.
            return Ok(());
        }
        let mut conn = self.admin_connection(s).await?;
        let applied = reload_checked(&mut conn).await;
        let _ = conn.close().await;
        if let Err(e) = applied {
            if let Some(old) = previous {
                self.write_owned(&pgdata, USER_FILE, &old, 0o600)?;
            }
            return Err(e);
        }
        Ok(())
    }

    pub(super) async fn live_parameters(
        &self,
        s: &InstanceSpec,
        names: &[&str],
    ) -> Result<Vec<LiveParameter>, EngineError> {
        if !self.is_running(s.id).await {
            return Ok(Vec::new());
        }
        let mut conn = self.admin_connection(s).await?;
        let rows: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT name, current_setting(name), pending_restart FROM pg_settings
             WHERE name = ANY($1)",
        )
        .bind(names)
        .fetch_all(&mut conn)
        .await?;
        let _ = conn.close().await;
        Ok(rows
            .into_iter()
            .map(|(name, current, pending_restart)| LiveParameter {
                name,
                current,
                pending_restart,
            })
            .collect())
    }
}

/// Has PostgreSQL parse the files as they are now and, if it accepts every value, reread them;
/// returns once the server has.
async fn reload_checked(conn: &mut sqlx::PgConnection) -> Result<(), EngineError> {
    let refused: Vec<(String, String)> = sqlx::query_as(
        "SELECT coalesce(name, '?'), error FROM pg_file_settings
         WHERE error IS NOT NULL AND error <> $1",
    )
    .bind(NEEDS_RESTART)
    .fetch_all(&mut *conn)
    .await?;
    if !refused.is_empty() {
        let what: Vec<String> = refused
            .into_iter()
            .map(|(name, error)| format!("{name}: {error}"))
            .collect();
        return Err(EngineError::Failed(format!(
            "PostgreSQL refused the configuration ({}); the previous one stays",
            what.join("; ")
        )));
    }
    let before: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT pg_conf_load_time()")
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut *conn)
        .await?;
    // The postmaster rereads the files, then signals every backend, this one included, which
    // rereads them before its next query: once it has, new sessions get the new values too.
    let give_up = tokio::time::Instant::now() + RELOAD_WITHIN;
    loop {
        let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT pg_conf_load_time()")
            .fetch_one(&mut *conn)
            .await?;
        if at > before {
            return Ok(());
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(EngineError::Failed(format!(
                "the server did not reread its configuration within {} s",
                RELOAD_WITHIN.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
