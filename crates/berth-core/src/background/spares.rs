//! The pool of spare instances: clusters already copied, started and given a database, so a
//! create only has to claim one, set the owner's password and a fresh certificate — tens of
//! milliseconds instead of copying and starting a cluster while the user waits.
//!
//! A spare lives in the instance directory named by its id; claiming it makes that id the
//! instance's id, so nothing moves on disk. Spares are kept per installed version for one
//! memory size (the smallest, by default).

use std::collections::HashSet;
use std::time::Duration;

use berth_engine::{Engine, InstanceSpec, Owner};
use uuid::Uuid;

use crate::fleet::instances::{DATABASE, OWNER};
use crate::{App, AppError};

const REFILL_EVERY: Duration = Duration::from_secs(1);

impl App {
    /// Ids of every spare, so start-up does not take their directories for orphans.
    pub(crate) async fn spare_ids(&self) -> Result<HashSet<Uuid>, AppError> {
        let region = &self.instance_settings().region;
        Ok(berth_store::fleet::spares::all(self.db(), region)
            .await?
            .into_iter()
            .map(|s| s.id)
            .collect())
    }

    pub(crate) async fn start_spare_keeper(&self) -> Result<(), AppError> {
        self.recover_spares(self.engine().as_ref()).await?;
        if self.instance_settings().spares == 0 {
            return Ok(());
        }
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                if app.is_stopping() {
                    return;
                }
                if !app.store_health().is_up() {
                    tokio::time::sleep(REFILL_EVERY).await;
                    continue;
                }
                {
                    let Some(_work) = app.begin_engine_work().await else {
                        return;
                    };
                    if let Err(e) = app.refill_spares(app.engine().as_ref()).await {
                        tracing::warn!(error = %e, "refilling spare instances failed");
                    }
                }
                tokio::time::sleep(REFILL_EVERY).await;
            }
        });
        Ok(())
    }

    /// After a restart: spares that were still warming are discarded, ready ones started (or
    /// adopted) again, and any beyond the configured count removed.
    async fn recover_spares(&self, engine: &dyn Engine) -> Result<(), AppError> {
        let s = self.instance_settings();
        for spare in berth_store::fleet::spares::all(self.db(), &s.region).await? {
            let keep = spare.is_ready() && s.spares > 0 && spare.memory == s.spare_memory;
            let started = keep && self.start_spare(engine, &spare).await.is_ok();
            if !started {
                self.discard_spare(engine, spare.id).await;
            }
        }
        Ok(())
    }

    async fn start_spare(
        &self,
        engine: &dyn Engine,
        spare: &berth_store::fleet::spares::SpareRow,
    ) -> Result<(), AppError> {
        let major = spare
            .version
            .parse()
            .map_err(|_| AppError::Internal("bad spare version".into()))?;
        let memory = berth_engine::memory_class(&spare.memory)
            .ok_or_else(|| AppError::Internal("bad spare memory".into()))?;
        let port =
            u16::try_from(spare.port).map_err(|_| AppError::Internal("bad spare port".into()))?;
        let spec = InstanceSpec {
            id: spare.id,
            major,
            port,
            memory,
        };
        let cert = self.server_certificate()?;
        engine.start(&spec, crate::jobs::tls(&cert)).await?;
        Ok(())
    }

    async fn discard_spare(&self, engine: &dyn Engine, id: Uuid) {
        if let Err(e) = engine.destroy(id).await {
            tracing::warn!(spare = %id, error = %e, "removing a spare failed");
        }
        if let Err(e) = engine.forget_backups(id).await {
            tracing::warn!(spare = %id, error = %e, "removing a spare's backups failed");
        }
        if let Err(e) = berth_store::fleet::spares::delete(self.db(), id).await {
            tracing::warn!(spare = %id, error = %e, "forgetting a spare failed");
        }
    }

    /// Makes one more spare for every version that has fewer than wanted.
    async fn refill_spares(&self, engine: &dyn Engine) -> Result<(), AppError> {
        let s = self.instance_settings().clone();
        let memory = berth_engine::memory_class(&s.spare_memory).ok_or_else(|| {
            AppError::Internal(format!("unknown spare memory size `{}`", s.spare_memory))
        })?;
        let spares = berth_store::fleet::spares::all(self.db(), &s.region).await?;
        for major in engine.versions() {
            let version = major.to_string();
            let have = spares
                .iter()
                .filter(|x| x.version == version && x.memory == memory.name)
                .count();
            if have >= s.spares {
                continue;
            }
            let id = Uuid::now_v7();
            let Some(port) = self.reserve_spare_port(id, &version, memory.name).await? else {
                return Ok(()); // No free port: spares are an optimisation, instances come first.
            };
            let cert = self.server_certificate()?;
            // The owner gets a throwaway password until the spare is claimed.
            let verifier = berth_tls::scram_sha256_verifier(&berth_tls::generate_password());
            let spec = InstanceSpec {
                id,
                major,
                port,
                memory,
            };
            let owner = Owner {
                username: OWNER,
                database: DATABASE,
                password_verifier: &verifier,
            };
            // With its first backup, so the instance that claims it can be restored from its
            // first second.
            let made = match engine
                .provision(&spec, owner, crate::jobs::tls(&cert))
                .await
            {
                Ok(()) => {
                    let retention = berth_engine::Retention::Days(
                        crate::fleet::backups::DEFAULT_RETENTION_DAYS as u32,
                    );
                    engine
                        .backup(&spec, berth_types::BackupType::Full, retention, &|_| {})
                        .await
                }
                Err(e) => Err(e),
            };
            match made {
                // A spare claimed while it warmed up is an instance now: leave it alone.
                Ok(()) => {
                    let marked = berth_store::fleet::spares::mark_ready(self.db(), id).await;
                    if self.is_stopping() {
                        // Started after Berth began stopping everything: stop it too (also
                        // when the store, closing, did not take the mark).
                        let _ = engine.stop(id).await;
                    }
                    marked?;
                }
                Err(e) => {
                    tracing::warn!(spare = %id, error = %e, "preparing a spare failed");
                    self.discard_spare(engine, id).await;
                }
            }
        }
        Ok(())
    }

    async fn reserve_spare_port(
        &self,
        id: Uuid,
        version: &str,
        memory: &str,
    ) -> Result<Option<u16>, AppError> {
        let s = self.instance_settings();
        let mut busy = Vec::new();
        loop {
            let mut tx = self.db().begin().await?;
            berth_store::fleet::spares::lock_ports(&mut *tx).await?;
            let Some(row) = berth_store::fleet::spares::insert(
                &mut *tx,
                &berth_store::fleet::spares::NewSpare {
                    id,
                    region: &s.region,
                    version,
                    memory,
                    ports: (i32::from(s.first_port), i32::from(s.last_port)),
                    skip: &busy,
                },
            )
            .await?
            else {
                return Ok(None);
            };
            let port =
                u16::try_from(row.port).map_err(|_| AppError::Internal("bad port".into()))?;
            if std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port)).is_ok() {
                tx.commit().await?;
                return Ok(Some(port));
            }
            busy.push(row.port);
        }
    }
}
