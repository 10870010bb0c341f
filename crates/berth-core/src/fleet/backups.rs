//! Backups of instances: listing them (also of deleted instances, whose backups outlive them
//! until retention runs out), taking one (a `backup` job), deleting one, the backup policy and
//! the restore window. The backup tool's repository is the truth; [`App::catalog_backups`]
//! mirrors it into the store after every change, so lists are fast and scoped to projects.

use berth_engine::{BackupRecord, Engine, Retention};
use berth_store::fleet::backups::{BackupFilter, BackupRow, NewBackup, PolicyRow, Recorded};
use berth_store::fleet::instances::InstanceRow;
use berth_types::{
    Backup, BackupAccepted, BackupPolicy, BackupQuery, BackupStatus, BackupTrigger, BackupType,
    CreateBackup, InstanceStatus, JobType, Page, Permission, RestoreWindow, Weekday,
};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::audit::Event;
use crate::{validate, App, AppError, Principal};

/// Retention of the default policy (BigAnimal's default window).
pub(crate) const DEFAULT_RETENTION_DAYS: i32 = 30;

/// The policy of an instance that has none stored: on, a daily full backup at a time between
/// 00:00 and 05:59 UTC that depends on the instance's id (so a fleet does not back up all at
/// once), no differentials, 30 days.
pub(crate) fn default_policy(instance: Uuid) -> PolicyRow {
    let minute = (instance.as_u128() % 360) as i32;
    PolicyRow {
        instance_id: instance,
        enabled: true,
        full_backup_minute: minute,
        full_backup_days: (1..=7).collect(),
        differential_every_hours: None,
        retention_days: Some(DEFAULT_RETENTION_DAYS),
        retention_full_backups: None,
    }
}

pub(crate) fn retention(p: &PolicyRow) -> Retention {
    match (p.retention_days, p.retention_full_backups) {
        (_, Some(n)) => Retention::FullBackups(n.max(1) as u32),
        (Some(d), None) => Retention::Days(d.max(1) as u32),
        (None, None) => Retention::Days(DEFAULT_RETENTION_DAYS as u32),
    }
}

fn policy_view(p: &PolicyRow) -> BackupPolicy {
    BackupPolicy {
        enabled: p.enabled,
        full_backup_time: format!(
            "{:02}:{:02}",
            p.full_backup_minute / 60,
            p.full_backup_minute % 60
        ),
        full_backup_days: p
            .full_backup_days
            .iter()
            .filter_map(|d| Weekday::from_iso_number(*d))
            .collect(),
        differential_every_hours: p.differential_every_hours,
        retention_days: p.retention_days,
        retention_full_backups: p.retention_full_backups,
    }
}

fn parse_policy(instance: Uuid, p: &BackupPolicy) -> Result<PolicyRow, AppError> {
    let bad = |m: &str| AppError::Validation(m.to_owned());
    let minute = p
        .full_backup_time
        .split_once(':')
        .filter(|(h, m)| {
            h.len() == 2 && m.len() == 2 && h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
        })
        .and_then(|(h, m)| Some((h.parse::<i32>().ok()?, m.parse::<i32>().ok()?)))
        .filter(|(h, m)| (0..24).contains(h) && (0..60).contains(m))
        .map(|(h, m)| h * 60 + m)
        .ok_or_else(|| bad("full_backup_time must be a UTC time as HH:MM, 00:00–23:59"))?;
    if p.full_backup_days.is_empty() {
        return Err(bad("full_backup_days must name at least one day"));
    }
    let mut days: Vec<i32> = p.full_backup_days.iter().map(|d| d.iso_number()).collect();
    days.sort_unstable();
    days.dedup();
    if let Some(h) = p.differential_every_hours {
        if !(1..=24).contains(&h) {
            return Err(bad(
                "differential_every_hours must be 1–24, or null for none",
            ));
        }
    }
    match (p.retention_days, p.retention_full_backups) {
        (Some(d), None) if (1..=3650).contains(&d) => {}
        (None, Some(n)) if (1..=1000).contains(&n) => {}
        (Some(_), None) => return Err(bad("retention_days must be 1–3650")),
        (None, Some(_)) => return Err(bad("retention_full_backups must be 1–1000")),
        _ => {
            return Err(bad(
                "set exactly one of retention_days and retention_full_backups",
            ))
        }
    }
    Ok(PolicyRow {
        instance_id: instance,
        enabled: p.enabled,
        full_backup_minute: minute,
        full_backup_days: days,
        differential_every_hours: p.differential_every_hours,
        retention_days: p.retention_days,
        retention_full_backups: p.retention_full_backups,
    })
}

