//! Regions, instances and their jobs, and the CA certificate instances present.

use berth_types::{
    Accepted, CreateInstance, CreatedInstance, Instance, InstanceQuery, Job, JobList, JobQuery,
    Page, Region, UpdateInstance,
};
use reqwest::Method;
use uuid::Uuid;

use crate::{Berth, HttpError};

/// What `PATCH /api/v1/instances/{id}` answers: the instance at once (rename, deletion
/// protection), or the job a resize started.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Updated {
    Started(Accepted),
    Done(Instance),
}

impl Berth {
    pub async fn list_regions(&self) -> Result<Vec<Region>, HttpError> {
        self.get("/api/v1/regions").await
    }

    /// Starts creating an instance; the answer carries the owner's password, shown only here.
    /// With `idempotency_key`, a retry returns the original answer instead of a second instance.
    pub async fn create_instance(
        &self,
        req: &CreateInstance,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedInstance, HttpError> {
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

    pub async fn get_instance(&self, id: Uuid) -> Result<Instance, HttpError> {
        self.get(&format!("/api/v1/instances/{id}")).await
    }

    pub async fn update_instance(
        &self,
        id: Uuid,
        req: &UpdateInstance,
    ) -> Result<Updated, HttpError> {
        self.send(Method::PATCH, &format!("/api/v1/instances/{id}"), req)
            .await
    }

    pub async fn delete_instance(&self, id: Uuid) -> Result<Accepted, HttpError> {
        self.act(Method::DELETE, &format!("/api/v1/instances/{id}"))
            .await
    }

    pub async fn pause_instance(&self, id: Uuid) -> Result<Accepted, HttpError> {
        self.act(Method::POST, &format!("/api/v1/instances/{id}/pause"))
            .await
    }

    pub async fn resume_instance(&self, id: Uuid) -> Result<Accepted, HttpError> {
        self.act(Method::POST, &format!("/api/v1/instances/{id}/resume"))
            .await
    }

    pub async fn restart_instance(&self, id: Uuid) -> Result<Accepted, HttpError> {
        self.act(Method::POST, &format!("/api/v1/instances/{id}/restart"))
            .await
    }

    pub async fn list_jobs(&self, query: &JobQuery) -> Result<JobList, HttpError> {
        self.get_query("/api/v1/jobs", query).await
    }

    pub async fn get_job(&self, id: Uuid) -> Result<Job, HttpError> {
        self.get(&format!("/api/v1/jobs/{id}")).await
    }

    /// The PEM certificate of Berth's CA, which signs every instance's server certificate.
    pub async fn ca_pem(&self) -> Result<Vec<u8>, HttpError> {
        self.get_bytes("/api/v1/ca.pem").await
    }
}
