//! pgBackRest, as the local engine drives it: one stanza per instance, named by the instance's
//! id, in one repository per Berth server. Berth writes the tool's configuration (the
//! repository and the tool's own working directories) once, in its data directory; everything
//! that differs per instance (the stanza, the data directory, the port) is passed on each
//! command line, so the configuration of a deleted instance's stanza never needs to exist and a
//! restore can read any stanza.
//!
//! Archiving is asynchronous (`archive-async`): PostgreSQL's `archive_command` hands segments
//! to a pgBackRest process that pushes them in batches and in parallel, which keeps up with a
//! bulk load of 1 MB segments where one process per segment would not.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use berth_types::BackupType;
use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use uuid::Uuid;

use super::BackupSettings;
use crate::{io, BackupRecord, EngineError, Priority, Progress, RecoveryTarget, Retention};

/// The superuser pgBackRest connects as, over the instance's private socket.
const PG_USER: &str = "postgres";

pub(super) struct PgBackRest {
    program: PathBuf,
    config: PathBuf,
    run_as: Option<berth_pg::RunAs>,
    /// Host paths and what error messages (which tenants read) say instead.
    redact: Vec<(String, &'static str)>,
}

/// Where a running instance's server is, for the commands that connect to it.
pub(super) struct Server<'a> {
    pub data_dir: &'a Path,
    pub socket_dir: &'a Path,
    pub port: u16,
}

