//! The job runner: claims pending jobs (`FOR UPDATE SKIP LOCKED`), runs each as a sequence of
//! idempotent engine steps under a deadline, and records the outcome together with the
//! instance's new status. A job interrupted by a crash is pending again at the next start and
//! simply runs again; nothing is left half-done because every step can be repeated.

use std::sync::Arc;
use std::time::Duration;

use berth_engine::{InstanceSpec, LocalEngine};
use berth_store::instances::InstanceRow;
use berth_store::jobs::{JobFilter, JobGroup, JobRow};
use berth_types::{Job, JobList, JobQuery, JobStats, Permission};
use chrono::Utc;
use uuid::Uuid;

use crate::{validate, App, AppError, Principal};

pub(crate) const JOB_TYPES: &[&str] = &[
    "create", "pause", "resume", "restart", "resize", "delete", "repair",
];
pub(crate) const JOB_STATES: &[&str] = &["PENDING", "STARTED", "SUCCESS", "FAILURE", "ERROR"];
const JOBS_CHANNEL: &str = "berth_jobs";
const IDLE_POLL: Duration = Duration::from_secs(2);
/// How long the outcome of a job waits for a store that is down.
const OUTCOME_PATIENCE: Duration = Duration::from_secs(300);

/// How long each kind of job may take before it fails with a reason.
fn deadline(job_type: &str) -> Duration {
    Duration::from_secs(match job_type {
        "create" => 120,
        "delete" | "restart" | "resize" => 90,
        _ => 60,
    })
}

fn view(j: JobRow) -> Job {
    Job {
        id: j.id,
        job_type: j.job_type,
        state: j.state,
        instance_id: j.instance_id,
        project_id: j.project_id,
        site: j.site,
        step: j.step,
        attempts: j.attempts,
        error: j.error,
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
        deadline_at: j.deadline_at,
    }
}

impl App {
    pub async fn list_jobs(&self, p: &Principal, q: &JobQuery) -> Result<JobList, AppError> {
        let (limit, offset) = validate::page(q.limit, q.offset)?;
        let projects = self.visible_projects(p, Permission::JobsRead, None).await?;
        let filter = JobFilter {
            projects,
            job_type: q.job_type.clone(),
            state: q.state.clone(),
            instance_id: q.instance_id,
            since: q.since,
            until: q.until,
        };
        let count = berth_store::jobs::count(self.db(), &filter).await?;
        let rows = berth_store::jobs::list(self.db(), &filter, limit, offset).await?;
        // Every known type and state appears, with 0 when none match.
        let mut stats = JobStats {
            job_type: JOB_TYPES.iter().map(|t| ((*t).to_owned(), 0)).collect(),
            state: JOB_STATES.iter().map(|s| ((*s).to_owned(), 0)).collect(),
            ..JobStats::default()
        };
        for (group, map) in [
            (JobGroup::Type, &mut stats.job_type),
            (JobGroup::State, &mut stats.state),
            (JobGroup::Day, &mut stats.created),
            (JobGroup::Site, &mut stats.site),
        ] {
            for (k, n) in berth_store::jobs::counts_by(self.db(), &filter, group).await? {
                map.insert(k, n);
            }
        }
        let page = crate::page(count, limit, offset, rows.into_iter().map(view).collect());
        Ok(JobList {
            count: page.count,
            next: page.next,
            previous: page.previous,
            results: page.results,
            stats,
        })
    }

    pub async fn get_job(&self, p: &Principal, id: Uuid) -> Result<Job, AppError> {
        let job = berth_store::jobs::get(self.db(), id)
            .await?
            .ok_or(AppError::NotFound("job"))?;
        let project = job.project_id.ok_or(AppError::NotFound("job"))?;
        match self
            .authorize_project(p, project, Permission::JobsRead)
            .await
        {
            Ok(_) => Ok(view(job)),
            Err(AppError::NotFound(_)) => Err(AppError::NotFound("job")),
            Err(e) => Err(e),
        }
    }

    /// Wakes this replica's runners (and, through NOTIFY, every other replica's).
    pub(crate) async fn wake_runners(&self) {
        self.inner.job_wakeup.notify_waiters();
        let _ = sqlx::query("SELECT pg_notify($1, '')")
            .bind(JOBS_CHANNEL)
            .execute(self.db())
            .await;
    }

    /// Starts the runners after putting back jobs a previous run left unfinished.
    pub(crate) async fn start_job_runners(&self) -> Result<(), AppError> {
        let Some(engine) = self.engine() else {
            return Ok(());
        };
        let site = self.instance_settings().region.clone();
        let requeued = berth_store::jobs::requeue_interrupted(self.db(), &site).await?;
        if !requeued.is_empty() {
            tracing::warn!(
                jobs = requeued.len(),
                "resuming jobs interrupted by the last shutdown"
            );
        }
        for n in 0..self.instance_settings().runners.max(1) {
            let app = self.clone();
            let engine = engine.clone();
            let runner = format!("{}-{n}", std::process::id());
            tokio::spawn(async move { app.run_jobs(engine, runner).await });
        }
        let app = self.clone();
        tokio::spawn(async move { app.listen_for_jobs().await });
        Ok(())
    }

