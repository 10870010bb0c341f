//! Backups, backup policies and restore windows. Restores and clones are
//! [`Berth::create_instance`] with a `source`.

use berth_types::{
    Backup, BackupAccepted, BackupPolicy, BackupQuery, CreateBackup, Page, RestoreWindow,
};
use reqwest::Method;
use uuid::Uuid;

use crate::api::all_pages;
use crate::{Berth, HttpError};

fn backups_path(instance: Uuid) -> String {
    format!("/api/v1/instances/{instance}/backups")
}

impl Berth {
    pub async fn list_backups(
        &self,
        instance: Uuid,
        query: &BackupQuery,
    ) -> Result<Page<Backup>, HttpError> {
        self.get_query(&backups_path(instance), query).await
    }

    /// Every backup of the instance the query matches, newest first, across all pages.
    pub async fn list_all_backups(
        &self,
        instance: Uuid,
        query: &BackupQuery,
    ) -> Result<Vec<Backup>, HttpError> {
        all_pages(|page| {
            let query = BackupQuery {
                limit: page.limit,
                offset: page.offset,
                ..query.clone()
            };
            async move { self.get_query(&backups_path(instance), &query).await }
        })
        .await
    }

    /// The backups of every instance of a project, deleted instances' included.
    pub async fn list_project_backups(
        &self,
        project: Uuid,
        query: &BackupQuery,
    ) -> Result<Page<Backup>, HttpError> {
        self.get_query(&format!("/api/v1/projects/{project}/backups"), query)
            .await
    }

    pub async fn get_backup(&self, instance: Uuid, id: Uuid) -> Result<Backup, HttpError> {
        self.get(&format!("{}/{id}", backups_path(instance))).await
    }

    /// Starts a backup (a job).
    pub async fn create_backup(
        &self,
        instance: Uuid,
        req: &CreateBackup,
    ) -> Result<BackupAccepted, HttpError> {
        self.send(Method::POST, &backups_path(instance), req).await
    }

    pub async fn delete_backup(&self, instance: Uuid, id: Uuid) -> Result<(), HttpError> {
        self.call(Method::DELETE, &format!("{}/{id}", backups_path(instance)))
            .await
    }

    pub async fn get_backup_policy(&self, instance: Uuid) -> Result<BackupPolicy, HttpError> {
        self.get(&format!("/api/v1/instances/{instance}/backup-policy"))
            .await
    }

    pub async fn put_backup_policy(
        &self,
        instance: Uuid,
        policy: &BackupPolicy,
    ) -> Result<BackupPolicy, HttpError> {
        self.send(
            Method::PUT,
            &format!("/api/v1/instances/{instance}/backup-policy"),
            policy,
        )
        .await
    }

    pub async fn restore_window(&self, instance: Uuid) -> Result<RestoreWindow, HttpError> {
        self.get(&format!("/api/v1/instances/{instance}/restore-window"))
            .await
    }
}
