//! The backup scheduler: enqueues the backups each running instance's policy asks for (a full
//! backup at the policy's time on its days, differentials in between), and removes the backups
//! and archive of deleted instances once their retention has run out after the deletion.
//! Decisions follow [`App::now`], so tests move the clock instead of waiting for 03:00.

use std::time::Duration;

use berth_store::fleet::backups::PolicyRow;
use berth_types::{BackupTrigger, BackupType, InstanceStatus};
use chrono::{DateTime, Datelike, NaiveTime, Utc};

use crate::fleet::backups::DEFAULT_RETENTION_DAYS;
use crate::{App, AppError};

const CHECK_EVERY: Duration = Duration::from_secs(5);
/// How long after a first backup that did not complete another is tried.
const FIRST_BACKUP_RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// How long after a backup failed the schedule tries again.
const FAILED_BACKUP_RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

impl App {
    pub(crate) fn start_backup_scheduler(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CHECK_EVERY).await;
                if app.is_stopping() {
                    return;
                }
                if !app.store_health().is_up() {
                    continue;
                }
                if let Err(e) = app.schedule_backups().await {
                    tracing::warn!(error = %e, "scheduling backups failed");
                }
                if let Err(e) = app.remove_expired_archives().await {
                    tracing::warn!(error = %e, "removing the backups of deleted instances failed");
                }
            }
        });
    }

    async fn schedule_backups(&self) -> Result<(), AppError> {
        let now = self.now();
        let region = self.instance_settings().region.clone();
        let mut enqueued = false;
        for row in berth_store::fleet::instances::all_live(self.db(), &region).await? {
            if row.status != InstanceStatus::Running {
                continue; // A paused instance's archive was sealed when it stopped.
            }
            // A backup under way settles everything below when it ends.
            if berth_store::fleet::jobs::active_of_type(
                self.db(),
                row.id,
                berth_types::JobType::Backup,
            )
            .await?
            .is_some()
            {
                continue;
            }
            // A backup that failed is tried again after a while, not at every check.
            if berth_store::fleet::backups::last_failed(self.db(), row.id)
                .await?
                .is_some_and(|t| chrono::Utc::now() - t < FAILED_BACKUP_RETRY)
            {
                continue;
            }
            // Every running instance has a backup to restore from: one whose first backup was
            // cut short (stopped under it) gets another, at most every few minutes (unless the
            // repository has one the store missed).
            if berth_store::fleet::backups::labels(self.db(), row.id)
                .await?
                .is_empty()
                && self
                    .catalog_backups(self.engine().as_ref(), &row, None)
                    .await
                    .is_ok()
                && berth_store::fleet::backups::labels(self.db(), row.id)
                    .await?
                    .is_empty()
            {
                let last = berth_store::fleet::backups::last_created(self.db(), row.id).await?;
                if last.is_none_or(|t| chrono::Utc::now() - t > FIRST_BACKUP_RETRY) {
                    enqueued |= self
                        .scheduled(&row, BackupType::Full, BackupTrigger::Initial)
                        .await?;
                }
                continue;
            }
            let policy = self.policy_of(row.id).await?;
            if !policy.enabled {
                continue;
            }
            let last_full =
                berth_store::fleet::backups::last_started(self.db(), row.id, BackupType::Full)
                    .await?;
            let last_diff =
                berth_store::fleet::backups::last_started(self.db(), row.id, BackupType::Diff)
                    .await?;
            let Some(kind) = due(&policy, row.created_at, last_full, last_diff, now) else {
                continue;
            };
            enqueued |= self.scheduled(&row, kind, BackupTrigger::Scheduled).await?;
        }
        if enqueued {
            self.wake_runners().await;
        }
        Ok(())
    }

    /// Enqueues a backup unless one is under way (then it is simply not due yet).
    async fn scheduled(
        &self,
        row: &berth_store::fleet::instances::InstanceRow,
        kind: BackupType,
        trigger: BackupTrigger,
    ) -> Result<bool, AppError> {
        let mut tx = self.db().begin().await?;
        if self
            .try_enqueue_backup(&mut tx, row, kind, trigger, None, None)
            .await?
            .is_ok()
        {
            tx.commit().await?;
            tracing::info!(instance = %row.id, r#type = %kind, %trigger, "backup enqueued");
            return Ok(true);
        }
        Ok(false)
    }

    /// A deleted instance's backups are kept for its retention in days (for a policy that keeps
    /// a number of full backups, the default 30 days) after the deletion.
    async fn remove_expired_archives(&self) -> Result<(), AppError> {
        let now = self.now();
        let region = self.instance_settings().region.clone();
        for row in berth_store::fleet::instances::deleted_with_archive(self.db(), &region).await? {
            let policy = self.policy_of(row.id).await?;
            let days = policy.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS);
            let Some(deleted) = row.deleted_at else {
                continue;
            };
            if deleted + chrono::Duration::days(i64::from(days)) > now {
                continue;
            }
            // One that cannot be removed now must not hold up the others.
            if let Err(e) = self.engine().forget_backups(row.id).await {
                tracing::warn!(instance = %row.id, error = %e, "removing a deleted instance's backups failed");
                continue;
            }
            berth_store::fleet::backups::forget_instance(self.db(), row.id).await?;
            berth_store::fleet::instances::mark_archive_removed(self.db(), row.id).await?;
            tracing::info!(instance = %row.id, "removed the backups of a deleted instance after its retention");
        }
        Ok(())
    }
}

