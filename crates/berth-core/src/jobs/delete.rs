//! `delete`: archives the instance's newest WAL, destroys its server and data, then marks its
//! row deleted (releasing its name and port) in the same transaction that records the job's
//! success. Its backups and archive stay until its retention runs out
//! (`background::backups`), so it can be restored.

use std::time::Duration;

use super::{Cx, Done, JobKind};
use crate::AppError;

pub(crate) struct Delete;

impl JobKind for Delete {
    // Including a wait for a new instance's first backup (and, for a delete, archiving).
    const DEADLINE: Duration = Duration::from_secs(180);
    const ADVICE: &'static str = "delete it again to retry";

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.let_first_backup_finish().await;
        cx.step("archive").await?;
        cx.seal_archive().await;
        cx.step("destroy").await?;
        cx.engine.destroy(cx.instance.id).await?;
        Ok(Done::Deleted)
    }
}
