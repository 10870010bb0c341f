//! Database instances: creating, listing, changing and deleting them. Every change that takes
//! time is written as a job in the same transaction as the instance's new status, and the job
//! runner (`jobs`) does the work.

use berth_store::fleet::instances::{InstanceFilter, InstanceRow, NewInstance};
use berth_types::{
    Accepted, CreateInstance, CreatedInstance, DesiredState, Instance, InstanceQuery,
    InstanceStatus, JobRef, JobState, JobType, Page, Permission, Region, UpdateInstance,
};
use uuid::Uuid;

use super::restore::ResolvedSource;
use crate::audit::Event;
use crate::{validate, App, AppError, Principal};

pub(crate) const ENGINE: &str = "postgres";
pub(crate) const OWNER: &str = "app";
pub(crate) const DATABASE: &str = "app";
/// How long a create from a spare waits for its claim before answering (see `answer_as_now`).
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Storage sizes offered. The local engine does not enforce a quota (instances share the host's
/// disk); the size is recorded for planning and for engines that do.
pub(crate) const STORAGE_SIZES: &[&str] = &["10GB", "20GB", "50GB", "100GB"];

/// One of the storage sizes offered, however it was capitalized.
fn storage_size(s: &str) -> Result<&'static str, AppError> {
    STORAGE_SIZES
        .iter()
        .find(|x| x.eq_ignore_ascii_case(s))
        .copied()
        .ok_or_else(|| {
            AppError::Validation(format!(
                "unknown storage size `{}`; choose one of {}",
                truncate(s),
                STORAGE_SIZES.join(", ")
            ))
        })
}

/// Where instances run on this server.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    pub region: String,
    /// Host name clients use to reach instances (in connection URLs and certificates).
    pub public_host: String,
    pub first_port: u16,
    pub last_port: u16,
    /// Jobs run at once.
    pub runners: usize,
    /// Runners of their own for creates, so a burst of them does not queue behind backups.
    pub create_runners: usize,
    /// How many spare instances are kept ready per installed version.
    pub spare_pool: crate::SparePolicy,
    /// The memory size spares are made with; creates of other sizes take the cold path.
    pub spare_memory: String,
    /// The firewall rules of a new instance that names none (normalised networks).
    pub default_firewall_rules: Vec<String>,
    /// How instances are sampled for statistics.
    pub stats: crate::StatsSettings,
    /// How long a data source's test may wait for its server.
    pub data_source_timeout: std::time::Duration,
}

impl App {
    pub fn regions(&self) -> Vec<Region> {
        vec![Region {
            id: self.instance_settings().region.clone(),
            engine: ENGINE.into(),
            versions: self
                .engine()
                .versions()
                .iter()
                .map(u32::to_string)
                .collect(),
            memory_sizes: berth_engine::MEMORY_CLASSES
                .iter()
                .map(|c| c.name.to_owned())
                .collect(),
            storage_sizes: STORAGE_SIZES.iter().map(|s| (*s).to_owned()).collect(),
        }]
    }

    pub(crate) fn instance_view(&self, row: &InstanceRow, current_job: Option<JobRef>) -> Instance {
        let host = self.instance_settings().public_host.clone();
        let connection_url = row.port.map(|port| {
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            format!(
                "postgresql://{}@{host}:{port}/{}?sslmode=verify-full",
                row.owner_username, row.database_name
            )
        });
        Instance {
            id: row.id,
            name: row.name.clone(),
            project_id: row.project_id,
            engine: row.engine.clone(),
            version: row.version.clone(),
            region: row.region.clone(),
            memory: row.memory.clone(),
            storage: row.storage.clone(),
            status: row.status,
            status_message: row.status_message.clone(),
            connection_url,
            username: row.owner_username.clone(),
            database: row.database_name.clone(),
            host,
            port: row.port,
            deletion_protection: row.deletion_protection,
            created_at: row.created_at,
            updated_at: row.updated_at,
            current_job,
            restored_from: super::restore::restored_from(row),
            imported_from: row.source_data_source_id,
        }
    }

