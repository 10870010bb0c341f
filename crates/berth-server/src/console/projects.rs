//! The console's project page: its members (add by username or email, change a role, remove),
//! renaming it and deleting it (after typing its name). Each part shows only when the
//! visitor's role allows it; every post goes through the app layer's own checks.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::AppError;
use berth_types::{Member, Permission, Project, PutMember, Role, UpdateProject};
use serde::Deserialize;
use uuid::Uuid;

use super::web::{explain, page, same_origin_form, to_login, visitor, Chrome, Visitor};
use super::{error_page, refused, stale};
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

/// Reads a posted form of the visitor, checking its origin and token.
async fn posted<T: serde::de::DeserializeOwned + HasCsrf>(
    s: &AppState,
    req: Request,
) -> Result<(Visitor, T), Response> {
    let (headers, form) = same_origin_form::<T>(s, req).await.map_err(refused)?;
    let v = visitor(s, &headers).await.ok_or_else(to_login)?;
    if !v.csrf_ok(form.csrf()) {
        return Err(stale(&v));
    }
    Ok((v, form))
}

trait HasCsrf {
    fn csrf(&self) -> &str;
}

#[derive(Deserialize)]
pub(super) struct MemberForm {
    csrf: String,
    #[serde(default)]
    login: String,
    role: String,
}

#[derive(Deserialize)]
pub(super) struct PlainForm {
    csrf: String,
}

#[derive(Deserialize)]
pub(super) struct EditForm {
    csrf: String,
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    csrf: String,
    confirm_name: String,
}

impl HasCsrf for MemberForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
impl HasCsrf for PlainForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
impl HasCsrf for EditForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
impl HasCsrf for DeleteForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
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
    let (v, form) = match posted::<MemberForm>(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match (Uuid::parse_str(&id), role(&form.role)) {
        (Ok(project), Ok(put)) => {
            s.app
                .put_member_by_login(&v.principal, project, &form.login, &put)
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
    let (v, form) = match posted::<MemberForm>(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match (
        Uuid::parse_str(&id),
        Uuid::parse_str(&user),
        role(&form.role),
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
    let (v, _) = match posted::<PlainForm>(&s, req).await {
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
    let (v, form) = match posted::<EditForm>(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match Uuid::parse_str(&id) {
        Ok(project) => {
            let req = UpdateProject {
                name: Some(form.name),
                description: Some(form.description),
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
    let (v, form) = match posted::<DeleteForm>(&s, req).await {
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
    if form.confirm_name.trim() != name {
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
