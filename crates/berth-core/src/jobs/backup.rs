//! `backup`: takes a backup of a running instance with the backup tool, which then expires
//! what the instance's retention no longer needs, and mirrors the repository into the store.
//! The instance goes on serving throughout, and a failed backup leaves it as it was. A backup
//! runs beside the instance's other jobs (see the `jobs` indexes): one that stops the server
//! (a pause, a restart) makes the backup fail rather than wait for it. Run again after a
//! crash, the tool resumes or restarts the interrupted backup.

use std::time::Duration;

use berth_types::{BackupTrigger, BackupType};

use super::{Cx, Done, JobKind};
use crate::{App, AppError};

pub(crate) struct Backup;

impl JobKind for Backup {
    // A large database at tens of MB/s; the tool has its own timeouts for a stuck server.
    const DEADLINE: Duration = Duration::from_secs(4 * 3600);
    const ADVICE: &'static str = "the instance is unchanged; take another backup to retry";
    const FAILS_INSTANCE: bool = false;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        let (id, kind, trigger) = payload(cx.job)?;
        // An instance's first backup, taken as it is created, yields to the creates around it.
        let priority = match trigger {
            BackupTrigger::Initial => berth_engine::Priority::Background,
            _ => berth_engine::Priority::Normal,
        };
        let spec = super::instance_spec(cx.instance)?;
        cx.step("backup").await?;
        wait_until_serving(cx).await?;
        berth_store::fleet::backups::set_running(cx.app.db(), id).await?;
        let policy = cx.app.policy_of(cx.instance.id).await?;
        let retention = crate::fleet::backups::retention(&policy);
        let progress = cx.progress(None);
        let started = cx.job.started_at.unwrap_or_else(chrono::Utc::now);
        // Another backup tool process still holding the stanza (one a crash left behind dies
        // with it, but may take a moment): wait for it, within the deadline.
        loop {
            match cx
                .engine
                .backup(&spec, kind, retention, &progress, priority)
                .await
            {
                Err(berth_engine::EngineError::Busy(_)) => {
                    tokio::time::sleep(Duration::from_secs(1)).await
                }
                other => break other?,
            }
        }
        cx.step("catalog").await?;
        cx.app
            .catalog_backups(cx.engine, cx.instance, Some((id, kind, started)))
            .await?;
        Ok(Done::Unchanged)
    }

    async fn failed(
        app: &App,
        _engine: &dyn berth_engine::Engine,
        job: &berth_store::fleet::jobs::JobRow,
        reason: &str,
    ) {
        if let Ok((id, _, _)) = payload(job) {
            let _ = berth_store::fleet::backups::set_failed(app.db(), id, reason).await;
        }
    }
}

/// The server must be up. Just after Berth starts, the supervisor may not have adopted it yet:
/// wait for that while the instance is meant to be running.
async fn wait_until_serving(cx: &Cx<'_>) -> Result<(), AppError> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if cx.engine.observe(cx.instance.id).await? == berth_engine::Observed::Running {
            return Ok(());
        }
        let status = berth_store::fleet::instances::get(cx.app.db(), cx.instance.id)
            .await?
            .map(|r| r.status);
        if status != Some(berth_types::InstanceStatus::Running)
            || tokio::time::Instant::now() >= give_up
        {
            return Err(AppError::Unavailable(
                "the instance's server is not running (paused or stopped); its WAL up to then is archived"
                    .into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn payload(
    job: &berth_store::fleet::jobs::JobRow,
) -> Result<(uuid::Uuid, BackupType, BackupTrigger), AppError> {
    let bad = || AppError::Internal("backup job without its backup".into());
    let id = job.payload["backup_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let kind = job.payload["type"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    let trigger = job.payload["trigger"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(BackupTrigger::Manual);
    Ok((id, kind, trigger))
}
