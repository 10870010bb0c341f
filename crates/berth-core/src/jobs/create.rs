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
        let spare = cx.job.payload["spare"] == true;
        // A claimed spare runs already: it only gets the owner's password and a certificate.
        cx.step(if spare { "claim spare" } else { "provision" })
            .await?;
        let verifier = cx.job.payload["password_verifier"]
            .as_str()
            .ok_or_else(|| AppError::Internal("create job without verifier".into()))?;
        cx.app.provision(cx.engine, cx.instance, verifier).await?;
        cx.step("firewall").await?;
        cx.app.apply_firewall(cx.engine, cx.instance).await?;
        if !spare || cx.job.payload["spare_backed_up"] != true {
            // A cold create, or a spare claimed before the pool had time to back it up, takes
            // its first backup next.
            return Ok(Done::SettledThenBackup(InstanceStatus::Running));
        }
        // This spare comes with its first backup: recorded beside, not while the user waits,
        // and after a burst of creates rather than during it (the backup scheduler catches up
        // should this not get through).
        let (app, row) = (cx.app.clone(), cx.instance.clone());
        tokio::spawn(async move {
            app.after_creates_pause().await;
            let engine = app.engine().clone();
            if let Err(e) = app.catalog_backups(engine.as_ref(), &row, None).await {
                tracing::warn!(instance = %row.id, error = %e, "recording a spare's first backup failed");
            }
        });
        Ok(Done::Settled(InstanceStatus::Running))
    }
}