/// Which backup the policy asks for now, if any: a full backup once the latest scheduled full
/// time (on a listed day, after the instance was created) has passed without one; else a
/// differential when the last full or differential began more than the interval ago.
fn due(
    p: &PolicyRow,
    created: DateTime<Utc>,
    last_full: Option<DateTime<Utc>>,
    last_diff: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<BackupType> {
    let at = NaiveTime::from_hms_opt(
        (p.full_backup_minute / 60) as u32,
        (p.full_backup_minute % 60) as u32,
        0,
    )?;
    // The latest scheduled full-backup moment at or before now (looking back a week).
    let slot = (0..8).find_map(|back| {
        let day = now.date_naive() - chrono::Duration::days(back);
        let t = day.and_time(at).and_utc();
        let weekday = day.weekday().number_from_monday() as i32;
        (t <= now && p.full_backup_days.contains(&weekday)).then_some(t)
    });
    if let Some(slot) = slot {
        if slot > created && last_full.is_none_or(|l| l < slot) {
            return Some(BackupType::Full);
        }
    }
    let every = chrono::Duration::hours(i64::from(p.differential_every_hours?));
    let last = last_full.max(last_diff)?;
    (now - last >= every).then_some(BackupType::Diff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn policy(minute: i32, days: Vec<i32>, diff: Option<i32>) -> PolicyRow {
        PolicyRow {
            instance_id: uuid::Uuid::nil(),
            enabled: true,
            full_backup_minute: minute,
            full_backup_days: days,
            differential_every_hours: diff,
            retention_days: Some(7),
            retention_full_backups: None,
        }
    }

    #[test]
    fn full_backups_fall_due_at_the_policy_time_on_its_days() {
        let t = |d, h, m| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        let created = t(1, 0, 0); // Tuesday 1 December 2026
        let daily = policy(3 * 60, (1..=7).collect(), None);
        assert_eq!(due(&daily, created, None, None, t(1, 2, 59)), None);
        assert_eq!(
            due(&daily, created, None, None, t(1, 3, 0)),
            Some(BackupType::Full)
        );
        assert_eq!(
            due(&daily, created, Some(t(1, 3, 0)), None, t(1, 23, 0)),
            None
        );
        assert_eq!(
            due(&daily, created, Some(t(1, 3, 0)), None, t(2, 3, 1)),
            Some(BackupType::Full)
        );
        // Created after today's slot: tomorrow's.
        assert_eq!(due(&daily, t(1, 4, 0), None, None, t(1, 5, 0)), None);
        // Sundays only: nothing on Tuesday, Wednesday; due on Sunday 6 December.
        let sundays = policy(3 * 60, vec![7], None);
        assert_eq!(due(&sundays, created, None, None, t(2, 12, 0)), None);
        assert_eq!(
            due(&sundays, created, None, None, t(6, 3, 0)),
            Some(BackupType::Full)
        );
    }

    #[test]
    fn differentials_fill_the_gaps_between_full_backups() {
        let t = |d, h, m| Utc.with_ymd_and_hms(2026, 12, d, h, m, 0).unwrap();
        let p = policy(3 * 60, (1..=7).collect(), Some(6));
        let full = Some(t(1, 3, 0));
        assert_eq!(due(&p, t(1, 0, 0), full, None, t(1, 8, 59)), None);
        assert_eq!(
            due(&p, t(1, 0, 0), full, None, t(1, 9, 0)),
            Some(BackupType::Diff)
        );
        assert_eq!(
            due(&p, t(1, 0, 0), full, Some(t(1, 9, 0)), t(1, 14, 0)),
            None
        );
        // No differential without a full backup to build on.
        assert_eq!(due(&p, t(1, 4, 0), None, None, t(1, 23, 0)), None);
    }
}
