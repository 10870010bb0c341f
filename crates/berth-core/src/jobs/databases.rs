//! `databases`: makes the running instance's databases made through the API what it says
//! (created with their owner, or dropped with their sessions ended). The instance's status
//! does not change.

use std::time::Duration;

use super::{Cx, Done, JobKind};
use crate::AppError;

pub(crate) struct Databases;

impl JobKind for Databases {
    const DEADLINE: Duration = Duration::from_secs(300);
    const ADVICE: &'static str =
        "the change is saved; the next change of the instance's databases applies it again";
    const FAILS_INSTANCE: bool = false;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.step("apply").await?;
        cx.app.apply_databases(cx.engine, cx.instance).await?;
        Ok(Done::Unchanged)
    }
}
