//! The job runner: claims pending jobs (`FOR UPDATE SKIP LOCKED`), runs each as a sequence of
//! idempotent engine steps under a deadline, and records the outcome together with the
//! instance's new status. A job interrupted by a crash is pending again at the next start and
//! simply runs again; nothing is left half-done because every step can be repeated.
//!
//! Each kind of job lives in its own file here ([`create`], [`pause`], [`resume`],
//! [`restart`], [`resize`], [`delete`], [`repair`], [`restore`], [`import`], …): a type implementing [`JobKind`] with its
//! steps, its deadline and the advice it gives when it fails. Adding a kind is one file, one
//! [`JobType`] variant, and its arm in [`App::run_job_steps`], which the compiler asks for.
//! Kinds speak to the engine only through [`berth_engine::Engine`].

mod backup;
mod config;
mod create;
mod databases;
mod db_users;
mod delete;
mod firewall;
mod import;
mod pause;
mod repair;
mod resize;
mod restart;
mod restore;
mod resume;

use std::future::Future;
use std::time::Duration;

use berth_engine::{Engine, InstanceSpec, Owner, Tls};
use berth_store::fleet::instances::InstanceRow;
use berth_store::fleet::jobs::{Enqueued, JobFilter, JobGroup, JobRow, NewJob};
use berth_types::{
    DesiredState, InstanceStatus, Job, JobList, JobQuery, JobState, JobStats, JobStep, JobType,
    Permission,
};
use chrono::Utc;
use uuid::Uuid;

use crate::{validate, App, AppError, Principal};

const IDLE_POLL: Duration = Duration::from_secs(2);
/// How long a stop waits for a new instance's first backup.
const FIRST_BACKUP_PATIENCE: Duration = Duration::from_secs(45);
/// How long the outcome of a job waits for a store that is down.
const OUTCOME_PATIENCE: Duration = Duration::from_secs(300);
/// What to do when a job on an existing instance fails.
const RETRY_ADVICE: &str = "resume or restart it to retry, or delete it";

