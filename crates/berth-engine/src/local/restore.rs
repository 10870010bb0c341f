//! Restoring a new instance from another's backups: pgBackRest restores the chosen backup into
//! a staging directory beside the new instance's data directory, which is renamed into place
//! only once complete (so an interrupted restore never leaves a data directory that looks
//! whole). The server then starts in recovery, replays archived WAL to the target and
//! promotes itself; only then does the new instance get its own owner password. It archives
//! into its own stanza from the start, so it is never written into the source's.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use sqlx::Connection;
use uuid::Uuid;

use super::LocalEngine;
use crate::{io, EngineError, InstanceSpec, Owner, Progress, Recovered, RecoveryTarget, Tls};

const POLL: Duration = Duration::from_millis(100);
/// How long a restored server may take to replay to a consistent state (from the backup's
/// start to its end) before it accepts connections.
const CONSISTENT_WITHIN: Duration = Duration::from_secs(4 * 3600);

impl LocalEngine {
    pub(super) async fn restore_cluster(
        &self,
        s: &InstanceSpec,
        source: Uuid,
        target: &RecoveryTarget,
        owner: Owner<'_>,
        tls: Tls<'_>,
        progress: &Progress<'_>,
    ) -> Result<Recovered, EngineError> {
        // The binaries must be there before anything is written.
        self.bins(s.major)?;
        let dir = self.dir(s.id);
        let pgdata = dir.join("pgdata");
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        std::fs::set_permissions(&self.cfg.root, std::fs::Permissions::from_mode(0o711))
            .map_err(io("securing the instances directory"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
            .map_err(io("securing the instance directory"))?;
        if !pgdata.join("PG_VERSION").is_file() {
            let staging = dir.join(".pgdata.restore");
            if staging.exists() {
                tokio::fs::remove_dir_all(&staging)
                    .await
                    .map_err(io("removing an interrupted restore"))?;
            }
            std::fs::create_dir(&staging).map_err(io("creating the restore directory"))?;
            std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o700))
                .map_err(io("securing the restore directory"))?;
            if let Some(u) = &self.cfg.run_as {
                std::os::unix::fs::chown(&staging, Some(u.uid), Some(u.gid))
                    .map_err(io("changing the owner of the restore directory"))?;
            }
            self.backrest
                .restore(source, &staging, target, progress)
                .await?;
            self.write_restore_command(source, &staging, &pgdata, &dir)?;
            std::fs::rename(&staging, &pgdata)
                .map_err(io("moving the restored cluster into place"))?;
        }
        self.backrest.create_stanza(s.id, &pgdata).await?;
        self.write_certificate(s.id, tls)?;
        // Nobody but Berth (its roles still have the source's passwords) until the new owner
        // password is set and `set_access` opens it.
        self.write_access_rules(&pgdata, &[])?;
        // A new instance starts with its memory class's settings, whatever the source had.
        self.write_user_settings(&pgdata, &[])?;
        self.start_cluster_within(s, CONSISTENT_WITHIN).await?;
        let recovered = self.wait_for_promotion(s).await?;
        self.configure_owner(s, owner).await?;
        Ok(recovered)
    }

    /// Waits until the server has replayed to its target and promoted itself, and returns where
    /// it stopped. A server that gives up (a target past the end of the archive) exits; its log
    /// says why.
    async fn wait_for_promotion(&self, s: &InstanceSpec) -> Result<Recovered, EngineError> {
        loop {
            if !self.is_running(s.id).await {
                return Err(EngineError::Failed(format!(
                    "the restored server stopped during recovery: {}",
                    self.log_tail(s.id)
                )));
            }
            match self.admin_connection(s).await {
                Ok(mut conn) => {
                    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                        .fetch_one(&mut conn)
                        .await?;
                    if !in_recovery {
                        let (time, lsn): (Option<chrono::DateTime<chrono::Utc>>, Option<String>) =
                            sqlx::query_as(
                                "SELECT pg_last_xact_replay_timestamp(), pg_last_wal_replay_lsn()::text",
                            )
                            .fetch_one(&mut conn)
                            .await?;
                        // The recovery settings served their purpose; a later crash recovery
                        // must not look for them.
                        for name in [
                            "restore_command",
                            "recovery_target_time",
                            "recovery_target_action",
                            "recovery_target",
                            "archive_mode",
                        ] {
                            sqlx::query(&format!("ALTER SYSTEM RESET {name}"))
                                .execute(&mut conn)
                                .await?;
                        }
                        let _ = conn.close().await;
                        return Ok(Recovered { time, lsn });
                    }
                    let _ = conn.close().await;
                }
                // Not accepting connections yet (still reaching consistency).
                Err(EngineError::Sql(_)) => {}
                Err(e) => return Err(e),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The last lines of the instance's server log, for messages.
    fn log_tail(&self, id: Uuid) -> String {
        let log = self.dir(id).join("postgres.log");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("FATAL") || l.contains("LOG:  recovery") || l.contains("ERROR"))
            .collect();
        let root = self.cfg.root.display().to_string();
        let tail = lines[lines.len().saturating_sub(3)..]
            .join("; ")
            .replace(&root, "<instances>");
        if tail.is_empty() {
            "no reason in its log".into()
        } else {
            tail
        }
    }
}

impl LocalEngine {
    /// The recovery settings pgBackRest wrote name the staging directory, and its queue (and
    /// lock) of prefetched WAL is shared by every restore of the same source. The server runs
    /// from the final directory (which archive-get checks) with a queue and lock of its own, so
    /// restores of one source at once do not wait on each other.
    fn write_restore_command(
        &self,
        source: Uuid,
        staging: &std::path::Path,
        pgdata: &std::path::Path,
        dir: &std::path::Path,
    ) -> Result<(), EngineError> {
        let work = dir.join("restore-work");
        for d in [work.clone(), work.join("spool"), work.join("lock")] {
            std::fs::create_dir_all(&d).map_err(io("creating the restore's work directory"))?;
            if let Some(u) = &self.cfg.run_as {
                std::os::unix::fs::chown(&d, Some(u.uid), Some(u.gid))
                    .map_err(io("changing the owner of the restore's work directory"))?;
            }
        }
        let auto = staging.join("postgresql.auto.conf");
        let text = std::fs::read_to_string(&auto).map_err(io("reading the recovery settings"))?;
        let command = self.backrest.restore_command(source, pgdata, &work);
        let fixed: Vec<String> = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("restore_command") {
                    format!("restore_command = '{}'", command.replace('\'', "''"))
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(&auto, fixed.join("\n") + "\n").map_err(io("writing the recovery settings"))
    }
}
