//! The console's project page: its members (add by username or email, change a role, remove),
//! renaming it and deleting it (after typing its name). Each part shows only when the
//! visitor's role allows it; every post goes through the app layer's own checks.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::AppError;
use berth_types::{Member, Permission, Project, PutMember, Role, UpdateProject};
use uuid::Uuid;

use super::web::{explain, page, to_login, visitor, Chrome, Visitor};
use super::{error_page, posted};
use crate::state::AppState;

struct MemberRow {
    user_id: Uuid,
    username: String,
    email: String,
    role: String,
}

#[derive(Template)]
#[template(path = "console/project.html")]
struct ProjectPage {
    chrome: Chrome,
    project: Project,
    role: String,
    members: Vec<MemberRow>,
    roles: Vec<&'static str>,
    can_manage: bool,
    can_edit: bool,
    can_delete: bool,
    can_audit: bool,
    error: Option<String>,
}

fn held(v: &Visitor, project: &Project, need: Permission) -> bool {
    v.principal.is_platform_admin
        || project
            .role
            .is_some_and(|r| r.permissions().contains(&need))
}

async fn render(
    s: &AppState,
    v: &Visitor,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(id) else {
        return error_page(Some(v), AppError::NotFound("project"));
    };
    let project = match s.app.get_project(&v.principal, id).await {
        Ok(p) => p,
        Err(e) => return error_page(Some(v), e),
    };
    let members: Vec<Member> = match s.app.list_members(&v.principal, id, Some(500), None).await {
        Ok(page) => page.results,
        Err(e) => return error_page(Some(v), e),
    };
    page(
        status,
        &ProjectPage {
            chrome: v.chrome(project.name.clone(), "projects"),
            role: project
                .role
                .map_or_else(|| "platform admin".to_owned(), |r| r.as_str().to_owned()),
            members: members
                .into_iter()
                .map(|m| MemberRow {
                    user_id: m.user_id,
                    username: m.username,
                    email: m.email,
                    role: m.role.as_str().to_owned(),
                })
                .collect(),
            roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
            can_manage: held(v, &project, Permission::MembersWrite),
            can_edit: held(v, &project, Permission::ProjectsWrite),
            can_delete: held(v, &project, Permission::ProjectsDelete),
            can_audit: held(v, &project, Permission::AuditRead),
            project,
            error,
        },
    )
}

pub(super) async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    render(&s, &v, &id, StatusCode::OK, None).await
}

/// Back to the project page, or the page again with what went wrong.
async fn outcome<T>(s: &AppState, v: &Visitor, id: &str, result: Result<T, AppError>) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("/console/projects/{id}")).into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            render(s, v, id, status, Some(text)).await
        }
    }
}

fn role(text: &str) -> Result<PutMember, AppError> {
    Role::parse(text)
        .map(|role| PutMember { role })
        .ok_or_else(|| AppError::Validation("choose a role: owner, admin, member or viewer".into()))
}

pub(super) async fn add_member(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match (Uuid::parse_str(&id), role(form.get("role"))) {
        (Ok(project), Ok(put)) => {
            s.app
                .put_member_by_login(&v.principal, project, form.get("login"), &put)
                .await
        }
        (Err(_), _) => Err(AppError::NotFound("project")),
        (_, Err(e)) => Err(e),
    };
    outcome(&s, &v, &id, result).await
}

pub(super) async fn change_member(
    State(s): State<AppState>,
    Path((id, user)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match (
        Uuid::parse_str(&id),
        Uuid::parse_str(&user),
        role(form.get("role")),
    ) {
        (Ok(project), Ok(user), Ok(put)) => {
            s.app.put_member(&v.principal, project, user, &put).await
        }
        (_, _, Err(e)) => Err(e),
        _ => Err(AppError::NotFound("member")),
    };
    outcome(&s, &v, &id, result).await
}

pub(super) async fn remove_member(
    State(s): State<AppState>,
    Path((id, user)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (v, _) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match (Uuid::parse_str(&id), Uuid::parse_str(&user)) {
        (Ok(project), Ok(user)) => s.app.remove_member(&v.principal, project, user).await,
        _ => Err(AppError::NotFound("member")),
    };
    outcome(&s, &v, &id, result).await
}

pub(super) async fn edit(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match Uuid::parse_str(&id) {
        Ok(project) => {
            let req = UpdateProject {
                name: Some(form.get("name").to_owned()),
                description: Some(form.get("description").to_owned()),
            };
            s.app.update_project(&v.principal, project, &req).await
        }
        Err(_) => Err(AppError::NotFound("project")),
    };
    outcome(&s, &v, &id, result).await
}

pub(super) async fn delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(project) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), AppError::NotFound("project"));
    };
    let name = match s.app.get_project(&v.principal, project).await {
        Ok(p) => p.name,
        Err(e) => return error_page(Some(&v), e),
    };
    if form.get("confirm_name").trim() != name {
        return render(
            &s,
            &v,
            &id,
            StatusCode::BAD_REQUEST,
            Some(format!("Type the project's name, {name}, to delete it.")),
        )
        .await;
    }
    match s.app.delete_project(&v.principal, project).await {
        Ok(()) => Redirect::to("/console/projects").into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            render(&s, &v, &id, status, Some(text)).await
        }
    }
}
