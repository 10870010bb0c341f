//! Data sources: reaching an external PostgreSQL database ([`LocalEngine::probe_external`]) and
//! importing a logical copy of it into an instance ([`LocalEngine::import_database`]).
//!
//! An import is `pg_dump` of the instance's own major version (which reads every older server)
//! in directory format with parallel jobs, then `pg_restore`, also parallel, into an emptied
//! owner database as the owner role (`--role`, `--no-owner`, `--no-privileges`): every object
//! ends up the owner's, and nothing of the source's roles comes along (they do not exist here).
//! The source's password reaches `pg_dump` through a password file only the PostgreSQL user
//! can read, never on a command line or in an environment; the work directory goes when the
//! import ends, and with the instance if it fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use berth_types::SslMode;
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{ConnectOptions, Connection};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{quote_ident, LocalEngine, SUPERUSER, UNLIMITED_SESSION, UNLIMITED_SESSION_OPTIONS};
use crate::{
    io, EngineError, ExternalDatabase, Imported, InstanceSpec, ProbeFailure, ProbeStep, Probed,
    Progress,
};

/// Where `verify-ca`/`verify-full` look for trusted roots when the data source names none
/// (Debian's bundle; the probe's TLS library uses the same public roots).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// How long the import's first look at the source may take.
const IMPORT_PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// libpq's connect timeout for `pg_dump`'s connections, in seconds.
const DUMP_CONNECT_TIMEOUT: &str = "30";
/// How often the dump's progress is read off its directory.
const DUMP_PROGRESS_EVERY: Duration = Duration::from_millis(500);

impl LocalEngine {
    pub(super) async fn probe_external(
        &self,
        src: ExternalDatabase<'_>,
        timeout: Duration,
    ) -> Result<Probed, ProbeFailure> {
        match tokio::time::timeout(timeout, probe(src)).await {
            Ok(result) => result,
            Err(_) => Err(ProbeFailure {
                step: ProbeStep::Timeout,
                message: format!(
                    "{}:{} did not answer within {} s",
                    src.host,
                    src.port,
                    timeout.as_secs_f32()
                ),
            }),
        }
    }

    pub(super) async fn import_database(
        &self,
        s: &InstanceSpec,
        src: ExternalDatabase<'_>,
        owner: &str,
        database: &str,
        progress: &Progress<'_>,
    ) -> Result<Imported, EngineError> {
        let bins = self.bins(s.major)?;
        let probed = self
            .probe_external(src, IMPORT_PROBE_TIMEOUT)
            .await
            .map_err(|f| {
                EngineError::Failed(format!(
                    "cannot reach the data source ({}): {}",
                    f.step.as_str(),
                    f.message
                ))
            })?;
        if probed.server_major > s.major {
            return Err(EngineError::Failed(format!(
                "the data source runs PostgreSQL {}; PostgreSQL {}'s pg_dump cannot read a newer \
                 server: create the instance with version {} or newer",
                probed.server_major, s.major, probed.server_major
            )));
        }
        let work = self.fresh_work_dir(s)?;
        let result = self
            .dump_and_restore(s, bins, src, &probed, &work, owner, database, progress)
            .await;
        // The password file and the dump go whatever happened.
        let _ = tokio::fs::remove_dir_all(&work).await;
        let objects = result?;
        self.analyze(s, database).await?;
        Ok(Imported {
            objects,
            source_major: probed.server_major,
        })
    }

