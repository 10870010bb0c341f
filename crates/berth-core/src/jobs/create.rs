//! `create`: brings a new instance up (from a template copy, or a claimed spare that is
//! already running) with the owner's password verifier the create request left in the job's
//! payload. The payload is cleared when the job finishes, so the verifier does not linger.

use std::time::Duration;

use berth_types::InstanceStatus;

use super::{Cx, Done, JobKind};
use crate::AppError;

pub(crate) struct Create;

impl JobKind for Create {
    // Copying a template and a first start (or crash recovery of a claimed spare).
    const DEADLINE: Duration = Duration::from_secs(120);
    const ADVICE: &'static str = "delete it and create it again";

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        cx.step("provision").await?;
        let verifier = cx.job.payload["password_verifier"]
            .as_str()
            .ok_or_else(|| AppError::Internal("create job without verifier".into()))?;
        cx.app.provision(cx.engine, cx.instance, verifier).await?;
        // A claimed spare comes with its first backup; a cold create takes one next.
        cx.step("catalog").await?;
        cx.app.catalog_backups(cx.engine, cx.instance, None).await?;
        if berth_store::fleet::backups::labels(cx.app.db(), cx.instance.id)
            .await?
            .is_empty()
        {
            return Ok(Done::SettledThenBackup(InstanceStatus::Running));
        }
        Ok(Done::Settled(InstanceStatus::Running))
    }
}
