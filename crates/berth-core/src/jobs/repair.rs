//! `repair`: started by Berth itself (the supervisor) when the server of an instance that
//! should be running is gone. Starting it again lets PostgreSQL recover from its WAL.

use std::time::Duration;

use super::{Cx, Done, JobKind};
use crate::AppError;

pub(crate) struct Repair;

impl JobKind for Repair {
    const DEADLINE: Duration = Duration::from_secs(60);
    const ADVICE: &'static str = super::RETRY_ADVICE;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        super::resume::start(cx).await
    }
}