/// The moment a backup can first restore to: pgBackRest records whole seconds, so the second
/// after the one it stopped in.
pub(crate) fn restorable_from(b: &BackupRow) -> Option<DateTime<Utc>> {
    (b.status == BackupStatus::Completed)
        .then_some(b.finished_at)
        .flatten()
        .map(|t| t + Duration::seconds(1))
}

impl App {
    pub(crate) async fn policy_of(&self, instance: Uuid) -> Result<PolicyRow, AppError> {
        Ok(berth_store::fleet::backups::policy(self.db(), instance)
            .await?
            .unwrap_or_else(|| default_policy(instance)))
    }

    /// An instance the caller may see, also a deleted one whose backups are still kept.
    pub(crate) async fn authorize_instance_history(
        &self,
        p: &Principal,
        id: Uuid,
        need: Permission,
    ) -> Result<InstanceRow, AppError> {
        let row = berth_store::fleet::instances::get_any(self.db(), id)
            .await?
            .filter(|r| r.archive_removed_at.is_none())
            .ok_or(AppError::NotFound("instance"))?;
        match self.authorize_project(p, row.project_id, need).await {
            Ok(_) => Ok(row),
            Err(AppError::NotFound(_)) => Err(AppError::NotFound("instance")),
            Err(e) => Err(e),
        }
    }

    fn backup_view(&self, b: BackupRow, all: &[BackupRow], window: &RestoreWindow) -> Backup {
        let depends_on = b.prior_label.as_ref().and_then(|prior| {
            all.iter()
                .find(|x| x.label.as_ref() == Some(prior))
                .map(|x| x.id)
        });
        let from = restorable_from(&b);
        Backup {
            id: b.id,
            instance_id: b.instance_id,
            project_id: b.project_id,
            instance_name: b.instance_name,
            instance_deleted: b.instance_deleted,
            backup_type: b.backup_type,
            status: b.status,
            trigger: b.trigger,
            label: b.label,
            depends_on,
            started_at: b.started_at,
            finished_at: b.finished_at,
            size: b.size,
            repository_size: b.repository_size,
            wal_start: b.wal_start,
            wal_stop: b.wal_stop,
            lsn_start: b.lsn_start,
            lsn_stop: b.lsn_stop,
            restorable_from: from,
            restorable_until: from.and_then(|f| window.latest.map(|l| l.max(f))),
            job_id: b.job_id,
            error: b.error,
            created_at: b.created_at,
        }
    }

    pub async fn list_backups(
        &self,
        p: &Principal,
        instance: Uuid,
        q: &BackupQuery,
    ) -> Result<Page<Backup>, AppError> {
        let row = self
            .authorize_instance_history(p, instance, Permission::InstancesRead)
            .await?;
        let filter = BackupFilter {
            instance_id: Some(row.id),
            project_id: None,
            status: backup_status(q.status.as_deref())?,
        };
        self.backup_page(&filter, q).await
    }

    /// The backups of every instance of a project, deleted ones included.
    pub async fn list_project_backups(
        &self,
        p: &Principal,
        project: Uuid,
        q: &BackupQuery,
    ) -> Result<Page<Backup>, AppError> {
        let project = self
            .authorize_project(p, project, Permission::InstancesRead)
            .await?;
        let filter = BackupFilter {
            instance_id: q.instance_id,
            project_id: Some(project.id()),
            status: backup_status(q.status.as_deref())?,
        };
        self.backup_page(&filter, q).await
    }

