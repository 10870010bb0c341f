//! `pause`: stops a running instance's server; its data stays and it uses no memory.

use std::time::Duration;

use berth_types::{DesiredState, InstanceStatus, JobType};

use super::{Action, Cx, Done, JobKind};
use crate::AppError;

pub(crate) const ACTION: Action = Action {
    job_type: JobType::Pause,
    from: &[InstanceStatus::Running],
    via: InstanceStatus::Pausing,
    desired: DesiredState::Paused,
};

pub(crate) struct Pause;

impl JobKind for Pause {
    // Including a wait for a new instance's first backup and the archiving of its last WAL.
    const DEADLINE: Duration = Duration::from_secs(180);
    const ADVICE: &'static str = super::RETRY_ADVICE;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.let_first_backup_finish().await;
        cx.step("archive").await?;
        cx.seal_archive().await;
        cx.step("stop").await?;
        cx.engine.stop(cx.instance.id).await?;
        Ok(Done::Settled(InstanceStatus::Paused))
    }
}