impl PgBackRest {
    /// Writes the configuration and makes the repository and working directories (owned by the
    /// PostgreSQL user, which runs every command).
    pub(super) fn prepare(
        s: &BackupSettings,
        run_as: Option<&berth_pg::RunAs>,
    ) -> Result<PgBackRest, EngineError> {
        let program = find_program().ok_or_else(|| {
            EngineError::Failed(
                "pgBackRest is not installed (run scripts/prereqs.sh, or apt-get install \
                 pgbackrest); Berth archives every instance's WAL with it"
                    .into(),
            )
        })?;
        for dir in [
            s.repository.clone(),
            s.work_dir.join("lock"),
            s.work_dir.join("log"),
            s.work_dir.join("spool"),
        ] {
            std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
            chown(&dir, run_as)?;
        }
        // Only the PostgreSQL user reads backups (they hold every instance's data).
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&s.repository, std::fs::Permissions::from_mode(0o700))
            .map_err(io("securing the backup repository"))?;
        let w = &s.work_dir;
        let config = format!(
            "# Written by Berth at every start; changes here are lost.\n\
             [global]\n\
             repo1-path={repo}\n\
             repo1-retention-full-type=count\n\
             repo1-retention-full=9999999\n\
             lock-path={lock}\n\
             log-path={log}\n\
             spool-path={spool}\n\
             log-level-file=off\n\
             log-level-console=warn\n\
             log-level-stderr=off\n\
             archive-async=y\n\
             archive-timeout=60\n\
             process-max={procs}\n\
             compress-type=lz4\n\
             start-fast=y\n\
             delta=y\n",
            repo = s.repository.display(),
            lock = w.join("lock").display(),
            log = w.join("log").display(),
            spool = w.join("spool").display(),
            procs = s.process_max.max(1),
        );
        let path = w.join("pgbackrest.conf");
        let tmp = w.join(".pgbackrest.conf.tmp");
        std::fs::write(&tmp, config).map_err(io(format!("writing {}", tmp.display())))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(io("securing the pgBackRest configuration"))?;
        chown(&tmp, run_as)?;
        std::fs::rename(&tmp, &path).map_err(io(format!("replacing {}", path.display())))?;
        Ok(PgBackRest {
            program,
            config: path,
            run_as: run_as.cloned(),
            redact: vec![
                (s.repository.display().to_string(), "<repository>"),
                (s.work_dir.display().to_string(), "<backups>"),
            ],
        })
    }

    /// Also hides `path` from error messages, as `name`.
    pub(super) fn redact(&mut self, path: &Path, name: &'static str) {
        self.redact.push((path.display().to_string(), name));
    }

    /// The instance's `archive_command`.
    pub(super) fn archive_command(&self, id: Uuid, data_dir: &Path) -> String {
        format!(
            "{} --config={} --stanza={id} --pg1-path={} archive-push %p",
            shell_quote(&self.program.display().to_string()),
            shell_quote(&self.config.display().to_string()),
            shell_quote(&data_dir.display().to_string()),
        )
    }

    /// The `restore_command` of a server restored from `source` into `data_dir`, prefetching
    /// WAL into `work/spool` under the lock `work/lock`: its own, since the prefetching process
    /// takes a lock named by the source's stanza, which every other restore of that source
    /// would wait for (reading the repository needs no lock shared with writers).
    pub(super) fn restore_command(&self, source: Uuid, data_dir: &Path, work: &Path) -> String {
        format!(
            "{} --config={} --stanza={source} --pg1-path={} --spool-path={} --lock-path={} archive-get %f \"%p\"",
            shell_quote(&self.program.display().to_string()),
            shell_quote(&self.config.display().to_string()),
            shell_quote(&data_dir.display().to_string()),
            shell_quote(&work.join("spool").display().to_string()),
            shell_quote(&work.join("lock").display().to_string()),
        )
    }

    /// Creates the instance's stanza from its (stopped or running) data directory; nothing
    /// happens if it exists.
    pub(super) async fn create_stanza(&self, id: Uuid, data_dir: &Path) -> Result<(), EngineError> {
        // Not again when it exists: that needs the archive lock, which archiving holds.
        if self.stanza_exists(id).await? {
            return Ok(());
        }
        self.run(
            id,
            &[
                format!("--pg1-path={}", data_dir.display()),
                "--no-online".into(),
                "stanza-create".into(),
            ],
        )
        .await
        .map(drop)
    }

    /// A backup of a running server, then the expiry `retention` asks for; at the lowest CPU
    /// priority if it is `Priority::Background` work.
    pub(super) async fn backup(
        &self,
        id: Uuid,
        server: &Server<'_>,
        kind: BackupType,
        retention: Retention,
        progress: &Progress<'_>,
        priority: Priority,
    ) -> Result<(), EngineError> {
        let mut args = vec![
            format!("--pg1-path={}", server.data_dir.display()),
            format!("--pg1-socket-path={}", server.socket_dir.display()),
            format!("--pg1-port={}", server.port),
            format!("--pg1-user={PG_USER}"),
            "--pg1-database=postgres".into(),
            format!("--type={kind}"),
            "--log-level-console=detail".into(),
        ];
        args.extend(retention_args(retention));
        args.push("backup".into());
        self.run_with_progress(id, &args, progress, priority).await
    }

    /// Expires what `retention` no longer needs.
    pub(super) async fn expire(&self, id: Uuid, retention: Retention) -> Result<(), EngineError> {
        let mut args = retention_args(retention);
        args.push("expire".into());
        self.run(id, &args).await.map(drop)
    }

    /// Removes one backup.
    pub(super) async fn expire_backup(&self, id: Uuid, label: &str) -> Result<(), EngineError> {
        self.run(id, &[format!("--set={label}"), "expire".into()])
            .await
            .map(drop)
    }

    /// The stanza's backups, oldest first (none if the stanza does not exist).
    pub(super) async fn info(&self, id: Uuid) -> Result<Vec<BackupRecord>, EngineError> {
        let out = self
            .run(id, &["--output=json".into(), "info".into()])
            .await?;
        parse_info(&out)
    }

    /// Restores `source` into `data_dir` (which must be empty or absent), set up to recover to
    /// `target` and promote.
    pub(super) async fn restore(
        &self,
        source: Uuid,
        data_dir: &Path,
        target: &RecoveryTarget,
        progress: &Progress<'_>,
    ) -> Result<(), EngineError> {
        let mut args = vec![
            format!("--pg1-path={}", data_dir.display()),
            "--log-level-console=detail".into(),
            // The restored server archives into its own stanza, set on its command line; this
            // keeps it from ever writing into the source's.
            "--archive-mode=off".into(),
        ];
        match target {
            RecoveryTarget::Latest => args.push("--type=default".into()),
            RecoveryTarget::Backup { label } => {
                args.extend([format!("--set={label}"), "--type=immediate".into()]);
                args.push("--target-action=promote".into());
            }
            RecoveryTarget::Time { at, from } => {
                args.extend([
                    format!("--set={from}"),
                    "--type=time".into(),
                    format!("--target={}", at.format("%Y-%m-%d %H:%M:%S%.6f+00")),
                    "--target-action=promote".into(),
                ]);
            }
        }
        args.push("restore".into());
        self.run_with_progress(source, &args, progress, Priority::Normal)
            .await
    }

    /// Whether the stanza exists (status 1 and 3: its directories or files are missing).
    async fn stanza_exists(&self, id: Uuid) -> Result<bool, EngineError> {
        let out = self
            .run(id, &["--output=json".into(), "info".into()])
            .await?;
        let stanzas: Vec<InfoStanza> = serde_json::from_str(&out)
            .map_err(|e| EngineError::Failed(format!("reading pgBackRest info: {e}")))?;
        Ok(stanzas.iter().any(|s| !matches!(s.status.code, 1 | 3)))
    }

    /// Removes the stanza: its backups and archive (nothing if it does not exist).
    pub(super) async fn delete_stanza(&self, id: Uuid, data_dir: &Path) -> Result<(), EngineError> {
        if !self.stanza_exists(id).await? {
            return Ok(());
        }
        self.run(id, &["stop".into()]).await?;
        self.run(
            id,
            &[
                format!("--pg1-path={}", data_dir.display()),
                "--force".into(),
                "stanza-delete".into(),
            ],
        )
        .await
        .map(drop)
    }

    fn command(&self, stanza: Uuid, args: &[String]) -> tokio::process::Command {
        let mut cmd = berth_pg::tool_command(&self.program, self.run_as.as_ref());
        // Its sessions with the server must not inherit the timeouts users may configure.
        cmd.env("PGOPTIONS", super::UNLIMITED_SESSION_OPTIONS)
            .arg(format!("--config={}", self.config.display()))
            .arg(format!("--stanza={stanza}"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs one command and returns its standard output.
    async fn run(&self, stanza: Uuid, args: &[String]) -> Result<String, EngineError> {
        let out = self
            .command(stanza, args)
            .output()
            .await
            .map_err(io("running pgbackrest"))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(self.failure(
            args.last().map_or("", String::as_str),
            out.status.code(),
            &String::from_utf8_lossy(&out.stdout),
            &String::from_utf8_lossy(&out.stderr),
        ))
    }

    /// Runs a command that logs each file it copies (`--log-level-console=detail`), reporting
    /// the percentage those lines end with.
    async fn run_with_progress(
        &self,
        stanza: Uuid,
        args: &[String],
        progress: &Progress<'_>,
        priority: Priority,
    ) -> Result<(), EngineError> {
        let mut cmd = self.command(stanza, args);
        if priority == Priority::Background {
            // SAFETY: setpriority is async-signal-safe; it runs in the child before exec.
            unsafe {
                cmd.pre_exec(|| {
                    // (Lowering one's own priority needs no privilege; a failure only means it
                    // runs at the normal one.)
                    libc::setpriority(libc::PRIO_PROCESS, 0, 19);
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().map_err(io("running pgbackrest"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let errors = tokio::spawn(async move {
            let mut s = String::new();
            let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await;
            s
        });
        let mut lines = BufReader::new(stdout).lines();
        // Errors and warnings, kept for the message if the command fails.
        let mut notes = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(p) = percent(&line) {
                progress(p);
            } else if (line.contains("ERROR:") || line.contains("WARN:")) && notes.len() < 4096 {
                notes.push_str(&line);
                notes.push('\n');
            }
        }
        let status = child.wait().await.map_err(io("waiting for pgbackrest"))?;
        let stderr = errors.await.unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        Err(self.failure(
            args.last().map_or("", String::as_str),
            status.code(),
            &notes,
            &stderr,
        ))
    }
}

fn retention_args(r: Retention) -> Vec<String> {
    match r {
        Retention::Days(d) => vec![
            "--repo1-retention-full-type=time".into(),
            format!("--repo1-retention-full={d}"),
        ],
        Retention::FullBackups(n) => vec![
            "--repo1-retention-full-type=count".into(),
            format!("--repo1-retention-full={n}"),
        ],
    }
}

/// pgBackRest's exit code 50 means another process holds the stanza's lock.
const LOCK_ACQUIRE_ERROR: i32 = 50;

impl PgBackRest {
    /// The error of a failed command: its first lines, without this host's paths.
    fn failure(&self, command: &str, code: Option<i32>, stdout: &str, stderr: &str) -> EngineError {
        let mut text = format!("{stdout}\n{stderr}");
        for (path, name) in &self.redact {
            if !path.is_empty() {
                text = text.replace(path.as_str(), name);
            }
        }
        failure(command, code, &text)
    }
}

fn failure(command: &str, code: Option<i32>, output: &str) -> EngineError {
    let text: String = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("HINT"))
        .take(6)
        .collect::<Vec<_>>()
        .join("; ");
    let message = format!(
        "pgBackRest {command} failed ({}): {text}",
        code.map_or_else(|| "killed".to_owned(), |c| format!("exit {c}"))
    );
    if code == Some(LOCK_ACQUIRE_ERROR) {
        EngineError::Busy(message)
    } else {
        EngineError::Failed(message)
    }
}

/// The percentage at the end of a `backup file …` or `restore file …` detail line:
/// `… (768KB, 3.42%) checksum …`.
fn percent(line: &str) -> Option<f32> {
    if !line.contains(" file ") {
        return None;
    }
    let end = line.find("%)")?;
    let start = line[..end].rfind(", ")? + 2;
    line[start..end].parse().ok()
}

#[derive(Deserialize)]
struct InfoStanza {
    #[serde(default)]
    backup: Vec<InfoBackup>,
    status: InfoStatus,
}

#[derive(Deserialize)]
struct InfoStatus {
    /// 0 ok, 1 missing stanza path, 2 no valid backups, …
    code: i32,
}

#[derive(Deserialize)]
struct InfoBackup {
    label: String,
    #[serde(rename = "type")]
    kind: String,
    prior: Option<String>,
    #[serde(default)]
    error: bool,
    timestamp: InfoRange<i64>,
    archive: InfoRange<Option<String>>,
    lsn: Option<InfoRange<Option<String>>>,
    info: InfoSizes,
}

#[derive(Deserialize)]
struct InfoRange<T> {
    start: T,
    stop: T,
}

#[derive(Deserialize)]
struct InfoSizes {
    size: i64,
    repository: InfoRepoSize,
}

#[derive(Deserialize)]
struct InfoRepoSize {
    delta: i64,
}

fn parse_info(json: &str) -> Result<Vec<BackupRecord>, EngineError> {
    let stanzas: Vec<InfoStanza> = serde_json::from_str(json)
        .map_err(|e| EngineError::Failed(format!("reading pgBackRest info: {e}")))?;
    let time = |t: i64| {
        Utc.timestamp_opt(t, 0)
            .single()
            .unwrap_or(DateTime::UNIX_EPOCH)
    };
    let mut out = Vec::new();
    for b in stanzas.into_iter().flat_map(|s| s.backup) {
        // A backup with page checksum errors is still listed by pgBackRest; it restores, but
        // Berth shows only clean ones.
        if b.error {
            tracing::warn!(label = %b.label, "pgBackRest reports errors in a backup; not listing it");
            continue;
        }
        let kind = match b.kind.as_str() {
            "full" => BackupType::Full,
            "diff" => BackupType::Diff,
            "incr" => BackupType::Incr,
            _ => continue,
        };
        let lsn = b.lsn.unwrap_or(InfoRange {
            start: None,
            stop: None,
        });
        out.push(BackupRecord {
            label: b.label,
            kind,
            prior: b.prior,
            started_at: time(b.timestamp.start),
            finished_at: time(b.timestamp.stop),
            size: b.info.size,
            repository_size: b.info.repository.delta,
            wal_start: b.archive.start.unwrap_or_default(),
            wal_stop: b.archive.stop.unwrap_or_default(),
            lsn_start: lsn.start.unwrap_or_default(),
            lsn_stop: lsn.stop.unwrap_or_default(),
        });
    }
    Ok(out)
}

fn find_program() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/local/bin".into()])
        .map(|d| d.join("pgbackrest"))
        .find(|p| p.is_file())
}

fn chown(path: &Path, run_as: Option<&berth_pg::RunAs>) -> Result<(), EngineError> {
    if let Some(u) = run_as {
        std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
            .map_err(io(format!("changing the owner of {}", path.display())))?;
    }
    Ok(())
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_read_from_detail_lines() {
        let line = "2026-12-01 23:54:10.327 P01 DETAIL: backup file /x/base/5/1255 (768KB, 3.42%) checksum 94ea";
        assert_eq!(percent(line), Some(3.42));
        assert_eq!(percent("P00 INFO: backup start archive = 0000000100"), None);
        assert_eq!(
            percent("P01 DETAIL: restore file /x/global/pg_control (8KB, 100.00%) checksum a"),
            Some(100.0)
        );
    }

    #[test]
    fn info_lists_clean_backups_with_their_dependencies() {
        let json = r#"[{"archive":[],"backup":[
          {"archive":{"start":"000000010000000000000007","stop":"000000010000000000000008"},
           "error":false,"info":{"delta":1,"repository":{"delta":4527004,"size":4527004},"size":22992372},
           "label":"20261201-235402F","lsn":{"start":"0/700028","stop":"0/800050"},"prior":null,
           "reference":null,"timestamp":{"start":1796169242,"stop":1796169244},"type":"full"},
          {"archive":{"start":"00000001000000000000000B","stop":"00000001000000000000000D"},
           "error":false,"info":{"delta":8456,"repository":{"delta":489,"size":4527004},"size":22992372},
           "label":"20261201-235402F_20261201-235415I","lsn":{"start":"0/B00028","stop":"0/D00088"},
           "prior":"20261201-235402F","reference":["20261201-235402F"],
           "timestamp":{"start":1796169255,"stop":1796169257},"type":"incr"},
          {"archive":{"start":null,"stop":null},"error":true,"info":{"delta":0,"repository":{"delta":0,"size":0},"size":0},
           "label":"bad","prior":null,"timestamp":{"start":0,"stop":0},"type":"full"}],
          "status":{"code":0,"message":"ok"}}]"#;
        let b = parse_info(json).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b[1].kind, BackupType::Incr);
        assert_eq!(b[1].prior.as_deref(), Some("20261201-235402F"));
        assert_eq!(b[0].repository_size, 4527004);
        assert_eq!(b[0].finished_at.timestamp(), 1796169244);
        assert!(
            parse_info(r#"[{"status":{"code":1,"message":"missing stanza path"}}]"#)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn error_messages_do_not_show_this_hosts_paths() {
        let b = PgBackRest {
            program: "/usr/bin/pgbackrest".into(),
            config: "/d/backups/pgbackrest.conf".into(),
            run_as: None,
            redact: vec![
                ("/d/backups/repository".into(), "<repository>"),
                ("/d/backups".into(), "<backups>"),
                ("/d/instances".into(), "<instances>"),
            ],
        };
        let e = b.failure(
            "backup",
            Some(47),
            "ERROR: [047]: unable to create path '/d/backups/repository/backup/x': Permission denied",
            "HINT: check /d/instances/x/pgdata\nWARN: /d/backups/lock held",
        );
        let text = e.to_string();
        assert!(!text.contains("/d/"), "{text}");
        assert!(
            text.contains("'<repository>/backup/x'") && text.contains("<backups>/lock"),
            "{text}"
        );
        assert!(matches!(
            b.failure("backup", Some(50), "locked", ""),
            EngineError::Busy(_)
        ));
    }

    #[test]
    fn paths_in_the_archive_command_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/a b/it's"), r"'/a b/it'\''s'");
    }
}