    async fn backup_page(
        &self,
        filter: &BackupFilter,
        q: &BackupQuery,
    ) -> Result<Page<Backup>, AppError> {
        let (limit, offset) = validate::page(q.limit, q.offset)?;
        let count = berth_store::fleet::backups::count(self.db(), filter).await?;
        let rows = berth_store::fleet::backups::list(self.db(), filter, limit, offset).await?;
        let mut results = Vec::with_capacity(rows.len());
        let mut windows: std::collections::HashMap<Uuid, (Vec<BackupRow>, RestoreWindow)> =
            std::collections::HashMap::new();
        for b in rows {
            if let std::collections::hash_map::Entry::Vacant(slot) = windows.entry(b.instance_id) {
                let all =
                    berth_store::fleet::backups::all_for_instance(self.db(), b.instance_id).await?;
                let instance = berth_store::fleet::instances::get_any(self.db(), b.instance_id)
                    .await?
                    .ok_or(AppError::NotFound("instance"))?;
                let window = self.window(&instance, &all).await;
                slot.insert((all, window));
            }
            let (all, window) = &windows[&b.instance_id];
            results.push(self.backup_view(b, all, window));
        }
        Ok(crate::page(count, limit, offset, results))
    }

    pub async fn get_backup(
        &self,
        p: &Principal,
        instance: Uuid,
        id: Uuid,
    ) -> Result<Backup, AppError> {
        let row = self
            .authorize_instance_history(p, instance, Permission::InstancesRead)
            .await?;
        let all = berth_store::fleet::backups::all_for_instance(self.db(), row.id).await?;
        let b = all
            .iter()
            .find(|b| b.id == id)
            .cloned()
            .ok_or(AppError::NotFound("backup"))?;
        let window = self.window(&row, &all).await;
        Ok(self.backup_view(b, &all, &window))
    }

    /// Takes a backup now (a `backup` job; the instance must be running).
    pub async fn create_backup(
        &self,
        p: &Principal,
        instance: Uuid,
        req: &CreateBackup,
    ) -> Result<BackupAccepted, AppError> {
        self.start_backup(p, instance, req, None).await
    }