    async fn listen_for_jobs(&self) {
        loop {
            self.store_health().wait_up().await;
            if let Ok(mut l) = sqlx::postgres::PgListener::connect_with(self.db()).await {
                // Reconnect here, after waiting for the store, not inside `recv`.
                l.eager_reconnect(false);
                if l.listen(JOBS_CHANNEL).await.is_ok() {
                    while let Ok(Some(_)) = l.try_recv().await {
                        self.inner.job_wakeup.notify_waiters();
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn run_jobs(&self, engine: Arc<LocalEngine>, runner: String) {
        let site = self.instance_settings().region.clone();
        loop {
            // Register interest before looking, so a wake-up in between is not lost.
            let woken = self.inner.job_wakeup.notified();
            if self.is_stopping() {
                return;
            }
            // While the store is down there is nothing to claim: wait for it (a while at a
            // time, to notice a shutdown).
            if !self.store_health().wait_up_for(IDLE_POLL).await {
                continue;
            }
            match berth_store::jobs::claim(self.db(), &site, &runner).await {
                Ok(Some(job)) => {
                    self.run_job(&engine, job).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    if !self.store_failed(&e) {
                        tracing::warn!(error = %e, "claiming a job failed");
                    }
                }
            }
            let _ = tokio::time::timeout(IDLE_POLL, woken).await;
        }
    }

    async fn run_job(&self, engine: &LocalEngine, job: JobRow) {
        self.run_job_steps(engine, &job).await;
        if let (true, Some(id)) = (self.is_stopping(), job.instance_id) {
            // The job started a server after Berth began stopping every instance.
            let _ = engine.stop(id).await;
        }
    }

    async fn run_job_steps(&self, engine: &LocalEngine, job: &JobRow) {
        let job = job.clone();
        let started = std::time::Instant::now();
        let limit = deadline(&job.job_type);
        let outcome = match tokio::time::timeout(limit, self.job_steps(engine, &job)).await {
            Ok(r) => r,
            Err(_) => Err(AppError::Unavailable(format!(
                "{} did not finish within {} s",
                job.job_type,
                limit.as_secs()
            ))),
        };
        let result = match outcome {
            // The store went away under the job: its steps can all be repeated, so it goes back
            // to pending once the store is back rather than failing the instance.
            Err(_) if !self.store_health().is_up() => {
                tracing::warn!(job = %job.id, r#type = %job.job_type, "the store went away during a job; it will run again");
                self.record_outcome(|| berth_store::jobs::requeue(self.db(), job.id))
                    .await
            }
            Ok(()) => {
                self.record_outcome(|| {
                    berth_store::jobs::finish(self.db(), job.id, "SUCCESS", None)
                })
                .await
            }
            Err(e) => {
                // FAILURE: the operation could not be done; ERROR: Berth itself misbehaved.
                let state = if matches!(e, AppError::Internal(_)) {
                    "ERROR"
                } else {
                    "FAILURE"
                };
                let reason = e.to_string();
                tracing::warn!(job = %job.id, r#type = %job.job_type, error = %reason, "job failed");
                self.record_outcome(|| self.fail_instance(&job, state, &reason))
                    .await
            }
        };
        if let Err(e) = result {
            tracing::error!(job = %job.id, error = %e, "recording a job's outcome failed");
        }
        metrics::histogram!("berth_job_duration_seconds", "type" => job.job_type.clone())
            .record(started.elapsed().as_secs_f64());
    }

    /// Runs `write` (recording how a job ended), and when the store is away, waits for it and
    /// tries again, for up to [`OUTCOME_PATIENCE`], so that an outage does not leave the job
    /// `STARTED` until the next start of Berth.
    async fn record_outcome<F, Fut>(&self, write: F) -> Result<(), sqlx::Error>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), sqlx::Error>>,
    {
        let give_up_at = tokio::time::Instant::now() + OUTCOME_PATIENCE;
        loop {
            match write().await {
                Err(e) if self.store_failed(&e) || !self.store_health().is_up() => {
                    let left = give_up_at.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() || !self.store_health().wait_up_for(left).await {
                        return Err(e);
                    }
                    // The store may flap: never retry into it in a tight loop.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                other => return other,
            }
        }
    }

    /// Marks the job failed and the instance `failed`, saying why and what to do.
    async fn fail_instance(
        &self,
        job: &JobRow,
        state: &str,
        reason: &str,
    ) -> Result<(), sqlx::Error> {
        let advice = match job.job_type.as_str() {
            "delete" => "delete it again to retry",
            "create" => "delete it and create it again",
            _ => "resume or restart it to retry, or delete it",
        };
        let message = format!("{} failed: {reason}; {advice}", job.job_type);
        let mut tx = self.db().begin().await?;
        berth_store::jobs::finish(&mut *tx, job.id, state, Some(reason)).await?;
        if let Some(id) = job.instance_id {
            berth_store::instances::set_status(&mut *tx, id, "failed", Some(&message)).await?;
        }
        tx.commit().await
    }

    async fn step(&self, job: &JobRow, step: &str) -> Result<(), AppError> {
        let deadline = job.started_at.unwrap_or_else(Utc::now)
            + chrono::Duration::seconds(deadline(&job.job_type).as_secs() as i64);
        berth_store::jobs::set_step(self.db(), job.id, step, deadline).await?;
        Ok(())
    }

    async fn job_steps(&self, engine: &LocalEngine, job: &JobRow) -> Result<(), AppError> {
        let id = job
            .instance_id
            .ok_or_else(|| AppError::Internal("job without instance".into()))?;
        let Some(row) = berth_store::instances::get(self.db(), id).await? else {
            return Ok(()); // Already gone: nothing left to do.
        };
        let engine_err = |e: berth_engine::EngineError| AppError::Unavailable(e.to_string());
        match job.job_type.as_str() {
            "create" => {
                self.step(job, "provision").await?;
                let verifier = job.payload["password_verifier"]
                    .as_str()
                    .ok_or_else(|| AppError::Internal("create job without verifier".into()))?;
                self.provision(engine, &row, verifier).await?;
                self.settle(id, "running").await
            }
            "pause" => {
                self.step(job, "stop").await?;
                engine.stop(id).await.map_err(engine_err)?;
                self.settle(id, "paused").await
            }
            "resume" | "repair" => {
                self.step(job, "start").await?;
                self.start_instance(engine, &row).await?;
                self.settle(id, "running").await
            }
            "restart" | "resize" => {
                self.step(job, "stop").await?;
                engine.stop(id).await.map_err(engine_err)?;
                if row.desired_state == "running" {
                    self.step(job, "start").await?;
                    self.start_instance(engine, &row).await?;
                }
                self.settle(
                    id,
                    if row.desired_state == "paused" {
                        "paused"
                    } else {
                        "running"
                    },
                )
                .await
            }
            "delete" => {
                self.step(job, "destroy").await?;
                engine.destroy(id).await.map_err(engine_err)?;
                let mut tx = self.db().begin().await?;
                berth_store::jobs::finish(&mut *tx, job.id, "SUCCESS", None).await?;
                berth_store::instances::mark_deleted(&mut *tx, id).await?;
                tx.commit().await?;
                Ok(())
            }
            other => Err(AppError::Internal(format!("unknown job type `{other}`"))),
        }
    }

    async fn settle(&self, id: Uuid, status: &str) -> Result<(), AppError> {
        berth_store::instances::set_status(self.db(), id, status, None).await?;
        Ok(())
    }

    async fn provision(
        &self,
        engine: &LocalEngine,
        row: &InstanceRow,
        verifier: &str,
    ) -> Result<(), AppError> {
        let (major, port, memory) = instance_shape(row)?;
        let cert = self.server_certificate()?;
        let spec = InstanceSpec {
            id: row.id,
            major,
            port,
            memory,
            owner: &row.owner_username,
            database: &row.database_name,
            password_verifier: verifier,
            cert_pem: &cert.cert_pem,
            key_pem: &cert.key_pem,
        };
        engine
            .provision(&spec)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }

    /// Starts (or adopts) an instance's server with a freshly issued certificate, so
    /// certificates never outlive a restart by much and follow a changed public host.
    pub(crate) async fn start_instance(
        &self,
        engine: &LocalEngine,
        row: &InstanceRow,
    ) -> Result<u32, AppError> {
        let (major, port, memory) = instance_shape(row)?;
        let cert = self.server_certificate()?;
        engine
            .write_certificate(row.id, &cert.cert_pem, &cert.key_pem)
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        engine
            .start(row.id, major, port, memory)
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }

    pub(crate) fn server_certificate(&self) -> Result<berth_tls::IssuedCert, AppError> {
        let ca = self
            .inner
            .ca
            .as_ref()
            .ok_or_else(|| AppError::Internal("no certificate authority".into()))?;
        let host = &self.instance_settings().public_host;
        let mut dns = vec!["localhost".to_owned()];
        let mut ips: Vec<std::net::IpAddr> = vec![std::net::Ipv4Addr::LOCALHOST.into()];
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if host != "localhost" => dns.push(host.clone()),
            Err(_) => {}
        }
        ca.issue_server_cert("Berth instance", &dns, &ips)
            .map_err(|e| AppError::Internal(e.to_string()))
    }
}

/// The version, port and memory class an instance row describes.
fn instance_shape(
    row: &InstanceRow,
) -> Result<(u32, u16, &'static berth_engine::MemoryClass), AppError> {
    let major = row
        .version
        .parse()
        .map_err(|_| AppError::Internal(format!("bad version `{}`", row.version)))?;
    let port = row
        .port
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| AppError::Internal("instance without port".into()))?;
    let memory = berth_engine::memory_class(&row.memory)
        .ok_or_else(|| AppError::Internal(format!("bad memory `{}`", row.memory)))?;
    Ok((major, port, memory))
}
