//! `import`: brings a new instance up empty, then replaces its owner database with a logical
//! copy of a data source's (the engine runs `pg_dump`/`pg_restore`; every object ends up the
//! owner's). The data source's password is opened only here, for the engine, and never
//! written to the job. A failed import removes everything of the new instance (its data and
//! its archive) and leaves its row `failed` with the reason, as a failed restore does.

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
        let p = &cx.job.payload;
        let bad = || AppError::Internal("import job without its source".into());
        let verifier = p["password_verifier"].as_str().ok_or_else(bad)?;
        let data_source: Uuid = p["data_source_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        cx.step("provision").await?;
        cx.app.provision(cx.engine, cx.instance, verifier).await?;
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
