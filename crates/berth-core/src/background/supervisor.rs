//! Supervision: instances that should be running are brought up when Berth starts (adopting
//! any still running), and a postmaster that dies is noticed within seconds and repaired by a
//! `repair` job. What an interrupted delete left in the engine is removed.

use std::collections::HashSet;
use std::time::Duration;

use berth_engine::{Engine, Observed};
use berth_store::fleet::instances::InstanceRow;
use berth_types::{DesiredState, InstanceStatus, JobType};
use uuid::Uuid;

use crate::{App, AppError};

const CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long stopping waits for jobs and spares in progress (each stops what it started).
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(30);

impl App {
    pub(crate) async fn start_supervisor(&self) -> Result<(), AppError> {
        self.adopt_instances(self.engine().as_ref()).await?;
        self.start_spare_keeper().await?;
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                // Without the store nothing can be repaired: skip passes until it is back.
                if !app.store_health().is_up() {
                    continue;
                }
                if let Err(e) = app.check_instances(app.engine().as_ref()).await {
                    tracing::warn!(error = %e, "supervision pass failed");
                }
            }
        });
        Ok(())
    }

    /// Stops every instance's server (when the operator asked Berth to do so at shutdown); they
    /// start again, as they were, at the next start.
    pub async fn stop_instances(&self) {
        // First keep the supervisor and the runners from starting what is being stopped.
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // Then let work in progress finish, or a server it starts after the list below was
        // read would outlive Berth.
        let _no_more_work =
            match tokio::time::timeout(IN_FLIGHT_WAIT, self.inner.engine_work.write()).await {
                Ok(guard) => Some(guard),
                Err(_) => {
                    tracing::warn!("work in progress did not finish; stopping instances anyway");
                    None
                }
            };
        let engine = self.engine();
        let Ok(rows) =
            berth_store::fleet::instances::all_live(self.db(), &self.instance_settings().region)
                .await
        else {
            return;
        };
        let spares = self.spare_ids().await.unwrap_or_default();
        // All at once: one after another, hundreds of fast shutdowns outlast a service
        // manager's stop timeout.
        let mut stops = tokio::task::JoinSet::new();
        for id in rows.iter().map(|r| r.id).chain(spares) {
            let engine = engine.clone();
            stops.spawn(async move {
                if let Err(e) = engine.stop(id).await {
                    tracing::warn!(instance = %id, error = %e, "stopping an instance failed");
                }
            });
        }
        while stops.join_next().await.is_some() {}
    }

    /// At start-up: removes what the engine still holds of deleted instances, and starts (or
    /// adopts) every instance that should be running and has no job that will take care of it.
    async fn adopt_instances(&self, engine: &dyn Engine) -> Result<(), AppError> {
        let region = &self.instance_settings().region;
        let live = berth_store::fleet::instances::all_live(self.db(), region).await?;
        let mut live_ids: HashSet<Uuid> = live.iter().map(|r| r.id).collect();
        live_ids.extend(self.spare_ids().await?);
        for orphan in engine
            .inventory()
            .await?
            .into_iter()
            .filter(|id| !live_ids.contains(id))
        {
            tracing::warn!(instance = %orphan, "removing what is left of a deleted instance");
            if let Err(e) = engine.destroy(orphan).await {
                tracing::warn!(instance = %orphan, error = %e, "removing an orphaned instance failed");
            }
            // A deleted instance's backups stay for its retention; those of something that never
            // was an instance (a spare whose removal was cut short) go with it.
            if berth_store::fleet::instances::get_any(self.db(), orphan)
                .await?
                .is_none()
            {
                if let Err(e) = engine.forget_backups(orphan).await {
                    tracing::warn!(instance = %orphan, error = %e, "removing an orphan's backups failed");
                }
            }
        }
        for row in live.into_iter().filter(|r| {
            r.desired_state == DesiredState::Running && r.status == InstanceStatus::Running
        }) {
            if let Err(e) = self.start_instance(engine, &row).await {
                tracing::warn!(instance = %row.id, error = %e, "instance did not start; repairing");
                self.enqueue_repair(&row).await?;
            }
        }
        Ok(())
    }

    /// One pass: every instance that should be running, is marked running and has no job, but
    /// whose postmaster is gone, gets a repair job.
    async fn check_instances(&self, engine: &dyn Engine) -> Result<(), AppError> {
        let region = &self.instance_settings().region;
        for row in berth_store::fleet::instances::all_live(self.db(), region).await? {
            if self.is_stopping() {
                return Ok(());
            }
            if row.status != InstanceStatus::Running || row.desired_state != DesiredState::Running {
                continue;
            }
            match engine.observe(row.id).await {
                Ok(Observed::Running) => {}
                Ok(Observed::Stopped) => {
                    tracing::warn!(instance = %row.id, name = %row.name, "postgres is not running; repairing");
                    self.enqueue_repair(&row).await?;
                }
                // Not knowing is no reason to restart it; the next pass asks again.
                Err(e) => {
                    tracing::warn!(instance = %row.id, error = %e, "observing an instance failed")
                }
            }
        }
        Ok(())
    }

    async fn enqueue_repair(&self, row: &InstanceRow) -> Result<(), AppError> {
        let mut tx = self.db().begin().await?;
        let Some(current) = berth_store::fleet::instances::get_for_update(&mut *tx, row.id).await?
        else {
            return Ok(());
        };
        if current.status != InstanceStatus::Running {
            return Ok(());
        }
        let enqueued = self
            .try_enqueue(
                &mut tx,
                &current,
                JobType::Repair,
                serde_json::json!({}),
                None,
                None,
            )
            .await?;
        if enqueued.is_err() {
            // Another job already owns the instance; it will settle its state.
            return Ok(());
        }
        berth_store::fleet::instances::set_status(
            &mut *tx,
            row.id,
            InstanceStatus::Repairing,
            Some("the database server stopped unexpectedly; restarting it"),
        )
        .await?;
        tx.commit().await?;
        self.wake_runners().await;
        Ok(())
    }
}
