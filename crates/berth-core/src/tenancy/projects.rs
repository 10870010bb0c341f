//! Projects (tenants) and their members.

use berth_store::identity::projects::{MemberRow, ProjectRow};
use berth_types::{
    CreateProject, Member, Page, Permission, Project, PutMember, Role, UpdateProject,
};
use uuid::Uuid;

use crate::audit::Event;
use crate::{validate, App, AppError, Principal};

fn project_view(row: ProjectRow) -> Project {
    Project {
        id: row.id,
        name: row.name,
        description: row.description,
        created_at: row.created_at,
        updated_at: row.updated_at,
        user_count: row.user_count,
        instance_count: row.instance_count,
        role: row.role.as_deref().and_then(Role::parse),
    }
}

fn member_view(row: MemberRow) -> Member {
    Member {
        user_id: row.user_id,
        username: row.username,
        email: row.email,
        role: Role::parse(&row.role).unwrap_or(Role::Viewer),
        created_at: row.created_at,
    }
}

impl App {
    /// The projects the caller belongs to (all projects for platform admins).
    pub async fn list_projects(
        &self,
        p: &Principal,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<Project>, AppError> {
        if !p.has_scope(Permission::ProjectsRead) {
            return Err(AppError::forbidden(Permission::ProjectsRead));
        }
        let (limit, offset) = validate::page(limit, offset)?;
        if let Some(only) = p.project_id {
            let project = self.get_project(p, only).await?;
            let results = if offset == 0 { vec![project] } else { vec![] };
            return Ok(crate::page(1, limit, offset, results));
        }
        let all = p.is_platform_admin;
        let count = berth_store::identity::projects::count(self.db(), p.user_id, all).await?;
        let rows =
            berth_store::identity::projects::list(self.db(), p.user_id, all, limit, offset).await?;
        Ok(crate::page(
            count,
            limit,
            offset,
            rows.into_iter().map(project_view).collect(),
        ))
    }

    pub async fn get_project(&self, p: &Principal, id: Uuid) -> Result<Project, AppError> {
        self.authorize_project(p, id, Permission::ProjectsRead)
            .await?;
        self.project(p, id).await
    }

    async fn project(&self, p: &Principal, id: Uuid) -> Result<Project, AppError> {
        let row = berth_store::identity::projects::get(self.db(), p.user_id, id)
            .await?
            .ok_or(AppError::NotFound("project"))?;
        Ok(project_view(row))
    }

    /// Creates a project with the caller as its owner.
    pub async fn create_project(
        &self,
        p: &Principal,
        req: &CreateProject,
    ) -> Result<Project, AppError> {
        self.require_global(p, Permission::ProjectsCreate)?;
        let name = validate::name("name", &req.name, 100)?;
        validate::description(&req.description)?;
        let id = Uuid::now_v7();
        let mut tx = self.db().begin().await?;
        berth_store::identity::projects::insert(&mut *tx, id, &name, &req.description).await?;
        berth_store::identity::projects::put_member(&mut *tx, id, p.user_id, Role::Owner.as_str())
            .await?;
        tx.commit().await?;
        self.inner.cache.forget_user(p.user_id);
        self.audit(
            Event::new("project.created")
                .by(p)
                .project(id)
                .target("project", id),
        )
        .await;
        self.project(p, id).await
    }

    pub async fn update_project(
        &self,
        p: &Principal,
        id: Uuid,
        req: &UpdateProject,
    ) -> Result<Project, AppError> {
        let project = self
            .authorize_project(p, id, Permission::ProjectsWrite)
            .await?;
        let name = req
            .name
            .as_deref()
            .map(|n| validate::name("name", n, 100))
            .transpose()?;
        if let Some(d) = &req.description {
            validate::description(d)?;
        }
        berth_store::identity::projects::update(
            self.db(),
            project.id(),
            name.as_deref(),
            req.description.as_deref(),
        )
        .await?;
        self.project(p, id).await
    }

    pub async fn delete_project(&self, p: &Principal, id: Uuid) -> Result<(), AppError> {
        let project = self
            .authorize_project(p, id, Permission::ProjectsDelete)
            .await?;
        let id = project.id();
        let instances = berth_store::fleet::instances::count_in_project(self.db(), id).await?;
        if instances > 0 {
            return Err(AppError::conflict(
                "project",
                format!("the project still has {instances} instance(s); delete them first"),
            ));
        }
        // The backups its deleted instances left go with it (nothing could restore them).
        for instance in
            berth_store::fleet::instances::kept_archives_in_project(self.db(), id).await?
        {
            self.engine().forget_backups(instance).await?;
            berth_store::fleet::instances::mark_archive_removed(self.db(), instance).await?;
        }
        berth_store::identity::projects::delete(self.db(), id).await?;
        self.audit(
            Event::new("project.deleted")
                .by(p)
                .project(id)
                .target("project", id),
        )
        .await;
        Ok(())
    }

    pub async fn list_members(
        &self,
        p: &Principal,
        project: Uuid,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Page<Member>, AppError> {
        self.authorize_project(p, project, Permission::MembersRead)
            .await?;
        let (limit, offset) = validate::page(limit, offset)?;
        let count = berth_store::identity::projects::member_count(self.db(), project).await?;
        let rows =
            berth_store::identity::projects::members(self.db(), project, limit, offset).await?;
        Ok(crate::page(
            count,
            limit,
            offset,
            rows.into_iter().map(member_view).collect(),
        ))
    }

    /// Adds a member or changes their role. Only owners (and platform admins) grant or take
    /// away ownership, and a project always keeps at least one owner.
    pub async fn put_member(
        &self,
        p: &Principal,
        project: Uuid,
        user: Uuid,
        req: &PutMember,
    ) -> Result<Member, AppError> {
        let access = self
            .authorize_project(p, project, Permission::MembersWrite)
            .await?;
        let project = access.id();
        let mut tx = self.db().begin().await?;
        berth_store::identity::projects::lock(&mut *tx, project).await?;
        let target = berth_store::identity::users::get(&mut *tx, user)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let current = berth_store::identity::projects::role_of(&mut *tx, project, target.id)
            .await?
            .and_then(|r| Role::parse(&r));
        let touches_owner = req.role == Role::Owner || current == Some(Role::Owner);
        if touches_owner && !access.may_manage_owners(p) {
            return Err(AppError::Forbidden(
                "only an owner can grant or change the owner role".into(),
            ));
        }
        if current == Some(Role::Owner)
            && req.role != Role::Owner
            && berth_store::identity::projects::owner_count(&mut *tx, project).await? <= 1
        {
            return Err(AppError::conflict(
                "project",
                "a project must keep at least one owner",
            ));
        }
        let row = berth_store::identity::projects::put_member(
            &mut *tx,
            project,
            target.id,
            req.role.as_str(),
        )
        .await?;
        tx.commit().await?;
        self.inner.cache.forget_user(target.id);
        self.audit(
            Event::new("member.changed")
                .by(p)
                .project(project)
                .target("user", target.id)
                .details(serde_json::json!({ "role": req.role })),
        )
        .await;
        Ok(member_view(row))
    }

    /// [`App::put_member`] naming the user by username or email (the console's form). The
    /// check comes first, so only those who may add members learn whether a login exists.
    pub async fn put_member_by_login(
        &self,
        p: &Principal,
        project: Uuid,
        login: &str,
        req: &PutMember,
    ) -> Result<Member, AppError> {
        self.authorize_project(p, project, Permission::MembersWrite)
            .await?;
        let user = berth_store::identity::users::find_by_login(self.db(), login.trim())
            .await?
            .ok_or(AppError::NotFound("user"))?;
        self.put_member(p, project, user.id, req).await
    }

    pub async fn remove_member(
        &self,
        p: &Principal,
        project: Uuid,
        user: Uuid,
    ) -> Result<(), AppError> {
        let access = self
            .authorize_project(p, project, Permission::MembersWrite)
            .await?;
        let project = access.id();
        let mut tx = self.db().begin().await?;
        berth_store::identity::projects::lock(&mut *tx, project).await?;
        let current = berth_store::identity::projects::role_of(&mut *tx, project, user)
            .await?
            .and_then(|r| Role::parse(&r))
            .ok_or(AppError::NotFound("member"))?;
        if current == Role::Owner {
            if !access.may_manage_owners(p) {
                return Err(AppError::Forbidden(
                    "only an owner can remove an owner".into(),
                ));
            }
            if berth_store::identity::projects::owner_count(&mut *tx, project).await? <= 1 {
                return Err(AppError::conflict(
                    "project",
                    "a project must keep at least one owner",
                ));
            }
        }
        berth_store::identity::projects::remove_member(&mut *tx, project, user).await?;
        tx.commit().await?;
        self.audit(
            Event::new("member.removed")
                .by(p)
                .project(project)
                .target("user", user),
        )
        .await;
        self.inner.cache.forget_user(user);
        Ok(())
    }
}