    async fn current_job(&self, instance: Uuid) -> Result<Option<JobRef>, AppError> {
        Ok(
            berth_store::fleet::jobs::active_for_instance(self.db(), instance)
                .await?
                .map(|j| JobRef {
                    id: j.id,
                    job_type: j.job_type,
                    state: j.state,
                }),
        )
    }

    /// Validates a create request against what the region offers.
    fn check_create(
        &self,
        req: &CreateInstance,
    ) -> Result<(String, &'static berth_engine::MemoryClass, String), AppError> {
        let name = instance_name(&req.name)?;
        if req.engine != ENGINE {
            return Err(AppError::Validation(format!(
                "unknown engine `{}`; the only engine is `postgres`",
                truncate(&req.engine)
            )));
        }
        let region = self
            .regions()
            .into_iter()
            .find(|r| r.id == req.region)
            .ok_or_else(|| {
                AppError::Validation(format!(
                    "unknown region `{}`; see GET /api/v1/regions",
                    truncate(&req.region)
                ))
            })?;
        if !region.versions.contains(&req.version) {
            return Err(AppError::Validation(format!(
                "version `{}` is not offered in region `{}`; choose one of {}",
                truncate(&req.version),
                region.id,
                region.versions.join(", ")
            )));
        }
        let memory = berth_engine::memory_class(&req.memory).ok_or_else(|| {
            AppError::Validation(format!(
                "unknown memory size `{}`; choose one of {}",
                truncate(&req.memory),
                region.memory_sizes.join(", ")
            ))
        })?;
        let storage = match &req.storage {
            None => STORAGE_SIZES[0].to_owned(),
            Some(s) => storage_size(s)?.to_owned(),
        };
        Ok((name, memory, storage))
    }

