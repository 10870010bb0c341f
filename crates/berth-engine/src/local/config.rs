//! Configuration files of a local instance. `postgresql.conf` (initdb's) ends by including two
//! files Berth owns: `berth.memory.conf`, the memory class's settings, rewritten at every start
//! (so a resize takes effect at its restart), and `berth.user.conf`, the parameters users set,
//! rewritten by [`Engine::set_parameters`](crate::Engine::set_parameters). Later lines win, so
//! a user's value beats the class's. What users must never change (TLS, archiving, where
//! PostgreSQL listens, its files) is passed on the server's command line instead, which beats
//! every file.

use std::path::Path;
use std::time::Duration;

use sqlx::{ConnectOptions, Connection};

use super::LocalEngine;
use crate::{io, EngineError, InstanceSpec, LiveParameter, MemoryClass};

const MEMORY_FILE: &str = "berth.memory.conf";
const USER_FILE: &str = "berth.user.conf";
const INCLUDES: &str =
    "\n# Berth: the memory class's settings, then the user's (later lines win).\n\
include_if_exists = 'berth.memory.conf'\ninclude_if_exists = 'berth.user.conf'\n";
/// How long a reload may take to reach the server.
const RELOAD_WITHIN: Duration = Duration::from_secs(10);

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
        self.check_libraries(s.major, settings)?;
        let previous = std::fs::read(pgdata.join(USER_FILE)).ok();
        self.write_user_settings(&pgdata, settings)?;
        if let Err(e) = self.check_files(s.major, &pgdata).await {
            match previous {
                Some(old) => self.write_owned(&pgdata, USER_FILE, &old, 0o600)?,
                None => self.write_user_settings(&pgdata, &[])?,
            }
            return Err(e);
        }
        if !self.is_running(s.id).await {
            // Read at the next start.
            return Ok(());
        }
        let mut conn = self.admin_connection(s).await?;
        let reloaded = reload(&mut conn).await;
        let _ = conn.close().await;
        reloaded
    }

    /// Has PostgreSQL read the configuration files as a starting server would (`postgres -C`,
    /// which works beside a running server too): a value it refuses would otherwise be ignored
    /// by a reload, or keep the next start from succeeding.
    async fn check_files(&self, major: u32, pgdata: &Path) -> Result<(), EngineError> {
        let postgres = self.bins(major)?.bindir.join("postgres");
        let out = berth_pg::tool_command(&postgres, self.cfg.run_as.as_ref())
            .arg("-D")
            .arg(pgdata)
            .args(["-C", "max_connections"])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(io("running postgres -C"))?;
        if out.status.success() {
            return Ok(());
        }
        // `2026-12-02 03:27:39.940 UTC [7291] LOG:  invalid value for parameter …`
        let why: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| l.split_once("]  ").or_else(|| l.split_once("] ")))
            .map(|(_, m)| m.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|m| !m.starts_with("FATAL: configuration file"))
            .collect();
        Err(EngineError::Failed(format!(
            "PostgreSQL refused the configuration ({}); the previous one stays",
            if why.is_empty() {
                out.status.to_string()
            } else {
                why.join("; ")
            }
        )))
    }

    /// A library to preload that is not installed would stop the server from starting: refuse
    /// it now (PostgreSQL checks libraries only when it starts).
    fn check_libraries(
        &self,
        major: u32,
        settings: &[(String, String)],
    ) -> Result<(), EngineError> {
        let Some((_, value)) = settings
            .iter()
            .find(|(name, _)| name == "shared_preload_libraries")
        else {
            return Ok(());
        };
        let Some(libdir) = self.bins(major)?.bindir.parent().map(|d| d.join("lib")) else {
            return Ok(());
        };
        for lib in value.split(',').map(str::trim).filter(|l| !l.is_empty()) {
            if libdir.is_dir() && !libdir.join(format!("{lib}.so")).is_file() {
                return Err(EngineError::Failed(format!(
                    "the library `{lib}` is not installed on this host (install PostgreSQL's \
                     contrib modules)"
                )));
            }
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
        // Not `admin_connection`: its session overrides the timeouts this must report.
        let spec = self.spec(s.id, s.port);
        let mut conn = sqlx::postgres::PgConnectOptions::new()
            .host(&spec.socket_dir.to_string_lossy())
            .port(s.port)
            .username(super::SUPERUSER)
            .database("postgres")
            .disable_statement_logging()
            .connect()
            .await?;
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

/// Has the server reread its files; returns once it has.
async fn reload(conn: &mut sqlx::PgConnection) -> Result<(), EngineError> {
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
