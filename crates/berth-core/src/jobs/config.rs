//! `config`: makes the instance run with the parameters its users set. A running server
//! rereads them at once (PostgreSQL checks them first and keeps the old ones if it refuses
//! one); with a restart asked for, it is then restarted if any changed value waits for one.
//! A stopped server reads them at its next start.

use std::time::Duration;

use berth_engine::{Engine, Observed};
use berth_store::fleet::jobs::JobRow;
use berth_types::InstanceStatus;

use super::{Cx, Done, JobKind};
use crate::{App, AppError};

pub(crate) struct Config;

impl JobKind for Config {
    // Including a wait for a new instance's first backup before a restart.
    const DEADLINE: Duration = Duration::from_secs(180);
    const ADVICE: &'static str =
        "the parameters are saved; change them again (or restart the instance) to apply them";
    const FAILS_INSTANCE: bool = false;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.step("apply").await?;
        cx.app.apply_config(cx.engine, cx.instance).await?;
        // Set by the request when it asked for a restart of a running instance.
        if cx.instance.status != InstanceStatus::Updating {
            return Ok(Done::Unchanged);
        }
        if cx.engine.observe(cx.instance.id).await? == Observed::Running
            && cx
                .app
                .pending_restart(cx.engine, cx.instance)
                .await?
                .is_empty()
        {
            return Ok(Done::Settled(InstanceStatus::Running));
        }
        cx.let_first_backup_finish().await;
        super::restart::stop_then_start(cx).await
    }

    /// A refused value leaves the server running as it was: the instance is not `failed` for
    /// it, only if the restart left it stopped.
    async fn failed(app: &App, engine: &dyn Engine, job: &JobRow, reason: &str) {
        let Some(id) = job.instance_id else { return };
        let Ok(Some(row)) = berth_store::fleet::instances::get(app.db(), id).await else {
            return;
        };
        if row.status != InstanceStatus::Updating {
            return;
        }
        let (status, message) = match engine.observe(id).await {
            Ok(Observed::Running) => (InstanceStatus::Running, None),
            _ => (
                InstanceStatus::Failed,
                Some(format!("config failed: {reason}; {}", super::RETRY_ADVICE)),
            ),
        };
        let _ = berth_store::fleet::instances::set_status(app.db(), id, status, message.as_deref())
            .await;
    }
}
