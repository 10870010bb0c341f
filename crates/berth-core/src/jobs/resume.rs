//! `resume`: starts a paused (or failed) instance's server again, with a fresh certificate.

use std::time::Duration;

use berth_types::{DesiredState, InstanceStatus, JobType};

use super::{Action, Cx, Done, JobKind};
use crate::AppError;

pub(crate) const ACTION: Action = Action {
    job_type: JobType::Resume,
    from: &[InstanceStatus::Paused, InstanceStatus::Failed],
    via: InstanceStatus::Resuming,
    desired: DesiredState::Running,
};

pub(crate) struct Resume;

impl JobKind for Resume {
    const DEADLINE: Duration = Duration::from_secs(60);
    const ADVICE: &'static str = super::RETRY_ADVICE;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        start(cx).await
    }
}

/// The one step of a resume (and of a repair).
pub(super) async fn start(cx: &Cx<'_>) -> Result<Done, AppError> {
    cx.step("start").await?;
    cx.start().await?;
    Ok(Done::Settled(InstanceStatus::Running))
}