    /// `<instance>/import/`, empty, reachable by the PostgreSQL user only.
    fn fresh_work_dir(&self, s: &InstanceSpec) -> Result<PathBuf, EngineError> {
        let work = self.dir(s.id).join("import");
        if work.exists() {
            std::fs::remove_dir_all(&work).map_err(io("removing an interrupted import"))?;
        }
        std::fs::create_dir_all(&work).map_err(io("creating the import directory"))?;
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o700))
            .map_err(io("securing the import directory"))?;
        if let Some(u) = &self.cfg.run_as {
            std::os::unix::fs::chown(&work, Some(u.uid), Some(u.gid))
                .map_err(io("changing the owner of the import directory"))?;
        }
        Ok(work)
    }

    #[allow(clippy::too_many_arguments)]
    async fn dump_and_restore(
        &self,
        s: &InstanceSpec,
        bins: &berth_pg::PgBinaries,
        src: ExternalDatabase<'_>,
        probed: &Probed,
        work: &Path,
        owner: &str,
        database: &str,
        progress: &Progress<'_>,
    ) -> Result<u64, EngineError> {
        self.write_owned(work, "pgpass", pgpass_line(src.password).as_bytes(), 0o600)?;
        let roots = match (src.ca_certificate, src.sslmode) {
            (Some(pem), _) => {
                self.write_owned(work, "root.crt", pem.as_bytes(), 0o600)?;
                Some(work.join("root.crt"))
            }
            (None, SslMode::VerifyCa | SslMode::VerifyFull) => Some(PathBuf::from(SYSTEM_ROOTS)),
            (None, _) => None,
        };
        self.empty_database(s, owner, database).await?;
        let jobs = format!("--jobs={}", self.cfg.backups.process_max.clamp(1, 8));
        let dump = work.join("dump");

        // Dump: the first half of the progress, as the directory fills (uncompressed, so it
        // grows towards the size of the source's data).
        let mut cmd =
            berth_pg::tool_command(&bins.bindir.join("pg_dump"), self.cfg.run_as.as_ref());
        cmd.args([
            "--format=directory",
            &jobs,
            "--compress=0",
            "--no-owner",
            "--no-privileges",
            "--no-publications",
            "--no-subscriptions",
            "--no-security-labels",
            "--no-tablespaces",
            "--file",
        ])
        .arg(&dump)
        .env("PGHOST", src.host)
        .env("PGPORT", src.port.to_string())
        .env("PGDATABASE", src.database)
        .env("PGUSER", src.username)
        .env("PGPASSFILE", work.join("pgpass"))
        .env("PGSSLMODE", src.sslmode.as_str())
        .env("PGCONNECT_TIMEOUT", DUMP_CONNECT_TIMEOUT)
        .env("PGAPPNAME", "berth-import");
        if let Some(roots) = &roots {
            cmd.env("PGSSLROOTCERT", roots);
        }
        let total = probed.size_bytes.max(1) as f64;
        let dumped = dump.clone();
        run_tool(
            cmd,
            "pg_dump",
            |_| {},
            || {
                let fraction = (dir_size(&dumped) as f64 / total).min(1.0);
                progress((fraction * 50.0) as f32);
            },
        )
        .await?;

        // Restore: the second half, by the table-of-contents entries done.
        let restore = bins.bindir.join("pg_restore");
        let mut list = berth_pg::tool_command(&restore, self.cfg.run_as.as_ref());
        list.arg("--list").arg(&dump).stdout(Stdio::piped());
        let out = list
            .output()
            .await
            .map_err(io("listing the dump's contents"))?;
        let entries = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with(';'))
            .count()
            .max(1) as u64;
        let spec = self.spec(s.id, s.port);
        let mut cmd = berth_pg::tool_command(&restore, self.cfg.run_as.as_ref());
        cmd.args([
            &jobs,
            "--exit-on-error",
            "--verbose",
            "--no-owner",
            "--no-privileges",
            "--no-publications",
            "--no-subscriptions",
            "--no-security-labels",
            "--no-tablespaces",
        ])
        .arg(format!("--role={owner}"))
        .arg(format!("--dbname={database}"))
        .arg(&dump)
        .env("PGHOST", &spec.socket_dir)
        .env("PGPORT", s.port.to_string())
        .env("PGUSER", SUPERUSER)
        .env("PGOPTIONS", UNLIMITED_SESSION_OPTIONS)
        .env("PGAPPNAME", "berth-import");
        let done = std::sync::atomic::AtomicU64::new(0);
        run_tool(
            cmd,
            "pg_restore",
            |line| {
                if is_restore_step(line) {
                    let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    progress(50.0 + 49.0 * (n.min(entries) as f32 / entries as f32));
                }
            },
            || {},
        )
        .await?;
        Ok(entries)
    }

    /// Drops and remakes the owner database, so every attempt starts from nothing.
    async fn empty_database(
        &self,
        s: &InstanceSpec,
        owner: &str,
        database: &str,
    ) -> Result<(), EngineError> {
        let mut conn = self.admin_connection(s).await?;
        let db = quote_ident(database);
        sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        sqlx::query(&format!(
            "CREATE DATABASE {db} OWNER {}",
            quote_ident(owner)
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }

    /// Fresh planner statistics: `pg_restore` copies rows, not statistics.
    async fn analyze(&self, s: &InstanceSpec, database: &str) -> Result<(), EngineError> {
        let spec = self.spec(s.id, s.port);
        let mut conn = PgConnectOptions::new_without_pgpass()
            .host(&spec.socket_dir.to_string_lossy())
            .port(s.port)
            .username(SUPERUSER)
            .database(database)
            .options(UNLIMITED_SESSION)
            .disable_statement_logging()
            .connect()
            .await?;
        sqlx::query("ANALYZE").execute(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }
}

async fn probe(src: ExternalDatabase<'_>) -> Result<Probed, ProbeFailure> {
    let mut opts = PgConnectOptions::new_without_pgpass()
        .host(src.host)
        .port(src.port)
        .username(src.username)
        .password(src.password)
        .database(src.database)
        .application_name("berth-probe")
        .ssl_mode(match src.sslmode {
            SslMode::Disable => PgSslMode::Disable,
            SslMode::Prefer => PgSslMode::Prefer,
            SslMode::Require => PgSslMode::Require,
            SslMode::VerifyCa => PgSslMode::VerifyCa,
            SslMode::VerifyFull => PgSslMode::VerifyFull,
        })
        .disable_statement_logging();
    if let Some(pem) = src.ca_certificate {
        opts = opts.ssl_root_cert_from_pem(pem.as_bytes().to_vec());
    }
    let classify = |e: sqlx::Error| classify(e, src);
    let mut conn = opts.connect().await.map_err(classify)?;
    let (version, number, size, tls): (String, i32, i64, Option<bool>) = sqlx::query_as(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int,
                pg_database_size(current_database()),
                (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())",
    )
    .fetch_one(&mut conn)
    .await
    .map_err(classify)?;
    let _ = conn.close().await;
    Ok(Probed {
        server_version: version,
        server_major: u32::try_from(number / 10_000).unwrap_or(0),
        size_bytes: size,
        tls: tls.unwrap_or(false),
    })
}

/// Which step a connection error belongs to, in words a user can act on.
fn classify(e: sqlx::Error, src: ExternalDatabase<'_>) -> ProbeFailure {
    let at = format!("{}:{}", src.host, src.port);
    let (step, message) = match &e {
        // The TLS library's refusals (an unknown issuer, a wrong name) come as invalid data.
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            (ProbeStep::Tls, format!("TLS with {at} failed: {io}"))
        }
        sqlx::Error::Io(io) => (ProbeStep::Connect, format!("cannot reach {at}: {io}")),
        sqlx::Error::Tls(t) => (ProbeStep::Tls, format!("TLS with {at} failed: {t}")),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01" | "28000") => (ProbeStep::Authentication, db.message().to_owned()),
            _ => (ProbeStep::Database, db.message().to_owned()),
        },
        sqlx::Error::Protocol(m) if m.contains("TLS") || m.contains("SSL") => {
            (ProbeStep::Tls, format!("TLS with {at} failed: {m}"))
        }
        other => (
            ProbeStep::Connect,
            format!("cannot connect to {at}: {other}"),
        ),
    };
    ProbeFailure {
        step,
        message: message.chars().take(500).collect(),
    }
}