    /// [`App::create_backup`], for `workflow` when it is one's (its job records it).
    pub(crate) async fn start_backup(
        &self,
        p: &Principal,
        instance: Uuid,
        req: &CreateBackup,
        workflow: Option<Uuid>,
    ) -> Result<BackupAccepted, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let kind = req.backup_type.unwrap_or(BackupType::Full);
        let mut tx = self.db().begin().await?;
        let row = self.lock_instance(&mut tx, id).await?;
        if row.status != InstanceStatus::Running {
            return Err(AppError::conflict(
                "instance",
                format!(
                    "cannot back up an instance that is {}; it must be running (its WAL up to \
                     the pause is archived already)",
                    row.status
                ),
            ));
        }
        if kind != BackupType::Full {
            let completed = berth_store::fleet::backups::labels(&mut *tx, id).await?;
            if completed.is_empty() {
                return Err(AppError::conflict(
                    "instance",
                    format!("a {kind} backup needs a full backup to build on; take a full one first, or wait for the instance's first backup"),
                ));
            }
        }
        let (backup, job) = match self
            .try_enqueue_backup(
                &mut tx,
                &row,
                kind,
                BackupTrigger::Manual,
                Some(p),
                workflow,
            )
            .await?
        {
            Ok(ids) => ids,
            Err(running) => return Err(backup_under_way(running.as_ref(), "take another")),
        };
        tx.commit().await?;
        self.wake_runners().await;
        self.audit(
            Event::new("backup.created")
                .by(p)
                .project(row.project_id)
                .target("instance", id)
                .details(match workflow {
                    Some(w) => {
                        serde_json::json!({ "backup_id": backup, "type": kind, "workflow_id": w })
                    }
                    None => serde_json::json!({ "backup_id": backup, "type": kind }),
                }),
        )
        .await;
        Ok(BackupAccepted {
            backup: self.get_backup(p, id, backup).await?,
            job_id: job,
        })
    }

    /// Enqueues a `backup` job with its pending backup row, in the caller's transaction; a busy
    /// instance is an answer (its active job), not an error.
    pub(crate) async fn try_enqueue_backup(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        row: &InstanceRow,
        kind: BackupType,
        trigger: BackupTrigger,
        by: Option<&Principal>,
        workflow: Option<Uuid>,
    ) -> Result<Result<(Uuid, Uuid), Option<berth_store::fleet::jobs::JobRow>>, AppError> {
        let backup = Uuid::now_v7();
        let payload = serde_json::json!({ "backup_id": backup, "type": kind, "trigger": trigger });
        let job = match self
            .try_enqueue(tx, row, JobType::Backup, payload, by, workflow)
            .await?
        {
            Ok(job) => job,
            Err(running) => return Ok(Err(running)),
        };
        berth_store::fleet::backups::insert_pending(
            &mut **tx,
            &NewBackup {
                id: backup,
                instance_id: row.id,
                project_id: row.project_id,
                backup_type: kind,
                trigger,
                job_id: Some(job),
            },
        )
        .await?;
        Ok(Ok((backup, job)))
    }

    /// The first backup of a new instance, enqueued with the outcome of its create job.
    pub(crate) async fn enqueue_backup(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        row: &InstanceRow,
        kind: BackupType,
        trigger: BackupTrigger,
        by: Option<&Principal>,
    ) -> Result<(), sqlx::Error> {
        // A store error leaves the transaction aborted, so its commit reports it.
        if let Err(e) = self
            .try_enqueue_backup(tx, row, kind, trigger, by, None)
            .await
        {
            tracing::warn!(instance = %row.id, error = %e, "enqueueing a first backup failed");
        }
        Ok(())
    }

    /// Deletes one backup, unless a newer one depends on it.
    pub async fn delete_backup(
        &self,
        p: &Principal,
        instance: Uuid,
        id: Uuid,
    ) -> Result<(), AppError> {
        let row = self
            .authorize_instance_history(p, instance, Permission::InstancesWrite)
            .await?;
        let all = berth_store::fleet::backups::all_for_instance(self.db(), row.id).await?;
        let b = all
            .iter()
            .find(|b| b.id == id)
            .ok_or(AppError::NotFound("backup"))?;
        match (b.status, &b.label) {
            (BackupStatus::Completed, Some(label)) => {
                if let Some(job) =
                    berth_store::fleet::jobs::active_of_type(self.db(), row.id, JobType::Backup)
                        .await?
                {
                    return Err(backup_under_way(Some(&job), "delete"));
                }
                // The repository, not the store's copy, says what depends on it: removing a
                // backup removes everything based on it too.
                let engine = self.engine().clone();
                let records = engine.backups(row.id).await?;
                let dependents: Vec<String> = records
                    .iter()
                    .filter(|r| r.prior.as_ref() == Some(label))
                    .map(|r| {
                        all.iter()
                            .find(|x| x.label.as_ref() == Some(&r.label))
                            .map_or_else(|| r.label.clone(), |x| x.id.to_string())
                    })
                    .collect();
                if !dependents.is_empty() {
                    return Err(AppError::conflict(
                        "backup",
                        format!(
                            "backup {id} is needed by {} (based on it); delete {} first",
                            dependents.join(", "),
                            if dependents.len() == 1 {
                                "that one"
                            } else {
                                "those"
                            }
                        ),
                    ));
                }
                let fulls = records
                    .iter()
                    .filter(|r| r.kind == BackupType::Full)
                    .count();
                if row.deleted_at.is_none() && b.backup_type == BackupType::Full && fulls <= 1 {
                    return Err(AppError::conflict(
                        "backup",
                        format!(
                            "backup {id} is the instance's only full backup: without it the \
                             instance cannot be restored; take another full backup first"
                        ),
                    ));
                }
                engine
                    .delete_backup(row.id, label)
                    .await
                    .map_err(|e| match e {
                        berth_engine::EngineError::Busy(m) => AppError::conflict("backup", m),
                        e => e.into(),
                    })?;
                self.catalog_backups(engine.as_ref(), &row, None).await?;
            }
            (BackupStatus::Failed, _) => berth_store::fleet::backups::delete(self.db(), id).await?,
            _ => {
                return Err(AppError::conflict(
                    "backup",
                    format!("backup {id} is {}; wait until it has finished", b.status),
                ))
            }
        }
        self.audit(
            Event::new("backup.deleted")
                .by(p)
                .project(row.project_id)
                .target("instance", row.id)
                .details(serde_json::json!({ "backup_id": id })),
        )
        .await;
        Ok(())
    }

    pub async fn get_backup_policy(
        &self,
        p: &Principal,
        instance: Uuid,
    ) -> Result<BackupPolicy, AppError> {
        let row = self
            .authorize_instance_history(p, instance, Permission::InstancesRead)
            .await?;
        Ok(policy_view(&self.policy_of(row.id).await?))
    }

    /// Replaces the policy; a new retention applies from the next backup on.
    pub async fn put_backup_policy(
        &self,
        p: &Principal,
        instance: Uuid,
        req: &BackupPolicy,
    ) -> Result<BackupPolicy, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesWrite)
            .await?
            .id();
        let policy = parse_policy(id, req)?;
        berth_store::fleet::backups::put_policy(self.db(), &policy).await?;
        self.audit(
            Event::new("backup_policy.updated")
                .by(p)
                .target("instance", id)
                .details(serde_json::to_value(req).unwrap_or_default()),
        )
        .await;
        Ok(policy_view(&policy))
    }

    pub async fn restore_window(
        &self,
        p: &Principal,
        instance: Uuid,
    ) -> Result<RestoreWindow, AppError> {
        let row = self
            .authorize_instance_history(p, instance, Permission::InstancesRead)
            .await?;
        let all = berth_store::fleet::backups::all_for_instance(self.db(), row.id).await?;
        Ok(self.window(&row, &all).await)
    }

    /// From the end of the oldest completed backup (never before the instance existed) to now
    /// for a running instance that archives, else to the last moment known to be archived.
    pub(crate) async fn window(&self, row: &InstanceRow, backups: &[BackupRow]) -> RestoreWindow {
        let earliest = backups
            .iter()
            .filter_map(restorable_from)
            .min()
            .map(|t| t.max(row.created_at));
        let newest = backups.iter().filter_map(restorable_from).max();
        let mut window = RestoreWindow {
            instance_id: row.id,
            earliest,
            latest: None,
            continuous: false,
            last_archived_wal: None,
            last_archived_at: None,
        };
        if row.deleted_at.is_none() && row.status == InstanceStatus::Running {
            if let Ok(spec) = crate::jobs::instance_spec(row) {
                if let Ok(state) = self.engine().archive_state(&spec).await {
                    window.last_archived_wal = state.last_archived_wal.clone();
                    window.last_archived_at = state.last_archived_at;
                    if !state.is_failing() {
                        window.latest = Some(Utc::now());
                        window.continuous = true;
                    } else {
                        window.latest = state.last_archived_at;
                    }
                }
            }
        }
        if window.latest.is_none() {
            window.latest = row.archived_until.max(newest);
        }
        if window.earliest.is_none() || window.latest < window.earliest {
            window.earliest = None;
            window.latest = None;
            window.continuous = false;
        }
        window
    }

    /// Mirrors the repository's backups of an instance into the store: the backup a job just
    /// took gets that job's row (`taken`: the row and when the job started), any other backup
    /// the store does not know is added (a spare's first backup, or one a crash left
    /// unrecorded), and backups the repository expired are forgotten.
    pub(crate) async fn catalog_backups(
        &self,
        engine: &dyn Engine,
        row: &InstanceRow,
        taken: Option<(Uuid, BackupType, DateTime<Utc>)>,
    ) -> Result<(), AppError> {
        let records = engine.backups(row.id).await?;
        let known = berth_store::fleet::backups::labels(self.db(), row.id).await?;
        // The job's backup: the newest of its type that began after the job did, not yet known.
        let mine = taken.and_then(|(id, kind, since)| {
            records
                .iter()
                .rev()
                .find(|r| {
                    r.kind == kind
                        && !known.contains(&r.label)
                        && r.started_at >= since - Duration::seconds(2)
                })
                .map(|r| (id, r.label.clone()))
        });
        let mut first = known.is_empty();
        for r in &records {
            let id = mine
                .as_ref()
                .filter(|(_, l)| *l == r.label)
                .map(|(id, _)| *id);
            if known.contains(&r.label) && id.is_none() {
                continue;
            }
            let trigger = match (id, first) {
                (Some(_), _) => None,
                (None, true) => Some(BackupTrigger::Initial),
                (None, false) => Some(BackupTrigger::Scheduled),
            };
            first = false;
            berth_store::fleet::backups::record_completed(
                self.db(),
                row.id,
                row.project_id,
                id,
                trigger.unwrap_or(BackupTrigger::Manual),
                &recorded(r),
            )
            .await?;
        }
        let gone: Vec<String> = known
            .into_iter()
            .filter(|l| !records.iter().any(|r| &r.label == l))
            .collect();
        if !gone.is_empty() {
            berth_store::fleet::backups::forget_labels(self.db(), row.id, &gone).await?;
        }
        Ok(())
    }
}