    /// Creates an instance; the answer comes at once (202) and a `create` job brings it up.
    /// With an idempotency key, a retried request gets the original answer.
    pub async fn create_instance(
        &self,
        p: &Principal,
        req: &CreateInstance,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedInstance, AppError> {
        let project = self
            .authorize_project(p, req.project_id, Permission::InstancesWrite)
            .await?;
        let (name, memory, storage) = self.check_create(req)?;
        let rules = self.initial_rules(req.firewall_rules.as_deref())?;
        let source = match &req.source {
            Some(s) => Some(
                self.resolve_source(p, project.id(), s, &req.version)
                    .await?,
            ),
            None => None,
        };
        let request_hash =
            berth_auth::sha256(serde_json::to_string(req).unwrap_or_default().as_bytes());
        // Before the transaction: hashing takes milliseconds nobody else should wait for.
        let password = berth_tls::generate_password();
        let verifier = berth_tls::scram_sha256_verifier(&password);
        let mut tx = self.db().begin().await?;
        if let Some(key) = idempotency_key {
            if key.is_empty() || key.len() > 255 {
                return Err(AppError::Validation(
                    "Idempotency-Key must be 1–255 characters".into(),
                ));
            }
            berth_store::fleet::idempotency::lock(&mut *tx, p.user_id, key).await?;
            if let Some((hash, sealed)) =
                berth_store::fleet::idempotency::get(&mut *tx, p.user_id, key).await?
            {
                if hash != request_hash {
                    return Err(AppError::conflict(
                        "idempotency key",
                        "this Idempotency-Key was used for a different request",
                    ));
                }
                let plain = self.keyring().open(&sealed, key.as_bytes()).map_err(|_| {
                    AppError::Internal("idempotent response cannot be unsealed".into())
                })?;
                return serde_json::from_slice(&plain)
                    .map_err(|e| AppError::Internal(e.to_string()));
            }
        }
        // A ready spare of this shape becomes the instance: same id, same port. (No port is
        // allocated, so no lock is needed: the spare's row and the instance's change hands in
        // this transaction.) A restore needs a data directory of its own: never a spare.
        let wants_spare = self.instance_settings().spare_pool.floor > 0
            && source.is_none()
            && memory.name == self.instance_settings().spare_memory;
        // (Counted while it is answered: the keeper makes no spare during a burst.)
        let _in_flight = wants_spare.then(|| self.create_in_flight());
        let spare = if wants_spare {
            berth_store::fleet::spares::claim(&mut *tx, &req.region, &req.version, memory.name)
                .await?
        } else {
            None
        };
        let id = spare.as_ref().map_or_else(Uuid::now_v7, |s| s.id);
        let row = berth_store::fleet::instances::insert(
            &mut *tx,
            &NewInstance {
                id,
                port: spare.as_ref().map(|s| s.port),
                project_id: project.id(),
                name: &name,
                engine: ENGINE,
                version: &req.version,
                region: &req.region,
                memory: memory.name,
                storage: &storage,
                owner_username: OWNER,
                database_name: DATABASE,
                created_by: p.user_id,
                source_instance_id: source.as_ref().and_then(ResolvedSource::instance_id),
                source_backup_id: req.source.as_ref().and_then(|s| s.backup_id),
                source_point_in_time: req.source.as_ref().and_then(|s| s.point_in_time),
                source_data_source_id: source.as_ref().and_then(ResolvedSource::data_source_id),
            },
        )
        .await
        .map_err(|e| AppError::clash(e, &name))?;
        for (cidr, description) in &rules {
            berth_store::fleet::firewall::insert(
                &mut *tx,
                Uuid::now_v7(),
                id,
                cidr,
                description,
                Some(p.user_id),
            )
            .await?;
        }
        let (job_type, payload) = match &source {
            None => (
                JobType::Create,
                serde_json::json!({
                    "password_verifier": verifier,
                    "spare": spare.is_some(),
                    "spare_backed_up": spare.as_ref().is_some_and(|s| s.backed_up),
                }),
            ),
            Some(ResolvedSource::Restore { row, target }) => (
                JobType::Restore,
                serde_json::json!({
                    "password_verifier": verifier,
                    "source_instance_id": row.id,
                    "target": target,
                }),
            ),
            Some(ResolvedSource::Import { data_source }) => (
                JobType::Import,
                serde_json::json!({
                    "password_verifier": verifier,
                    "data_source_id": data_source,
                }),
            ),
        };
        let job = self
            .enqueue(&mut tx, &row, job_type, payload, Some(p))
            .await?;
        // A claimed spare's job is run by this request (below), never by a runner.
        let run_here = match spare {
            Some(_) => Some(self.claim_for_now(&mut tx, job).await?),
            None => None,
        };
        // Last: the port's claim is held until the commit right after.
        let port = match &spare {
            Some(s) => s.port,
            None => {
                let port = self.claim_port(&mut tx).await?.ok_or_else(|| {
                    AppError::Unavailable("every instance port of this server is taken; delete an instance or widen the port range".into())
                })?;
                berth_store::fleet::instances::set_port(&mut *tx, id, port).await?;
                port
            }
        };
        let row = InstanceRow {
            port: Some(port),
            ..row
        };
        let mut created = CreatedInstance {
            instance: self.instance_view(
                &row,
                Some(JobRef {
                    id: job,
                    job_type,
                    state: JobState::Pending,
                }),
            ),
            password,
            job_id: job,
        };
        if let Some(key) = idempotency_key {
            let plain =
                serde_json::to_vec(&created).map_err(|e| AppError::Internal(e.to_string()))?;
            let sealed = self.keyring().seal(&plain, key.as_bytes());
            berth_store::fleet::idempotency::insert(
                &mut *tx,
                p.user_id,
                key,
                &request_hash,
                &sealed,
            )
            .await?;
        }
        tx.commit().await?;
        // Started at once, before the bookkeeping below.
        let claiming = run_here.map(|job| self.start_now(job));
        if claiming.is_none() {
            self.wake_runners().await;
        }
        if source.is_none() {
            // (It may also have taken a template copy: the keeper makes another.)
            self.spare_demand(wants_spare);
        }
        if wants_spare {
            let outcome = if spare.is_some() { "claimed" } else { "missed" };
            metrics::counter!("berth_spare_claims_total", "outcome" => outcome).increment(1);
        }
        self.audit(
            Event::new("instance.created")
                .by(p)
                .project(row.project_id)
                .target("instance", id)
                .details(serde_json::json!({
                    "name": name,
                    "source": req.source.as_ref().and_then(|s| s.instance_id),
                    "data_source": req.source.as_ref().and_then(|s| s.data_source_id),
                })),
        )
        .await;
        if let Some(claiming) = claiming {
            if matches!(
                tokio::time::timeout(CLAIM_WAIT, claiming).await,
                Ok(Ok(true))
            ) {
                self.answer_as_now(&mut created).await;
            }
        }
        Ok(created)
    }

    /// A claimed spare needs tens of milliseconds: its job runs in the request, which answers
    /// once the owner can sign in, so the connection URL works at once instead of after a few
    /// refused attempts (which, in a burst, take the cores from the claims). Bounded (a slow
    /// claim answers `creating` and goes on), and never failing: the instance is made, and the
    /// answer holds the only copy of its password.
    async fn answer_as_now(&self, created: &mut CreatedInstance) {
        let id = created.instance.id;
        match tokio::time::timeout(CLAIM_WAIT, self.instance_now(id)).await {
            Ok(Ok(Some(view))) => created.instance = view,
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(instance = %id, error = %e, "answering a create as it was")
            }
            Err(_) => {
                tracing::warn!(instance = %id, "answering a create as it was: the store is slow")
            }
        }
    }

