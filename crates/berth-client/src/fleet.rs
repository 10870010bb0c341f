//! Regions, instances and their jobs, and the CA certificate instances present. The `*_raw`
//! methods answer with the server's JSON document as well (for printing it whole), the others
//! with the typed value only.

use berth_types::{
    Accepted, CreateInstance, CreatedInstance, Instance, InstanceQuery, Job, JobList, JobQuery,
    Page, Region, UpdateInstance,
};
use reqwest::Method;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::api::{all_pages, Raw};
use crate::{Berth, HttpError};

/// What `PATCH /api/v1/instances/{id}` answers: the instance at once (rename, deletion
/// protection), or the job a resize started.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Updated {
    Started(Accepted),
    Done(Instance),
}

/// The instance operations that run as a job and take no body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Restart,
}

impl Action {
    fn path(self, id: Uuid) -> String {
        let verb = match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Restart => "restart",
        };
        format!("/api/v1/instances/{id}/{verb}")
    }
}

fn instance_path(id: Uuid) -> String {
    format!("/api/v1/instances/{id}")
}

fn job_path(id: Uuid) -> String {
    format!("/api/v1/jobs/{id}")
}

impl Berth {
    pub async fn list_regions(&self) -> Result<Vec<Region>, HttpError> {
        self.get("/api/v1/regions").await
    }

    pub async fn list_regions_raw(&self) -> Result<Raw<Vec<Region>>, HttpError> {
        self.get("/api/v1/regions").await
    }

    /// Starts creating an instance; the answer carries the owner's password, shown only here.
    /// With `idempotency_key`, a retry returns the original answer instead of a second instance.
    pub async fn create_instance(
        &self,
        req: &CreateInstance,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedInstance, HttpError> {
        self.create_instance_as(req, idempotency_key).await
    }

    pub async fn create_instance_raw(
        &self,
        req: &CreateInstance,
        idempotency_key: Option<&str>,
    ) -> Result<Raw<CreatedInstance>, HttpError> {
        self.create_instance_as(req, idempotency_key).await
    }

    async fn create_instance_as<T: DeserializeOwned>(
        &self,
        req: &CreateInstance,
        idempotency_key: Option<&str>,
    ) -> Result<T, HttpError> {
        let headers: Vec<(&str, &str)> = idempotency_key
            .map(|k| ("idempotency-key", k))
            .into_iter()
            .collect();
        self.request(Method::POST, "/api/v1/instances", Some(req), &headers)
            .await
    }

    pub async fn list_instances(&self, query: &InstanceQuery) -> Result<Page<Instance>, HttpError> {
        self.get_query("/api/v1/instances", query).await
    }

    /// Every instance the query matches, across all pages (its `limit`/`offset` are replaced).
    pub async fn list_all_instances(
        &self,
        query: &InstanceQuery,
    ) -> Result<Vec<Instance>, HttpError> {
        self.all_instances_as(query).await
    }

    pub async fn list_all_instances_raw(
        &self,
        query: &InstanceQuery,
    ) -> Result<Vec<Raw<Instance>>, HttpError> {
        self.all_instances_as(query).await
    }

    async fn all_instances_as<T: DeserializeOwned>(
        &self,
        query: &InstanceQuery,
    ) -> Result<Vec<T>, HttpError> {
        all_pages(|page| {
            let query = InstanceQuery {
                limit: page.limit,
                offset: page.offset,
                ..query.clone()
            };
            async move { self.get_query("/api/v1/instances", &query).await }
        })
        .await
    }

    pub async fn get_instance(&self, id: Uuid) -> Result<Instance, HttpError> {
        self.get(&instance_path(id)).await
    }

    pub async fn get_instance_raw(&self, id: Uuid) -> Result<Raw<Instance>, HttpError> {
        self.get(&instance_path(id)).await
    }

    pub async fn update_instance(
        &self,
        id: Uuid,
        req: &UpdateInstance,
    ) -> Result<Updated, HttpError> {
        self.send(Method::PATCH, &instance_path(id), req).await
    }

    pub async fn update_instance_raw(
        &self,
        id: Uuid,
        req: &UpdateInstance,
    ) -> Result<Raw<Updated>, HttpError> {
        self.send(Method::PATCH, &instance_path(id), req).await
    }

    pub async fn delete_instance(&self, id: Uuid) -> Result<Accepted, HttpError> {
        self.act(Method::DELETE, &instance_path(id)).await
    }

    pub async fn delete_instance_raw(&self, id: Uuid) -> Result<Raw<Accepted>, HttpError> {
        self.act(Method::DELETE, &instance_path(id)).await
    }

    pub async fn pause_instance(&self, id: Uuid) -> Result<Accepted, HttpError> {
        self.act(Method::POST, &Action::Pause.path(id)).await
    }

    pub async fn resume_instance(&self, id: Uuid) -> Result<Accepted, HttpError> {
        self.act(Method::POST, &Action::Resume.path(id)).await
    }

    pub async fn restart_instance(&self, id: Uuid) -> Result<Accepted, HttpError> {
        self.act(Method::POST, &Action::Restart.path(id)).await
    }

    /// Pause, resume or restart, with the server's document.
    pub async fn instance_action_raw(
        &self,
        id: Uuid,
        action: Action,
    ) -> Result<Raw<Accepted>, HttpError> {
        self.act(Method::POST, &action.path(id)).await
    }

    pub async fn list_jobs(&self, query: &JobQuery) -> Result<JobList, HttpError> {
        self.get_query("/api/v1/jobs", query).await
    }

    pub async fn list_jobs_raw(&self, query: &JobQuery) -> Result<Raw<JobList>, HttpError> {
        self.get_query("/api/v1/jobs", query).await
    }

    pub async fn get_job(&self, id: Uuid) -> Result<Job, HttpError> {
        self.get(&job_path(id)).await
    }

    pub async fn get_job_raw(&self, id: Uuid) -> Result<Raw<Job>, HttpError> {
        self.get(&job_path(id)).await
    }

    /// The PEM certificate of Berth's CA, which signs every instance's server certificate.
    pub async fn ca_pem(&self) -> Result<Vec<u8>, HttpError> {
        self.get_bytes("/api/v1/ca.pem").await
    }
}
