//! `import`: brings a new instance up empty, then replaces its owner database with a logical
//! copy of a data source's (the engine runs `pg_dump`/`pg_restore`; every object ends up the
//! owner's). The data source's password is opened only here, for the engine, and never
//! written to the job. A failed import removes everything of the new instance (its data and
//! its archive) and leaves its row `failed` with the reason, as a failed restore does.
//!
//! [`Reimport`] is the same copy into an instance that exists and runs (a refresh): its owner
//! database is replaced; a failure leaves the instance running with the database as far as the
//! restore got, and the job says why.

use std::time::Duration;

use berth_types::InstanceStatus;
use uuid::Uuid;

use super::{Cx, Done, JobKind};
use crate::fleet::data_sources::external;
use crate::{App, AppError};

pub(crate) struct Import;

impl JobKind for Import {
    const DEADLINE: Duration = Duration::from_secs(6 * 3600);
    const ADVICE: &'static str = "nothing of it was kept; check the data source \
        (POST /api/v1/data-sources/{id}/test), then delete this instance and import again";

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        let verifier = cx.job.payload["password_verifier"]
            .as_str()
            .ok_or_else(|| AppError::Internal("import job without verifier".into()))?;
        cx.step("provision").await?;
        cx.app.provision(cx.engine, cx.instance, verifier).await?;
        copy(cx).await?;
        cx.step("firewall").await?;
        cx.app.apply_firewall(cx.engine, cx.instance).await?;
        Ok(Done::SettledThenBackup(InstanceStatus::Running))
    }

    async fn failed(
        app: &App,
        engine: &dyn berth_engine::Engine,
        job: &berth_store::fleet::jobs::JobRow,
        _reason: &str,
    ) {
        let Some(id) = job.instance_id else { return };
        if let Err(e) = engine.destroy(id).await {
            tracing::warn!(instance = %id, error = %e, "removing a failed import's data failed");
        }
        if let Err(e) = engine.forget_backups(id).await {
            tracing::warn!(instance = %id, error = %e, "removing a failed import's archive failed");
        }
        let _ = berth_store::fleet::backups::forget_instance(app.db(), id).await;
    }
}

pub(crate) struct Reimport;

impl JobKind for Reimport {
    const DEADLINE: Duration = Import::DEADLINE;
    const ADVICE: &'static str = "the instance runs with its database as far as the copy got; \
        check the data source (POST /api/v1/data-sources/{id}/test) and import again";
    // The instance goes on serving; the job says what failed.
    const FAILS_INSTANCE: bool = false;

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        let data_source = copy(cx).await?;
        berth_store::fleet::instances::set_imported_from(cx.app.db(), cx.instance.id, data_source)
            .await?;
        Ok(Done::Unchanged)
    }
}

/// The `import` step: the data source's database copied over the instance's owner database.
async fn copy(cx: &Cx<'_>) -> Result<Uuid, AppError> {
    let data_source: Uuid = cx.job.payload["data_source_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| AppError::Internal("import job without its source".into()))?;
    cx.step("import").await?;
    let row = berth_store::fleet::data_sources::get(cx.app.db(), data_source)
        .await?
        .ok_or_else(|| {
            AppError::Unavailable(format!(
                "data source {data_source} was deleted before its import ran"
            ))
        })?;
    let password = cx.app.open_password(&row)?;
    let spec = super::instance_spec(cx.instance)?;
    let progress = cx.progress(None);
    let imported = cx
        .engine
        .import(
            &spec,
            external(&row, &password),
            &cx.instance.owner_username,
            &cx.instance.database_name,
            &progress,
        )
        .await?;
    tracing::info!(instance = %cx.instance.id, objects = imported.objects,
        source_major = imported.source_major, "import done");
    Ok(data_source)
}
