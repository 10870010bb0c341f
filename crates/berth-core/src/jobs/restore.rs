//! `restore`: brings a new instance up from another instance's backups and archived WAL. A
//! running source first has its newest WAL archived (a marker commit and a WAL switch), so the
//! moment asked for is in the archive; the engine then restores, replays to the target and
//! promotes. The new instance records what it actually recovered to. A failed restore removes
//! everything of the new instance (its data and its own archive) and leaves its row `failed`
//! with the reason.

use std::time::Duration;

use berth_engine::{Owner, RecoveryTarget};
use berth_types::InstanceStatus;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Cx, Done, JobKind};
use crate::{App, AppError};

pub(crate) struct Restore;

impl JobKind for Restore {
    const DEADLINE: Duration = Duration::from_secs(4 * 3600);
    const ADVICE: &'static str =
        "nothing of it was kept; delete it and restore again (GET the source's restore-window first)";

    async fn run(cx: &Cx<'_>) -> Result<Done, AppError> {
        let p = &cx.job.payload;
        let bad = || AppError::Internal("restore job without its source".into());
        let verifier = p["password_verifier"].as_str().ok_or_else(bad)?;
        let source: Uuid = p["source_instance_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        let target = &p["target"];
        let at: Option<DateTime<Utc>> = target["at"].as_str().and_then(|s| s.parse().ok());
        let from = target["from"].as_str().map(str::to_owned);
        let source_row = berth_store::fleet::instances::get(cx.app.db(), source).await?;
        let running_source = source_row
            .as_ref()
            .filter(|r| r.status == InstanceStatus::Running && target["kind"] != "backup");
        // A running source: everything it committed so far goes to the archive first.
        // (Not before the backup restored from is consistent, which for one that just finished
        // is up to a second away.)
        let consistent_at: Option<DateTime<Utc>> = target["consistent_at"]
            .as_str()
            .and_then(|s| s.parse().ok());
        let sealed = match running_source {
            Some(row) => {
                cx.step("archive source").await?;
                let spec = super::instance_spec(row)?;
                loop {
                    let sealed = cx.engine.seal_archive(&spec).await?;
                    if consistent_at.is_none_or(|c| sealed.at >= c) {
                        break Some(sealed);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
            None => None,
        };
        let recovery = match (target["kind"].as_str(), at, from) {
            (Some("backup"), _, _) => RecoveryTarget::Backup {
                label: target["label"].as_str().ok_or_else(bad)?.to_owned(),
            },
            (Some("time"), Some(at), Some(from)) => RecoveryTarget::Time { at, from },
            // The latest state: to the seal of a running source, else the end of its archive.
            (Some("latest"), _, Some(from)) => {
                let stopped_at: Option<DateTime<Utc>> =
                    target["sealed_at"].as_str().and_then(|s| s.parse().ok());
                match (sealed, stopped_at) {
                    (Some(s), _) => RecoveryTarget::Time { at: s.at, from },
                    (None, Some(at)) if consistent_at.is_none_or(|c| at >= c) => {
                        RecoveryTarget::Time { at, from }
                    }
                    // Never sealed (it crashed): as far as its archive goes.
                    (None, _) => RecoveryTarget::Latest,
                }
            }
            _ => return Err(bad()),
        };
        cx.step("restore").await?;
        let spec = super::instance_spec(cx.instance)?;
        let cert = cx.app.server_certificate()?;
        let owner = Owner {
            username: &cx.instance.owner_username,
            database: &cx.instance.database_name,
            password_verifier: verifier,
        };
        let size = target["size"].as_i64();
        let progress = cx.progress(size);
        let recovered = cx
            .engine
            .restore(
                &spec,
                source,
                &recovery,
                owner,
                super::tls(&cert),
                &progress,
            )
            .await?;
        cx.step("firewall").await?;
        cx.app.apply_firewall(cx.engine, cx.instance).await?;
        berth_store::fleet::instances::set_recovered(
            cx.app.db(),
            cx.instance.id,
            recovered.time,
            recovered.lsn.as_deref(),
        )
        .await?;
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
            tracing::warn!(instance = %id, error = %e, "removing a failed restore's data failed");
        }
        if let Err(e) = engine.forget_backups(id).await {
            tracing::warn!(instance = %id, error = %e, "removing a failed restore's archive failed");
        }
        let _ = berth_store::fleet::backups::forget_instance(app.db(), id).await;
    }
}