/// One kind of job.
pub(crate) trait JobKind {
    /// How long the whole job may take before it fails with a reason.
    const DEADLINE: Duration;
    /// Said after the reason when the job fails: what the user can do about it.
    const ADVICE: &'static str;
    /// Whether a failure leaves the instance `failed` (a failed backup does not: the instance
    /// goes on serving).
    const FAILS_INSTANCE: bool = true;
    /// The steps, each idempotent (a job interrupted anywhere runs again from the start).
    fn run(cx: &Cx<'_>) -> impl Future<Output = Result<Done, AppError>> + Send;
    /// Cleans up after a failure, before it is recorded (best effort).
    fn failed(
        _app: &App,
        _engine: &dyn Engine,
        _job: &JobRow,
        _reason: &str,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How a job left its instance.
#[derive(Clone, Copy)]
pub(crate) enum Done {
    /// In this status (the job and the status are recorded together).
    Settled(InstanceStatus),
    /// In this status, with a first backup to take (a job enqueued with the outcome).
    SettledThenBackup(InstanceStatus),
    /// As it was (a backup leaves the instance's status alone).
    Unchanged,
    /// Gone: its row is marked deleted, releasing its name and port.
    Deleted,
}

/// An operation a user starts on an instance: the statuses it may start from, the status the
/// instance shows while it runs, and the state it leads to.
pub(crate) struct Action {
    pub job_type: JobType,
    pub from: &'static [InstanceStatus],
    pub via: InstanceStatus,
    pub desired: DesiredState,
}

/// The action named by the last segment of `POST /api/v1/instances/{id}/<action>`.
pub(crate) fn action(name: &str) -> Option<&'static Action> {
    [&pause::ACTION, &resume::ACTION, &restart::ACTION]
        .into_iter()
        .find(|a| a.job_type.as_str() == name)
}

/// What a running job's steps work with.
pub(crate) struct Cx<'a> {
    pub app: &'a App,
    pub engine: &'a dyn Engine,
    pub job: &'a JobRow,
    pub instance: &'a InstanceRow,
    deadline: Duration,
}

impl Cx<'_> {
    /// Records how far the current step is, at most about once a second.
    pub fn progress<'p>(&'p self, bytes_total: Option<i64>) -> impl Fn(f32) + Send + Sync + 'p {
        let last = std::sync::Mutex::new(None::<std::time::Instant>);
        move |percent: f32| {
            let now = std::time::Instant::now();
            {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
                    && percent < 100.0
                {
                    return;
                }
                *last = Some(now);
            }
            let done = bytes_total.map(|t| (t as f64 * f64::from(percent) / 100.0) as i64);
            let (db, id) = (self.app.db().clone(), self.job.id);
            // Not awaited: progress must never slow the tool down or fail the job.
            tokio::spawn(async move {
                let _ = berth_store::fleet::jobs::set_progress(&db, id, percent, done, bytes_total)
                    .await;
            });
        }
    }

    /// Records the step being worked on, and when the job fails if it is not done by then.
    pub async fn step(&self, step: &str) -> Result<(), AppError> {
        let deadline = self.job.started_at.unwrap_or_else(Utc::now)
            + chrono::Duration::seconds(self.deadline.as_secs() as i64);
        berth_store::fleet::jobs::set_step(self.app.db(), self.job.id, step, deadline).await?;
        Ok(())
    }

    /// Before the server stops: lets a new instance's first backup (small, seconds) finish
    /// rather than fail it, so the instance is restorable; other backups are not waited for (a
    /// stop makes them fail).
    pub async fn let_first_backup_finish(&self) {
        let give_up = tokio::time::Instant::now() + FIRST_BACKUP_PATIENCE;
        while tokio::time::Instant::now() < give_up {
            match berth_store::fleet::jobs::active_of_type(
                self.app.db(),
                self.instance.id,
                JobType::Backup,
            )
            .await
            {
                Ok(Some(j)) if j.payload["trigger"] == "initial" => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                _ => return,
            }
        }
    }

    /// Before the server stops: archives everything it committed and records until when, so
    /// the instance can be restored to its last moment. A server that is not running, or whose
    /// archiving fails, keeps the moment recorded last (the job goes on: stopping must not
    /// depend on the archive).
    pub async fn seal_archive(&self) {
        let Ok(spec) = instance_spec(self.instance) else {
            return;
        };
        if self.engine.observe(self.instance.id).await.ok() != Some(berth_engine::Observed::Running)
        {
            return;
        }
        match self.engine.seal_archive(&spec).await {
            Ok(sealed) => {
                let _ = berth_store::fleet::instances::set_archived_until(
                    self.app.db(),
                    self.instance.id,
                    sealed.at,
                )
                .await;
            }
            Err(e) => {
                tracing::warn!(instance = %self.instance.id, error = %e, "archiving the last WAL before stopping failed")
            }
        }
    }

    /// Starts the instance's server with a fresh certificate.
    pub async fn start(&self) -> Result<(), AppError> {
        self.app.start_instance(self.engine, self.instance).await
    }
}

fn view(j: JobRow) -> Job {
    Job {
        id: j.id,
        job_type: j.job_type,
        state: j.state,
        instance_id: j.instance_id,
        project_id: j.project_id,
        site: j.region.clone(),
        region: j.region,
        step: j.step,
        attempts: j.attempts,
        error: j.error,
        created_at: j.created_at,
        started_at: j.started_at,
        finished_at: j.finished_at,
        deadline_at: j.deadline_at,
        progress_percent: j.progress_percent,
        bytes_done: j.bytes_done,
        bytes_total: j.bytes_total,
        workflow_id: j.workflow_id,
        steps: steps_view(&j.steps, j.finished_at),
    }
}

