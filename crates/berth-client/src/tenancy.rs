//! Users, projects and project members.

use berth_types::{
    CreateProject, CreateUser, Member, Page, PageParams, Project, PutMember, UpdateProject,
    UpdateUser, User, UserWithPermissions,
};
use reqwest::Method;
use uuid::Uuid;

use crate::api::all_pages;
use crate::{Berth, HttpError};

impl Berth {
    pub async fn list_users(&self, page: PageParams) -> Result<Page<User>, HttpError> {
        self.get_query("/api/v1/users", &page).await
    }

    pub async fn create_user(&self, req: &CreateUser) -> Result<User, HttpError> {
        self.send(Method::POST, "/api/v1/users", req).await
    }

    pub async fn get_user(&self, id: Uuid) -> Result<UserWithPermissions, HttpError> {
        self.get(&format!("/api/v1/users/{id}")).await
    }

    pub async fn update_user(&self, id: Uuid, req: &UpdateUser) -> Result<User, HttpError> {
        self.send(Method::PATCH, &format!("/api/v1/users/{id}"), req)
            .await
    }

    pub async fn delete_user(&self, id: Uuid) -> Result<(), HttpError> {
        self.call(Method::DELETE, &format!("/api/v1/users/{id}"))
            .await
    }

    pub async fn list_projects(&self, page: PageParams) -> Result<Page<Project>, HttpError> {
        self.get_query("/api/v1/projects", &page).await
    }

    /// Every project the caller can see, across all pages.
    pub async fn list_all_projects(&self) -> Result<Vec<Project>, HttpError> {
        all_pages(|page| self.list_projects(page)).await
    }

    pub async fn create_project(&self, req: &CreateProject) -> Result<Project, HttpError> {
        self.send(Method::POST, "/api/v1/projects", req).await
    }

    pub async fn get_project(&self, id: Uuid) -> Result<Project, HttpError> {
        self.get(&format!("/api/v1/projects/{id}")).await
    }

    pub async fn update_project(
        &self,
        id: Uuid,
        req: &UpdateProject,
    ) -> Result<Project, HttpError> {
        self.send(Method::PATCH, &format!("/api/v1/projects/{id}"), req)
            .await
    }

    pub async fn delete_project(&self, id: Uuid) -> Result<(), HttpError> {
        self.call(Method::DELETE, &format!("/api/v1/projects/{id}"))
            .await
    }

    pub async fn list_members(
        &self,
        project: Uuid,
        page: PageParams,
    ) -> Result<Page<Member>, HttpError> {
        self.get_query(&format!("/api/v1/projects/{project}/members"), &page)
            .await
    }

    /// Adds the user to the project, or changes their role.
    pub async fn put_member(
        &self,
        project: Uuid,
        user: Uuid,
        req: &PutMember,
    ) -> Result<Member, HttpError> {
        let path = format!("/api/v1/projects/{project}/members/{user}");
        self.send(Method::PUT, &path, req).await
    }

    pub async fn remove_member(&self, project: Uuid, user: Uuid) -> Result<(), HttpError> {
        let path = format!("/api/v1/projects/{project}/members/{user}");
        self.call(Method::DELETE, &path).await
    }
}
