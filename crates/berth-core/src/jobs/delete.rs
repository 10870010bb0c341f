//! `delete`: archives the instance's newest WAL, destroys its server and data, then marks its
//! row deleted (releasing its name and port) in the same transaction that records the job's
//! success. Its backups and archive stay until its retention runs out
//! (`background::backups`), so it can be restored.

use std::time::Duration;

use super::{Cx, Done, JobKind};
use crate::AppError;

pub(crate) struct Delete;

impl JobKind for Delete {
    const DEADLINE: Duration = Duration::from_secs(90);
    const ADVICE: &'static str = "delete it again to retry";

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.step("archive").await?;
        cx.seal_archive().await;
        cx.step("destroy").await?;
        cx.engine.destroy(cx.instance.id).await?;
        Ok(Done::Deleted)
    }
}
