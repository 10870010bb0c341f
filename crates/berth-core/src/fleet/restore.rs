//! Where a restored, cloned or imported instance's data comes from: checks a create request's
//! `source`
//! against the source's backups and restore window up front (so a moment outside the window is
//! a 400 naming the window, not a failed job), and turns it into the `restore` job's target.

use berth_store::fleet::instances::InstanceRow;
use berth_types::{InstanceSource, Permission, RestoredFrom};
use chrono::SecondsFormat;
use uuid::Uuid;

use super::backups::restorable_from;
use crate::{App, AppError, Principal};

/// Where a new instance's data comes from, checked.
pub(crate) enum ResolvedSource {
    /// Another instance's backups and archive.
    Restore {
        row: Box<InstanceRow>,
        /// The `target` of the restore job's payload.
        target: serde_json::Value,
    },
    /// A logical copy of a data source of the same project.
    Import { data_source: Uuid },
}

impl ResolvedSource {
    pub(crate) fn instance_id(&self) -> Option<Uuid> {
        match self {
            ResolvedSource::Restore { row, .. } => Some(row.id),
            ResolvedSource::Import { .. } => None,
        }
    }

    pub(crate) fn data_source_id(&self) -> Option<Uuid> {
        match self {
            ResolvedSource::Restore { .. } => None,
            ResolvedSource::Import { data_source } => Some(*data_source),
        }
    }
}

impl App {
    pub(crate) async fn resolve_source(
        &self,
        p: &Principal,
        project: Uuid,
        s: &InstanceSource,
        version: &str,
    ) -> Result<ResolvedSource, AppError> {
        let instance_id =
            match (s.instance_id, s.data_source_id) {
                (Some(id), None) => id,
                (None, Some(data_source)) => {
                    if s.backup_id.is_some() || s.point_in_time.is_some() {
                        return Err(AppError::Validation(
                        "source.backup_id and source.point_in_time are for restores; an import \
                         copies the data source's current state"
                            .into(),
                    ));
                    }
                    // Importing copies the data into an instance whose password the caller gets.
                    let ds = self
                        .authorize_data_source(p, data_source, Permission::InstancesWrite)
                        .await?;
                    if ds.row.project_id != project {
                        return Err(AppError::Validation(
                            "source.data_source_id is a data source of another project; import \
                         from one of the instance's own project"
                                .into(),
                        ));
                    }
                    return Ok(ResolvedSource::Import { data_source });
                }
                (Some(_), Some(_)) => {
                    return Err(AppError::Validation(
                        "give either source.instance_id (a restore or clone) or \
                     source.data_source_id (an import), not both"
                            .into(),
                    ))
                }
                (None, None) => return Err(AppError::Validation(
                    "source needs instance_id (a restore or clone) or data_source_id (an import)"
                        .into(),
                )),
            };
        // Restoring copies the source's data into an instance whose password the caller gets:
        // as much as changing the source, so not for viewers.
        let row = self
            .authorize_instance_history(p, instance_id, Permission::InstancesWrite)
            .await
            .map_err(|e| match e {
                AppError::NotFound(_) => AppError::NotFound("source instance"),
                e => e,
            })?;
        if row.version != version {
            return Err(AppError::Validation(format!(
                "the source runs PostgreSQL {}; a restore must use the same version (set \"version\": \"{}\")",
                row.version, row.version
            )));
        }
        let backups = berth_store::fleet::backups::all_for_instance(self.db(), row.id).await?;
        let newest_size = |label: &str| {
            backups
                .iter()
                .find(|b| b.label.as_deref() == Some(label))
                .and_then(|b| b.size)
        };
        let target = match (s.backup_id, s.point_in_time) {
            (Some(_), Some(_)) => {
                return Err(AppError::Validation(
                    "give either source.backup_id or source.point_in_time, not both".into(),
                ))
            }
            (Some(id), None) => {
                let b = backups
                    .iter()
                    .find(|b| b.id == id)
                    .ok_or(AppError::NotFound("backup"))?;
                let label = b
                    .label
                    .as_deref()
                    .filter(|_| restorable_from(b).is_some())
                    .ok_or_else(|| {
                        AppError::conflict(
                            "backup",
                            format!(
                                "backup {id} is {}; only a completed backup restores",
                                b.status
                            ),
                        )
                    })?;
                serde_json::json!({ "kind": "backup", "label": label, "size": b.size })
            }
            (None, at) => {
                let window = self.window(&row, &backups).await;
                let (Some(earliest), Some(latest)) = (window.earliest, window.latest) else {
                    return Err(AppError::conflict(
                        "source instance",
                        if backups.iter().any(|b| restorable_from(b).is_some()) {
                            "the source has no restorable moment: its newest archived WAL is older \
                             than its first backup (is its archiving failing? see its restore-window)"
                        } else {
                            "the source has no completed backup yet, so there is nothing to restore; \
                             take one (POST /api/v1/instances/{id}/backups) or wait for its first"
                        },
                    ));
                };
                let fmt = |t: chrono::DateTime<chrono::Utc>| {
                    t.to_rfc3339_opts(SecondsFormat::Millis, true)
                };
                match at {
                    Some(at) if at < earliest || at > latest => {
                        return Err(AppError::Validation(format!(
                            "point_in_time {} is outside the source's restore window, {} to {}",
                            fmt(at),
                            fmt(earliest),
                            if window.continuous {
                                "now".to_owned()
                            } else {
                                fmt(latest)
                            }
                        )))
                    }
                    Some(at) => {
                        // The newest backup that was consistent by then.
                        let from = backups
                            .iter()
                            .filter(|b| restorable_from(b).is_some_and(|f| f <= at))
                            .filter_map(|b| b.label.clone())
                            .next_back()
                            .ok_or_else(|| {
                                AppError::Internal("no backup before the target".into())
                            })?;
                        serde_json::json!({ "kind": "time", "at": at, "from": from, "size": newest_size(&from) })
                    }
                    None => {
                        let (from, consistent) = backups
                            .iter()
                            .filter_map(|b| Some((b.label.clone()?, restorable_from(b)?)))
                            .next_back()
                            .ok_or_else(|| AppError::Internal("no completed backup".into()))?;
                        // A stopped or deleted source's archive was sealed at a known moment:
                        // recovering to it (not just to wherever the archive ends) fails
                        // loudly should the archive end short of it.
                        serde_json::json!({ "kind": "latest", "from": from,
                            "consistent_at": consistent, "sealed_at": row.archived_until,
                            "size": newest_size(&from) })
                    }
                }
            }
        };
        Ok(ResolvedSource::Restore {
            row: Box::new(row),
            target,
        })
    }
}

/// What the instance shows of where it came from.
pub(crate) fn restored_from(row: &InstanceRow) -> Option<RestoredFrom> {
    row.source_instance_id.map(|id| RestoredFrom {
        instance_id: id,
        backup_id: row.source_backup_id,
        point_in_time: row.source_point_in_time,
        recovered_to_time: row.recovered_to_time,
        recovered_to_lsn: row.recovered_to_lsn.clone(),
    })
}