/// A `.pgpass` line for any host, port, database and user, escaped as libpq reads it.
fn pgpass_line(password: &str) -> String {
    let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
    format!("*:*:*:*:{escaped}\n")
}

/// `pg_restore --verbose` says one of these per table-of-contents entry it restores.
fn is_restore_step(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("pg_restore: ") else {
        return false;
    };
    rest.starts_with("creating ")
        || rest.starts_with("processing data for table")
        || rest.starts_with("finished item")
        || rest.starts_with("executing ")
}

/// The bytes of the files in a directory (not recursive: a directory dump is flat).
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Runs a tool, handing each line of its standard error to `on_line` and calling `tick`
/// while it runs; fails with its last error lines.
async fn run_tool(
    mut cmd: tokio::process::Command,
    name: &str,
    on_line: impl Fn(&str),
    tick: impl Fn(),
) -> Result<(), EngineError> {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(io(format!("running {name}")))?;
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut errors: Vec<String> = Vec::new();
    let mut ticker = tokio::time::interval(DUMP_PROGRESS_EVERY);
    loop {
        tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    on_line(&line);
                    if line.contains("error:") || line.contains("ERROR:") || line.contains("FATAL:")
                        || line.contains("DETAIL:") {
                        if errors.len() == 6 {
                            errors.remove(0);
                        }
                        errors.push(line.trim().to_owned());
                    }
                }
                _ => break,
            },
            _ = ticker.tick() => tick(),
        }
    }
    let status = child
        .wait()
        .await
        .map_err(io(format!("waiting for {name}")))?;
    if status.success() {
        return Ok(());
    }
    Err(EngineError::Failed(format!(
        "{name} failed ({}): {}",
        status
            .code()
            .map_or_else(|| "killed".to_owned(), |c| format!("exit code {c}")),
        if errors.is_empty() {
            "it gave no reason".to_owned()
        } else {
            errors.join("; ")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgpass_escapes_colons_and_backslashes() {
        assert_eq!(pgpass_line(r"a:b\c"), "*:*:*:*:a\\:b\\\\c\n");
    }

    #[test]
    fn restore_steps_are_counted_from_verbose_lines() {
        assert!(is_restore_step("pg_restore: creating TABLE \"public.t\""));
        assert!(is_restore_step(
            "pg_restore: processing data for table \"public.t\""
        ));
        assert!(!is_restore_step(
            "pg_restore: connecting to database for restore"
        ));
    }
}
