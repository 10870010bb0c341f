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
use berth_store::fleet::spares::{SpareRow, SpareState};
use uuid::Uuid;

use super::spare_pool;
use crate::fleet::instances::{DATABASE, OWNER};
use crate::{App, AppError};

/// How often the keeper looks again when nothing wakes it (a claim or finished work does).
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// A pool this long without a create is idle: spares are backed up then, one at a time.
const IDLE_AFTER: Duration = Duration::from_secs(5);
/// This long after a create, the keeper works at full speed again (before, it refills only a
/// pool down to less than half, one spare at a time, and leaves the cores to the creates).
const CALM_AFTER: Duration = Duration::from_secs(1);

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

    /// A create was made (`counts`: one a spare could serve, which counts towards the pool's
    /// size): wakes the keeper to refill at once.
    pub(crate) fn spare_demand(&self, counts: bool) {
        self.inner
            .spare_pool
            .record_create(self.instant_now(), counts);
    }

    pub(crate) async fn start_spare_keeper(&self) -> Result<(), AppError> {
        self.recover_spares(self.engine().as_ref()).await?;
        let policy = &self.instance_settings().spare_pool;
        if policy.floor == 0 && policy.copies == 0 {
            return Ok(());
        }
        let app = self.clone();
        tokio::spawn(async move {
            let pool = app.inner.spare_pool.clone();
            loop {
                // Register before looking, so a wake-up in between is not lost.
                let woken = pool.wake.notified();
                if app.is_stopping() {
                    return;
                }
                if app.store_health().is_up() {
                    if let Err(e) = app.tend_spares().await {
                        tracing::warn!(error = %e, "tending the spare pool failed");
                    }
                }
                let _ = tokio::time::timeout(LOOK_EVERY, woken).await;
            }
        });
        Ok(())
    }

    /// After a restart: spares that were still warming are discarded, ready ones started (or
    /// adopted) again, a backup that was cut short is forgotten (the spare stays, without one),
    /// and spares of another memory size are removed.
    async fn recover_spares(&self, engine: &dyn Engine) -> Result<(), AppError> {
        let s = self.instance_settings();
        for spare in berth_store::fleet::spares::all(self.db(), &s.region).await? {
            let keep = spare.is_ready() && s.spare_pool.floor > 0 && spare.memory == s.spare_memory;
            let started = keep && self.start_spare(engine, &spare).await.is_ok();
            if !started {
                self.discard_spare(engine, spare.id).await;
            } else if spare.state == SpareState::BackingUp {
                berth_store::fleet::spares::end_backup(self.db(), spare.id, false).await?;
            }
        }
        Ok(())
    }

    async fn start_spare(&self, engine: &dyn Engine, spare: &SpareRow) -> Result<(), AppError> {
        let spec = spare_spec(spare)?;
        let cert = self.server_certificate()?;
        engine.start(&spec, crate::jobs::tls(&cert)).await?;
        Ok(())
    }

    /// Removes a spare that is Berth's alone (warming, or taken out of the pool).
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

    /// One round of the keeper, per installed version: gives back spares beyond the pool's
    /// size, starts making the missing ones (several at once, in the background), and, when
    /// the pool is full and idle, backs one up.
    async fn tend_spares(&self) -> Result<(), AppError> {
        let s = self.instance_settings();
        let policy = &s.spare_pool;
        let pool = &self.inner.spare_pool;
        let memory = berth_engine::memory_class(&s.spare_memory).ok_or_else(|| {
            AppError::Internal(format!("unknown spare memory size `{}`", s.spare_memory))
        })?;
        let now = self.instant_now();
        let available = spare_pool::memory_available();
        let target = policy.target(
            pool.demand(now, policy.demand_window),
            memory.bytes(),
            available,
        );
        let spares = berth_store::fleet::spares::all(self.db(), &s.region).await?;
        publish_gauges(&spares, target);
        for major in self.engine().versions() {
            let version = major.to_string();
            let mine: Vec<&SpareRow> = spares
                .iter()
                .filter(|x| x.version == version && x.memory == memory.name)
                .collect();
            if mine.len() > target {
                // One at a time, the newest without a backup first: demand may come back.
                let extra = mine
                    .iter()
                    .rev()
                    .filter(|x| x.state == SpareState::Ready)
                    .min_by_key(|x| x.backed_up);
                if let Some(extra) = extra {
                    self.give_back_spare(extra.id, available).await?;
                }
                continue;
            }
            // While creates are being made, refilling would take the cores from them.
            let calm = self.spares_calm(now);
            let parallel =
                spare_pool::refill_parallel(policy, calm, pool.creating(), mine.len(), target);
            for _ in mine.len()..target {
                if pool.busy() >= parallel {
                    return Ok(());
                }
                let id = Uuid::now_v7();
                let Some(port) = self.reserve_spare_port(id, &version, memory.name).await? else {
                    return Ok(()); // No free port: spares are an optimisation, instances come first.
                };
                let spec = InstanceSpec {
                    id,
                    major,
                    port,
                    memory,
                };
                let (app, work) = (self.clone(), pool.start_work());
                tokio::spawn(async move {
                    app.make_spare(&spec).await;
                    drop(work);
                });
            }
            let idle = pool.quiet_for(now).is_none_or(|q| q >= IDLE_AFTER);
            if mine.len() == target && idle && pool.busy() == 0 {
                let unsaved = mine
                    .iter()
                    .find(|x| x.state == SpareState::Ready && !x.backed_up);
                if let Some(spare) = unsaved {
                    self.back_up_spare(spare).await?;
                    continue;
                }
            }
            if calm && pool.busy() == 0 && policy.copies > 0 && !pool.copies_are_full(major) {
                self.stock_template_copy(major, policy.copies);
            }
        }
        Ok(())
    }

    /// No create is being answered and none came for a moment.
    fn spares_calm(&self, now: std::time::Instant) -> bool {
        let pool = &self.inner.spare_pool;
        pool.creating() == 0 && pool.quiet_for(now).is_none_or(|q| q >= CALM_AFTER)
    }

    /// Returns once creates have paused (or after a minute): for work that can wait until a
    /// burst is over.
    pub(crate) async fn after_creates_pause(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !self.spares_calm(self.instant_now()) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Counts a create request being answered, until the guard drops: the keeper makes no
    /// spare while several are.
    pub(crate) fn create_in_flight(&self) -> spare_pool::Busy {
        self.inner.spare_pool.start_create()
    }

    /// Makes one more stopped template copy in the background (the engine says when it has
    /// enough).
    fn stock_template_copy(&self, major: u32, want: usize) {
        let (app, work) = (self.clone(), self.inner.spare_pool.start_work());
        tokio::spawn(async move {
            if let Some(_engine_work) = app.begin_engine_work().await {
                match app.engine().stock_copy(major, OWNER, DATABASE, want).await {
                    Ok(ready) => {
                        metrics::gauge!("berth_template_copies").set(ready as f64);
                        if ready >= want {
                            app.inner.spare_pool.set_copies_full(major);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "making a template copy failed"),
                }
            }
            drop(work);
        });
    }

    /// Takes a ready spare out of the pool and removes it, unless a create claimed it first.
    async fn give_back_spare(&self, id: Uuid, available: Option<u64>) -> Result<(), AppError> {
        if !berth_store::fleet::spares::take(self.db(), id).await? {
            return Ok(());
        }
        tracing::info!(spare = %id, memory_available = ?available, "giving back a spare");
        let Some(_work) = self.begin_engine_work().await else {
            return Ok(()); // Stopping: the orphan sweep at the next start removes it.
        };
        self.discard_spare(self.engine().as_ref(), id).await;
        Ok(())
    }

    /// Copies, starts and readies one spare (its port already reserved), without a backup: a
    /// burst of creates should not wait behind backups. Removed again if that fails.
    async fn make_spare(&self, spec: &InstanceSpec) {
        let Some(_work) = self.begin_engine_work().await else {
            let _ = berth_store::fleet::spares::delete(self.db(), spec.id).await;
            return;
        };
        let engine = self.engine().as_ref();
        // (It may take one of the template copies.)
        self.inner.spare_pool.copies_taken();
        let made = async {
            let cert = self.server_certificate()?;
            // The owner gets a throwaway password until the spare is claimed.
            let verifier = berth_tls::scram_sha256_verifier(&berth_tls::generate_password());
            let owner = Owner {
                username: OWNER,
                database: DATABASE,
                password_verifier: &verifier,
            };
            engine
                .provision(spec, owner, crate::jobs::tls(&cert))
                .await?;
            Ok::<_, AppError>(())
        }
        .await;
        match made {
            Ok(()) => {
                let marked = berth_store::fleet::spares::mark_ready(self.db(), spec.id).await;
                if self.is_stopping() {
                    // Started after Berth began stopping everything: stop it too (also when
                    // the store, closing, did not take the mark).
                    let _ = engine.stop(spec.id).await;
                }
                if let Err(e) = marked {
                    tracing::warn!(spare = %spec.id, error = %e, "marking a spare ready failed");
                }
            }
            Err(e) => {
                tracing::warn!(spare = %spec.id, error = %e, "preparing a spare failed");
                self.discard_spare(engine, spec.id).await;
            }
        }
    }

    /// Takes a spare's first backup, so the instance that claims it is restorable from its
    /// first second. The spare is not claimable meanwhile; it stays a spare either way.
    async fn back_up_spare(&self, spare: &SpareRow) -> Result<(), AppError> {
        let spec = spare_spec(spare)?;
        if !berth_store::fleet::spares::begin_backup(self.db(), spare.id).await? {
            return Ok(()); // Claimed meanwhile.
        }
        let (app, work) = (self.clone(), self.inner.spare_pool.start_work());
        tokio::spawn(async move {
            let saved = match app.begin_engine_work().await {
                Some(_engine_work) => {
                    let retention = berth_engine::Retention::Days(
                        crate::fleet::backups::DEFAULT_RETENTION_DAYS as u32,
                    );
                    let full = berth_types::BackupType::Full;
                    let background = berth_engine::Priority::Background;
                    let r = app
                        .engine()
                        .backup(&spec, full, retention, &|_| {}, background)
                        .await;
                    if let Err(e) = &r {
                        tracing::warn!(spare = %spec.id, error = %e, "backing up a spare failed");
                    }
                    r.is_ok()
                }
                None => false,
            };
            if let Err(e) = berth_store::fleet::spares::end_backup(app.db(), spec.id, saved).await {
                tracing::warn!(spare = %spec.id, error = %e, "returning a spare to the pool failed");
            }
            drop(work);
        });
        Ok(())
    }

    /// Records a warming spare on a port of its own (None: no port is free).
    async fn reserve_spare_port(
        &self,
        id: Uuid,
        version: &str,
        memory: &str,
    ) -> Result<Option<u16>, AppError> {
        let mut tx = self.db().begin().await?;
        let Some(port) = self.claim_port(&mut tx).await? else {
            return Ok(None);
        };
        let spare = berth_store::fleet::spares::NewSpare {
            id,
            region: &self.instance_settings().region,
            version,
            memory,
            port,
        };
        berth_store::fleet::spares::insert(&mut *tx, &spare).await?;
        tx.commit().await?;
        Ok(Some(
            u16::try_from(port).map_err(|_| AppError::Internal("bad port".into()))?,
        ))
    }
}

/// What the engine needs to run a spare, from its row.
fn spare_spec(spare: &SpareRow) -> Result<InstanceSpec, AppError> {
    let bad = |what: &str| AppError::Internal(format!("bad spare {what}"));
    Ok(InstanceSpec {
        id: spare.id,
        major: spare.version.parse().map_err(|_| bad("version"))?,
        port: u16::try_from(spare.port).map_err(|_| bad("port"))?,
        memory: berth_engine::memory_class(&spare.memory).ok_or_else(|| bad("memory"))?,
    })
}

/// The pool as `/metrics` shows it: spares by state, how many have their first backup, and the
/// size the keeper aims for.
fn publish_gauges(spares: &[SpareRow], target: usize) {
    for (state, name) in [
        (SpareState::Warming, "warming"),
        (SpareState::Ready, "ready"),
        (SpareState::BackingUp, "backing_up"),
    ] {
        let n = spares.iter().filter(|s| s.state == state).count();
        metrics::gauge!("berth_spares", "state" => name).set(n as f64);
    }
    let backed_up = spares.iter().filter(|s| s.backed_up).count();
    metrics::gauge!("berth_spares_backed_up").set(backed_up as f64);
    metrics::gauge!("berth_spares_target").set(target as f64);
}
