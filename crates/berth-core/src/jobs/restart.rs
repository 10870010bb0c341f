//! `restart`: stops the instance's server and starts it again (unless it was paused
//! meanwhile), with a fresh certificate.

use std::time::Duration;

use berth_types::{DesiredState, InstanceStatus, JobType};

use super::{Action, Cx, Done, JobKind};
use crate::AppError;

pub(crate) const ACTION: Action = Action {
    job_type: JobType::Restart,
    from: &[InstanceStatus::Running, InstanceStatus::Failed],
    via: InstanceStatus::Restarting,
    desired: DesiredState::Running,
};

pub(crate) struct Restart;

impl JobKind for Restart {
    // Including a wait for a new instance's first backup (and, for a delete, archiving).
    const DEADLINE: Duration = Duration::from_secs(180);
    const ADVICE: &'static str = super::RETRY_ADVICE;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.let_first_backup_finish().await;
        stop_then_start(cx).await
    }
}

/// Stops the server, then starts it with the instance's current spec if it should be
/// running; the instance settles as it should be.
pub(super) async fn stop_then_start(cx: &Cx<'_>) -> Result<Done, AppError> {
    cx.step("stop").await?;
    cx.engine.stop(cx.instance.id).await?;
    if cx.instance.desired_state == DesiredState::Running {
        cx.step("start").await?;
        cx.start().await?;
    }
    Ok(Done::Settled(
        if cx.instance.desired_state == DesiredState::Paused {
            InstanceStatus::Paused
        } else {
            InstanceStatus::Running
        },
    ))
}
