//! Workflows: one instance operation started on many instances, named by paths.

use berth_types::{CreateWorkflow, Page, PageParams, Workflow};
use reqwest::Method;
use uuid::Uuid;

use crate::{Berth, HttpError};

impl Berth {
    /// Starts a workflow: one job per target (the answer says which were skipped and why).
    pub async fn create_workflow(&self, req: &CreateWorkflow) -> Result<Workflow, HttpError> {
        self.send(Method::POST, "/api/v1/workflows", req).await
    }

    pub async fn list_workflows(&self, page: PageParams) -> Result<Page<Workflow>, HttpError> {
        self.get_query("/api/v1/workflows", &page).await
    }

    pub async fn get_workflow(&self, id: Uuid) -> Result<Workflow, HttpError> {
        self.get(&format!("/api/v1/workflows/{id}")).await
    }
}