    /// The instance as it is now (None: deleted meanwhile).
    async fn instance_now(&self, id: Uuid) -> Result<Option<Instance>, AppError> {
        let Some(row) = berth_store::fleet::instances::get(self.db(), id).await? else {
            return Ok(None);
        };
        Ok(Some(self.instance_view(&row, self.current_job(id).await?)))
    }

    /// Claims, for the rest of the transaction, a port of the range that no instance or spare
    /// has, no concurrent create is claiming, and nothing else on this host listens on (None:
    /// every port is taken).
    pub(crate) async fn claim_port(
        &self,
        tx: &mut sqlx::PgConnection,
    ) -> Result<Option<i32>, AppError> {
        let s = self.instance_settings();
        let range = (i32::from(s.first_port), i32::from(s.last_port));
        let mut skip = Vec::new();
        loop {
            let candidates = berth_store::fleet::ports::candidates(tx, range, &skip, 16).await?;
            if candidates.is_empty() {
                return Ok(None);
            }
            for port in candidates {
                let free = berth_store::fleet::ports::try_claim(tx, port).await?
                    && u16::try_from(port).is_ok_and(|p| {
                        std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, p)).is_ok()
                    });
                if free {
                    return Ok(Some(port));
                }
                skip.push(port);
            }
        }
    }

    pub async fn list_instances(
        &self,
        p: &Principal,
        q: &InstanceQuery,
    ) -> Result<Page<Instance>, AppError> {
        let (limit, offset) = validate::page(q.limit, q.offset)?;
        let projects = self
            .visible_projects(p, Permission::InstancesRead, q.project_id)
            .await?;
        let filter = InstanceFilter {
            projects,
            project_id: q.project_id,
            status: q.status.clone(),
            name: q.name.clone(),
        };
        let count = berth_store::fleet::instances::count(self.db(), &filter).await?;
        let rows = berth_store::fleet::instances::list(self.db(), &filter, limit, offset).await?;
        let mut results = Vec::with_capacity(rows.len());
        for row in &rows {
            let job = if row.status.is_transitional() {
                self.current_job(row.id).await?
            } else {
                None
            };
            results.push(self.instance_view(row, job));
        }
        Ok(crate::page(count, limit, offset, results))
    }

    pub async fn get_instance(&self, p: &Principal, id: Uuid) -> Result<Instance, AppError> {
        let instance = self
            .authorize_instance(p, id, Permission::InstancesRead)
            .await?;
        let job = self.current_job(instance.id()).await?;
        Ok(self.instance_view(instance.row(), job))
    }

    /// Starts a lifecycle operation: checks the instance is in a status it applies to, sets the
    /// transitional status and enqueues the job, atomically.
    pub async fn instance_action(
        &self,
        p: &Principal,
        id: Uuid,
        action: &str,
    ) -> Result<Accepted, AppError> {
        self.start_action(p, id, action, None).await
    }

    /// [`App::instance_action`], for `workflow` when it is one's (its job records it).
    pub(crate) async fn start_action(
        &self,
        p: &Principal,
        id: Uuid,
        action: &str,
        workflow: Option<Uuid>,
    ) -> Result<Accepted, AppError> {
        let act = crate::jobs::action(action).ok_or(AppError::NotFound("action"))?;
        // Every write below is to the instance the check was made on.
        let id = self
            .authorize_instance(p, id, Permission::InstancesWrite)
            .await?
            .id();
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if !act.from.contains(&row.status) {
            if let Some(job) = berth_store::fleet::jobs::active_for_instance(&mut *tx, id).await? {
                return Err(AppError::conflict(
                    "instance",
                    format!(
                        "the instance is busy with job {} ({}, {})",
                        job.id, job.job_type, job.state
                    ),
                ));
            }
            let from: Vec<&str> = act.from.iter().map(|s| s.as_str()).collect();
            return Err(AppError::conflict(
                "instance",
                format!(
                    "cannot {action} an instance that is {}; it must be {}",
                    row.status,
                    from.join(" or ")
                ),
            ));
        }
        let job = self
            .enqueue_in(
                &mut tx,
                &row,
                act.job_type,
                serde_json::json!({}),
                Some(p),
                workflow,
            )
            .await?;
        berth_store::fleet::instances::set_status(&mut *tx, id, act.via, None).await?;
        berth_store::fleet::instances::set_desired(&mut *tx, id, act.desired).await?;
        tx.commit().await?;
        self.wake_runners().await;
        let mut event = Event::new(&format!("instance.{action}"))
            .by(p)
            .project(row.project_id)
            .target("instance", id);
        if let Some(w) = workflow {
            event = event.details(serde_json::json!({ "workflow_id": w }));
        }
        self.audit(event).await;
        self.accepted(id, job, act.job_type).await
    }

    pub(crate) async fn accepted(
        &self,
        id: Uuid,
        job: Uuid,
        job_type: JobType,
    ) -> Result<Accepted, AppError> {
        let row = berth_store::fleet::instances::get(self.db(), id)
            .await?
            .ok_or(AppError::NotFound("instance"))?;
        let job_ref = JobRef {
            id: job,
            job_type,
            state: JobState::Pending,
        };
        Ok(Accepted {
            instance: self.instance_view(&row, Some(job_ref.clone())),
            job_id: job,
        })
    }

    /// Renames, protects, or resizes (a job) an instance.
    pub async fn update_instance(
        &self,
        p: &Principal,
        id: Uuid,
        req: &UpdateInstance,
    ) -> Result<(Instance, Option<Uuid>), AppError> {
        // Every write below is to the instance the check was made on.
        let id = self
            .authorize_instance(p, id, Permission::InstancesWrite)
            .await?
            .id();
        let name = req.name.as_deref().map(instance_name).transpose()?;
        let memory = match &req.memory {
            Some(m) => Some(berth_engine::memory_class(m).ok_or_else(|| {
                AppError::Validation(format!(
                    "unknown memory size `{}`; choose one of {}",
                    truncate(m),
                    berth_engine::MEMORY_CLASSES
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?),
            None => None,
        };
        let storage = req.storage.as_deref().map(storage_size).transpose()?;
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        let resize = memory.filter(|m| m.name != row.memory);
        let grow = storage.filter(|s| *s != row.storage);
        if let Some(to) = grow {
            // Disks grow, they do not shrink (nor do the volumes of engines that enforce sizes).
            let rank = |s: &str| STORAGE_SIZES.iter().position(|x| *x == s);
            if rank(to) < rank(&row.storage) {
                return Err(AppError::Validation(format!(
                    "storage only grows: the instance has {}; choose a larger size",
                    row.storage
                )));
            }
        }
        let mut job = None;
        if let Some(m) = resize {
            if ![InstanceStatus::Running, InstanceStatus::Paused].contains(&row.status) {
                return Err(AppError::conflict(
                    "instance",
                    format!("cannot resize an instance that is {}", row.status),
                ));
            }
            job = Some(
                self.enqueue(
                    &mut tx,
                    &row,
                    JobType::Resize,
                    serde_json::json!({ "from": row.memory, "to": m.name }),
                    Some(p),
                )
                .await?,
            );
            if row.status == InstanceStatus::Running {
                berth_store::fleet::instances::set_status(
                    &mut *tx,
                    id,
                    InstanceStatus::Updating,
                    None,
                )
                .await?;
            }
        }
        let updated = berth_store::fleet::instances::update(
            &mut *tx,
            id,
            name.as_deref(),
            resize.map(|m| m.name),
            grow,
            req.deletion_protection,
        )
        .await?
        .ok_or(AppError::NotFound("instance"))?;
        tx.commit().await?;
        if job.is_some() {
            self.wake_runners().await;
        }
        self.audit(
            Event::new("instance.updated")
                .by(p)
                .project(row.project_id)
                .target("instance", id),
        )
        .await;
        let current = self.current_job(id).await?;
        Ok((self.instance_view(&updated, current), job))
    }

    /// Deletes an instance (a job), unless deletion protection is on.
    pub async fn delete_instance(&self, p: &Principal, id: Uuid) -> Result<Accepted, AppError> {
        // Every write below is to the instance the check was made on.
        let id = self
            .authorize_instance(p, id, Permission::InstancesWrite)
            .await?
            .id();
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if row.deletion_protection {
            return Err(AppError::conflict(
                "instance",
                "deletion protection is on; \
                 turn it off with PATCH {\"deletion_protection\": false} first",
            ));
        }
        let job = self
            .enqueue(
                &mut tx,
                &row,
                JobType::Delete,
                serde_json::json!({}),
                Some(p),
            )
            .await?;
        berth_store::fleet::instances::set_status(&mut *tx, id, InstanceStatus::Destroying, None)
            .await?;
        berth_store::fleet::instances::set_desired(&mut *tx, id, DesiredState::Deleted).await?;
        tx.commit().await?;
        self.wake_runners().await;
        self.audit(
            Event::new("instance.deleted")
                .by(p)
                .project(row.project_id)
                .target("instance", id),
        )
        .await;
        self.accepted(id, job, JobType::Delete).await
    }

    /// The CA certificate instances' server certificates chain to.
    pub fn ca_pem(&self) -> String {
        self.inner.ca.cert_pem().to_owned()
    }
}

pub(crate) fn instance_name(s: &str) -> Result<String, AppError> {
    let ok = (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(AppError::Validation(
            "name must be 1–63 characters: letters, digits, '-' and '_'".into(),
        ))
    }
}

/// Echoes user input in messages without letting a huge value through.
pub(crate) fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}
