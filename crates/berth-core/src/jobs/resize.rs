//! `resize`: the instance row already carries the new memory size (set when the job was
//! enqueued); the server is stopped and started with that size's settings, or stays stopped
//! if the instance is paused.

use std::time::Duration;

use super::{Cx, Done, JobKind};
use crate::AppError;

pub(crate) struct Resize;

impl JobKind for Resize {
    // Including a wait for a new instance's first backup (and, for a delete, archiving).
    const DEADLINE: Duration = Duration::from_secs(180);
    const ADVICE: &'static str = super::RETRY_ADVICE;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.let_first_backup_finish().await;
        super::restart::stop_then_start(cx).await
    }
}
