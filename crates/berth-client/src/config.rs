//! An instance's configuration parameters, database users and databases.

use berth_types::{
    ConfigChange, CreateDatabase, CreateDbUser, Database, DatabaseAccepted, DbChange, DbUser,
    DbUserCreated, InstanceParameter, Page, PasswordReset, UpdateConfig,
};
use reqwest::Method;
use uuid::Uuid;

use crate::{Berth, HttpError};

fn base(instance: Uuid) -> String {
    format!("/api/v1/instances/{instance}")
}

/// A name as one path segment.
fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Berth {
    pub async fn get_config(&self, instance: Uuid) -> Result<Page<InstanceParameter>, HttpError> {
        self.get(&format!("{}/config", base(instance))).await
    }

    /// Sets parameters; the job in the answer applies them.
    pub async fn update_config(
        &self,
        instance: Uuid,
        change: &UpdateConfig,
    ) -> Result<ConfigChange, HttpError> {
        self.send(Method::PATCH, &format!("{}/config", base(instance)), change)
            .await
    }

    pub async fn list_db_users(&self, instance: Uuid) -> Result<Page<DbUser>, HttpError> {
        self.get(&format!("{}/users", base(instance))).await
    }

    pub async fn create_db_user(
        &self,
        instance: Uuid,
        user: &CreateDbUser,
    ) -> Result<DbUserCreated, HttpError> {
        self.send(Method::POST, &format!("{}/users", base(instance)), user)
            .await
    }

    pub async fn delete_db_user(&self, instance: Uuid, name: &str) -> Result<DbChange, HttpError> {
        self.act(
            Method::DELETE,
            &format!("{}/users/{}", base(instance), segment(name)),
        )
        .await
    }

    pub async fn reset_db_user_password(
        &self,
        instance: Uuid,
        name: &str,
    ) -> Result<PasswordReset, HttpError> {
        self.act(
            Method::POST,
            &format!("{}/users/{}/reset-password", base(instance), segment(name)),
        )
        .await
    }

    pub async fn list_databases(&self, instance: Uuid) -> Result<Page<Database>, HttpError> {
        self.get(&format!("{}/databases", base(instance))).await
    }

    pub async fn create_database(
        &self,
        instance: Uuid,
        database: &CreateDatabase,
    ) -> Result<DatabaseAccepted, HttpError> {
        self.send(
            Method::POST,
            &format!("{}/databases", base(instance)),
            database,
        )
        .await
    }

    pub async fn delete_database(&self, instance: Uuid, name: &str) -> Result<DbChange, HttpError> {
        self.act(
            Method::DELETE,
            &format!("{}/databases/{}", base(instance), segment(name)),
        )
        .await
    }
}