fn recorded(r: &BackupRecord) -> Recorded<'_> {
    Recorded {
        label: &r.label,
        backup_type: r.kind,
        prior_label: r.prior.as_deref(),
        started_at: r.started_at,
        finished_at: r.finished_at,
        size: r.size,
        repository_size: r.repository_size,
        wal_start: &r.wal_start,
        wal_stop: &r.wal_stop,
        lsn_start: &r.lsn_start,
        lsn_stop: &r.lsn_stop,
    }
}

/// 409: the instance's backup job (one at a time) is active; `then`: what to do once it ends.
fn backup_under_way(job: Option<&berth_store::fleet::jobs::JobRow>, then: &str) -> AppError {
    AppError::conflict(
        "instance",
        match job {
            Some(j) => format!(
                "a backup of this instance is under way (job {}, {}); {then} when it has finished",
                j.id, j.state
            ),
            None => format!("a backup of this instance is under way; {then} when it has finished"),
        },
    )
}

fn backup_status(s: Option<&str>) -> Result<Option<BackupStatus>, AppError> {
    s.map(|s| {
        s.parse().map_err(|_| {
            AppError::Validation(format!(
                "unknown status `{}`; use pending, running, completed or failed",
                s.chars().take(40).collect::<String>()
            ))
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(time: &str, days: Vec<Weekday>, rd: Option<i32>, rf: Option<i32>) -> BackupPolicy {
        BackupPolicy {
            enabled: true,
            full_backup_time: time.into(),
            full_backup_days: days,
            differential_every_hours: None,
            retention_days: rd,
            retention_full_backups: rf,
        }
    }

    #[test]
    fn policies_are_validated_and_round_trip() {
        let id = Uuid::now_v7();
        let p = policy(
            "03:30",
            vec![Weekday::Sunday, Weekday::Monday],
            Some(7),
            None,
        );
        let row = parse_policy(id, &p).unwrap();
        assert_eq!(row.full_backup_minute, 210);
        assert_eq!(row.full_backup_days, vec![1, 7]);
        assert_eq!(
            policy_view(&row).full_backup_days,
            vec![Weekday::Monday, Weekday::Sunday]
        );
        for bad in [
            "3:30", "24:00", "12:60", "", "ab:cd", "03:30:00", "+3:00", "03:+5",
        ] {
            assert!(parse_policy(id, &policy(bad, vec![Weekday::Monday], Some(1), None)).is_err());
        }
        assert!(parse_policy(id, &policy("03:00", vec![], Some(1), None)).is_err());
        assert!(parse_policy(id, &policy("03:00", vec![Weekday::Monday], None, None)).is_err());
        assert!(parse_policy(
            id,
            &policy("03:00", vec![Weekday::Monday], Some(1), Some(1))
        )
        .is_err());
        assert!(parse_policy(id, &policy("03:00", vec![Weekday::Monday], Some(0), None)).is_err());
        assert_eq!(
            retention(
                &parse_policy(id, &policy("03:00", vec![Weekday::Monday], None, Some(2))).unwrap()
            ),
            Retention::FullBackups(2)
        );
        let d = default_policy(id);
        assert!(d.full_backup_minute < 360);
        assert_eq!(retention(&d), Retention::Days(30));
    }
}