/// The recorded steps with their durations: a step lasts until the next step of the same run
/// begins, the last one until the job finished.
fn steps_view(
    recorded: &serde_json::Value,
    finished_at: Option<chrono::DateTime<Utc>>,
) -> Vec<JobStep> {
    #[derive(serde::Deserialize)]
    struct Recorded {
        name: String,
        attempt: i32,
        started_at: chrono::DateTime<Utc>,
    }
    let recorded: Vec<Recorded> = serde_json::from_value(recorded.clone()).unwrap_or_default();
    let last_attempt = recorded.last().map(|r| r.attempt);
    recorded
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let end = match recorded.get(i + 1) {
                Some(next) if next.attempt == r.attempt => Some(next.started_at),
                Some(_) => None, // Cut short: the next run started over.
                None if Some(r.attempt) == last_attempt => finished_at,
                None => None,
            };
            JobStep {
                name: r.name.clone(),
                attempt: r.attempt,
                started_at: r.started_at,
                duration_ms: end.map(|e| (e - r.started_at).num_milliseconds().max(0)),
            }
        })
        .collect()
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
        let count = berth_store::fleet::jobs::count(self.db(), &filter).await?;
        let rows = berth_store::fleet::jobs::list(self.db(), &filter, limit, offset).await?;
        // Every known type and state appears, with 0 when none match.
        let mut stats = JobStats {
            job_type: JobType::ALL.iter().map(|t| (t.to_string(), 0)).collect(),
            state: JobState::ALL.iter().map(|s| (s.to_string(), 0)).collect(),
            ..JobStats::default()
        };
        for (group, map) in [
            (JobGroup::Type, &mut stats.job_type),
            (JobGroup::State, &mut stats.state),
            (JobGroup::Day, &mut stats.created),
            (JobGroup::Region, &mut stats.region),
        ] {
            for (k, n) in berth_store::fleet::jobs::counts_by(self.db(), &filter, group).await? {
                map.insert(k, n);
            }
        }
        stats.site = stats.region.clone();
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
        let job = berth_store::fleet::jobs::get(self.db(), id)
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

    /// Inserts a job for an instance in the caller's transaction; a second active job for the
    /// same instance is a conflict that names the running one. `by` is None for jobs Berth
    /// starts itself.
    pub(crate) async fn enqueue(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        row: &InstanceRow,
        job_type: JobType,
        payload: serde_json::Value,
        by: Option<&Principal>,
    ) -> Result<Uuid, AppError> {
        self.enqueue_in(tx, row, job_type, payload, by, None).await
    }

    /// [`App::enqueue`] for a job that `workflow` starts (None: no workflow).
    pub(crate) async fn enqueue_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        row: &InstanceRow,
        job_type: JobType,
        payload: serde_json::Value,
        by: Option<&Principal>,
        workflow: Option<Uuid>,
    ) -> Result<Uuid, AppError> {
        match self
            .try_enqueue(tx, row, job_type, payload, by, workflow)
            .await?
        {
            Ok(id) => Ok(id),
            Err(running) => Err(AppError::conflict(
                "instance",
                match running {
                    Some(j) => format!(
                        "the instance is busy with job {} ({}, {}); try again when it has finished",
                        j.id, j.job_type, j.state
                    ),
                    None => "the instance is busy with another job; try again shortly".into(),
                },
            )),
        }
    }

    /// Like [`App::enqueue_in`], but a busy instance is an answer (its active job, if any), not
    /// an error.
    pub(crate) async fn try_enqueue(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        row: &InstanceRow,
        job_type: JobType,
        payload: serde_json::Value,
        by: Option<&Principal>,
        workflow: Option<Uuid>,
    ) -> Result<Result<Uuid, Option<JobRow>>, AppError> {
        let job = NewJob {
            id: Uuid::now_v7(),
            job_type,
            instance_id: row.id,
            project_id: row.project_id,
            region: &row.region,
            payload,
            created_by: by.map(|p| p.user_id),
            workflow_id: workflow,
        };
        Ok(match berth_store::fleet::jobs::enqueue(tx, &job).await? {
            Enqueued::Inserted(j) => Ok(j.id),
            Enqueued::Busy(running) => Err(running),
        })
    }

    /// The instance's row, locked for the rest of `tx` (so its status and jobs cannot change
    /// under a change being made to it).
    pub(crate) async fn lock_instance(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        id: Uuid,
    ) -> Result<InstanceRow, AppError> {
        berth_store::fleet::instances::get_for_update(&mut **tx, id)
            .await?
            .ok_or(AppError::NotFound("instance"))
    }

    /// Ends a change to an instance that a job applies: enqueues the job in `tx` (a busy
    /// instance is a 409 and nothing of the change stays), commits, wakes the runners, and
    /// records `event` as done by `p` to the instance.
    pub(crate) async fn commit_change(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        row: &InstanceRow,
        job_type: JobType,
        payload: serde_json::Value,
        p: &Principal,
        event: crate::audit::Event,
    ) -> Result<Uuid, AppError> {
        let job = self
            .enqueue(&mut tx, row, job_type, payload, Some(p))
            .await?;
        tx.commit().await?;
        self.wake_runners().await;
        self.audit(
            event
                .by(p)
                .project(row.project_id)
                .target("instance", row.id),
        )
        .await;
        Ok(job)
    }

    /// Wakes this replica's runners (and, through NOTIFY, every other replica's).
    pub(crate) async fn wake_runners(&self) {
        self.inner.job_wakeup.notify_waiters();
        let _ = berth_store::fleet::jobs::announce(self.db()).await;
    }

    /// Claims a job in the transaction that enqueues it, so that no runner takes it: the
    /// caller runs it with [`Self::run_now`] once the transaction is committed. (Should Berth
    /// stop in between, the next start puts it back like any interrupted job.)
    pub(crate) async fn claim_for_now(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        job: Uuid,
    ) -> Result<JobRow, AppError> {
        let runner = format!("{}-now", std::process::id());
        berth_store::fleet::jobs::claim_id(&mut **tx, job, &runner)
            .await?
            .ok_or_else(|| AppError::Internal(format!("job {job} could not be claimed")))
    }

    /// Starts running a job claimed by [`Self::claim_for_now`] (and committed) in a task of its
    /// own, which ends true once the job has. The job goes on whether or not anyone waits.
    pub(crate) fn start_now(&self, job: JobRow) -> tokio::task::JoinHandle<bool> {
        let app = self.clone();
        tokio::spawn(async move {
            let Some(_work) = app.begin_engine_work().await else {
                return false; // Stopping: the next start puts it back and runs it.
            };
            app.run_job(job).await;
            true
        })
    }

    /// Starts the runners after putting back jobs a previous run left unfinished.
    pub(crate) async fn start_job_runners(&self) -> Result<(), AppError> {
        let region = self.instance_settings().region.clone();
        let requeued = berth_store::fleet::jobs::requeue_interrupted(self.db(), &region).await?;
        if !requeued.is_empty() {
            tracing::warn!(
                jobs = requeued.len(),
                "resuming jobs interrupted by the last shutdown"
            );
        }
        let s = self.instance_settings();
        let general = (0..s.runners.max(1)).map(|_| None);
        let creates = (0..s.create_runners).map(|_| Some(JobType::Create));
        for (n, only) in general.chain(creates).enumerate() {
            let app = self.clone();
            let runner = format!("{}-{n}", std::process::id());
            tokio::spawn(async move { app.run_jobs(runner, only).await });
        }
        let app = self.clone();
        tokio::spawn(async move { app.listen_for_jobs().await });
        Ok(())
    }

    async fn listen_for_jobs(&self) {
        loop {
            self.store_health().wait_up().await;
            // Reconnect here, after waiting for the store, not inside `recv`.
            if let Ok(mut l) =
                berth_store::listen(self.db(), berth_store::fleet::jobs::CHANNEL).await
            {
                while let Ok(Some(_)) = l.try_recv().await {
                    self.inner.job_wakeup.notify_waiters();
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Claims and runs jobs (of one kind only, for a lane of its own) until Berth stops.
    async fn run_jobs(&self, runner: String, only: Option<JobType>) {
        let region = self.instance_settings().region.clone();
        loop {
            // Register interest before looking, so a wake-up in between is not lost.
            let woken = self.inner.job_wakeup.notified();
            // While the store is down there is nothing to claim: wait for it (a while at a
            // time, to notice a shutdown).
            if !self.store_health().wait_up_for(IDLE_POLL).await {
                if self.is_stopping() {
                    return;
                }
                continue;
            }
            let Some(work) = self.begin_engine_work().await else {
                return;
            };
            match berth_store::fleet::jobs::claim(self.db(), &region, &runner, only).await {
                Ok(Some(job)) => {
                    self.run_job(job).await;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    if !self.store_failed(&e) {
                        tracing::warn!(error = %e, "claiming a job failed");
                    }
                }
            }
            drop(work);
            let _ = tokio::time::timeout(IDLE_POLL, woken).await;
        }
    }

    async fn run_job(&self, job: JobRow) {
        let engine = self.engine().as_ref();
        let started = std::time::Instant::now();
        self.run_job_steps(engine, &job).await;
        metrics::histogram!("berth_job_duration_seconds", "type" => job.job_type.as_str())
            .record(started.elapsed().as_secs_f64());
        if let (true, Some(id)) = (self.is_stopping(), job.instance_id) {
            // The job started a server after Berth began stopping every instance.
            let _ = engine.stop(id).await;
        }
    }

    /// The one place that knows every kind.
    async fn run_job_steps(&self, engine: &dyn Engine, job: &JobRow) {
        match job.job_type {
            JobType::Create => self.run_kind::<create::Create>(engine, job).await,
            JobType::Pause => self.run_kind::<pause::Pause>(engine, job).await,
            JobType::Resume => self.run_kind::<resume::Resume>(engine, job).await,
            JobType::Restart => self.run_kind::<restart::Restart>(engine, job).await,
            JobType::Resize => self.run_kind::<resize::Resize>(engine, job).await,
            JobType::Delete => self.run_kind::<delete::Delete>(engine, job).await,
            JobType::Repair => self.run_kind::<repair::Repair>(engine, job).await,
            JobType::Backup => self.run_kind::<backup::Backup>(engine, job).await,
            JobType::Restore => self.run_kind::<restore::Restore>(engine, job).await,
            // Into an existing instance: its database is replaced, the instance stays.
            JobType::Import if job.payload["into_existing"] == true => {
                self.run_kind::<import::Reimport>(engine, job).await
            }
            JobType::Import => self.run_kind::<import::Import>(engine, job).await,
            JobType::Firewall => self.run_kind::<firewall::Firewall>(engine, job).await,
            JobType::Config => self.run_kind::<config::Config>(engine, job).await,
            JobType::DbUsers => self.run_kind::<db_users::DbUsers>(engine, job).await,
            JobType::Databases => self.run_kind::<databases::Databases>(engine, job).await,
            // The store never yields it (its strings parse strictly, and runners claim only the
            // kinds they know): a client-side value only.
            JobType::Unknown => {
                tracing::error!(job = %job.id, "a job of unknown kind was claimed; leaving it");
            }
        }
    }

    /// Runs one job of kind `K` under its deadline and records how it went.
    async fn run_kind<K: JobKind>(&self, engine: &dyn Engine, job: &JobRow) {
        let outcome = match tokio::time::timeout(K::DEADLINE, self.steps::<K>(engine, job)).await {
            Ok(r) => r,
            Err(_) => Err(AppError::Unavailable(format!(
                "{} did not finish within {} s",
                job.job_type,
                K::DEADLINE.as_secs()
            ))),
        };
        let result = match outcome {
            // The store went away under the job: its steps can all be repeated, so it goes back
            // to pending once the store is back rather than failing the instance.
            Err(_) if !self.store_health().is_up() => {
                tracing::warn!(job = %job.id, r#type = %job.job_type, "the store went away during a job; it will run again");
                self.record_outcome(|| berth_store::fleet::jobs::requeue(self.db(), job.id))
                    .await
            }
            Ok(done) => self.record_outcome(|| self.finish_job(job, done)).await,
            Err(e) => {
                // FAILURE: the operation could not be done; ERROR: Berth itself misbehaved.
                let state = if matches!(e, AppError::Internal(_)) {
                    JobState::Error
                } else {
                    JobState::Failure
                };
                let reason = e.to_string();
                tracing::warn!(job = %job.id, r#type = %job.job_type, error = %reason, "job failed");
                K::failed(self, engine, job, &reason).await;
                let message = format!("{} failed: {reason}; {}", job.job_type, K::ADVICE);
                self.record_outcome(|| {
                    self.fail_instance(job, state, &reason, K::FAILS_INSTANCE.then_some(&*message))
                })
                .await
            }
        };
        if let Err(e) = result {
            tracing::error!(job = %job.id, error = %e, "recording a job's outcome failed");
        }
    }

    async fn steps<K: JobKind>(
        &self,
        engine: &dyn Engine,
        job: &JobRow,
    ) -> Result<Option<Done>, AppError> {
        let id = job
            .instance_id
            .ok_or_else(|| AppError::Internal("job without instance".into()))?;
        let Some(instance) = berth_store::fleet::instances::get(self.db(), id).await? else {
            return Ok(None); // Already gone: nothing left to do.
        };
        let cx = Cx {
            app: self,
            engine,
            job,
            instance: &instance,
            deadline: K::DEADLINE,
        };
        K::run(&cx).await.map(Some)
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

    /// Marks the job done and the instance as the job left it, together.
    async fn finish_job(&self, job: &JobRow, done: Option<Done>) -> Result<(), sqlx::Error> {
        let mut tx = self.db().begin().await?;
        berth_store::fleet::jobs::finish(&mut *tx, job.id, JobState::Success, None).await?;
        if let (Some(id), Some(done)) = (job.instance_id, done) {
            match done {
                Done::Settled(status) => {
                    berth_store::fleet::instances::set_status(&mut *tx, id, status, None).await?
                }
                Done::SettledThenBackup(status) => {
                    berth_store::fleet::instances::set_status(&mut *tx, id, status, None).await?;
                    if let Some(row) = berth_store::fleet::instances::get(&mut *tx, id).await? {
                        self.enqueue_backup(
                            &mut tx,
                            &row,
                            berth_types::BackupType::Full,
                            berth_types::BackupTrigger::Initial,
                            None,
                        )
                        .await?;
                    }
                }
                Done::Unchanged => {}
                Done::Deleted => berth_store::fleet::instances::mark_deleted(&mut *tx, id).await?,
            }
        }
        tx.commit().await
    }

    /// Marks the job failed and, with a message, the instance `failed`, saying why and what to
    /// do.
    async fn fail_instance(
        &self,
        job: &JobRow,
        state: JobState,
        reason: &str,
        message: Option<&str>,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.db().begin().await?;
        berth_store::fleet::jobs::finish(&mut *tx, job.id, state, Some(reason)).await?;
        if let (Some(id), Some(message)) = (job.instance_id, message) {
            berth_store::fleet::instances::set_status(
                &mut *tx,
                id,
                InstanceStatus::Failed,
                Some(message),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Brings an instance up from nothing with the owner's password verifier.
    pub(crate) async fn provision(
        &self,
        engine: &dyn Engine,
        row: &InstanceRow,
        verifier: &str,
    ) -> Result<(), AppError> {
        let spec = instance_spec(row)?;
        let cert = self.server_certificate()?;
        let owner = Owner {
            username: &row.owner_username,
            database: &row.database_name,
            password_verifier: verifier,
        };
        engine.provision(&spec, owner, tls(&cert)).await?;
        Ok(())
    }

    /// Starts (or adopts) an instance's server with a freshly issued certificate, so
    /// certificates never outlive a restart by much and follow a changed public host.
    pub(crate) async fn start_instance(
        &self,
        engine: &dyn Engine,
        row: &InstanceRow,
    ) -> Result<(), AppError> {
        let spec = instance_spec(row)?;
        let cert = self.server_certificate()?;
        engine.start(&spec, tls(&cert)).await?;
        Ok(())
    }

    pub(crate) fn server_certificate(&self) -> Result<berth_tls::IssuedCert, AppError> {
        let host = &self.instance_settings().public_host;
        let mut dns = vec!["localhost".to_owned()];
        let mut ips: Vec<std::net::IpAddr> = vec![std::net::Ipv4Addr::LOCALHOST.into()];
        match host.parse::<std::net::IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if host != "localhost" => dns.push(host.clone()),
            Err(_) => {}
        }
        self.inner
            .ca
            .issue_server_cert("Berth instance", &dns, &ips)
            .map_err(|e| AppError::Internal(e.to_string()))
    }
}

pub(crate) fn tls(cert: &berth_tls::IssuedCert) -> Tls<'_> {
    Tls {
        cert_pem: &cert.cert_pem,
        key_pem: &cert.key_pem,
    }
}

/// The version, port and memory class an instance row describes.
pub(crate) fn instance_spec(row: &InstanceRow) -> Result<InstanceSpec, AppError> {
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
    Ok(InstanceSpec {
        id: row.id,
        major,
        port,
        memory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_named_by_their_job_type_and_lead_through_a_transitional_status() {
        for name in ["pause", "resume", "restart"] {
            let a = action(name).expect(name);
            assert_eq!(a.job_type.as_str(), name);
            assert!(a.via.is_transitional(), "{name}");
            assert!(!a.from.iter().any(|s| s.is_transitional()), "{name}");
            assert_ne!(a.desired, DesiredState::Deleted);
        }
        // Jobs users start by other routes (or Berth starts itself) are no actions.
        for name in ["create", "resize", "delete", "repair", "PAUSE", ""] {
            assert!(action(name).is_none(), "{name}");
        }
    }
}

#[cfg(test)]
mod steps_tests {
    use super::*;

    #[test]
    fn a_step_lasts_until_the_next_of_its_run_and_the_last_until_the_end() {
        let t = |ms: i64| chrono::DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds(ms);
        let recorded = serde_json::json!([
            {"name": "provision", "attempt": 1, "started_at": t(0)},
            // Berth restarted here: the first run's step has no end.
            {"name": "provision", "attempt": 2, "started_at": t(5_000)},
            {"name": "firewall", "attempt": 2, "started_at": t(5_120)},
        ]);
        let steps = steps_view(&recorded, Some(t(5_150)));
        let took: Vec<_> = steps
            .iter()
            .map(|s| (s.name.as_str(), s.attempt, s.duration_ms))
            .collect();
        assert_eq!(
            took,
            [
                ("provision", 1, None),
                ("provision", 2, Some(120)),
                ("firewall", 2, Some(30))
            ]
        );
        // Still running: the last step has no duration yet.
        assert_eq!(steps_view(&recorded, None)[2].duration_ms, None);
        // Nothing recorded (a job from before steps were): none.
        assert!(steps_view(&serde_json::json!([]), None).is_empty());
    }
}
