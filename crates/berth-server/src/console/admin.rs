//! The console's audit log (filterable by event type, actor and project; project admins see
//! their projects' events, platform admins everyone's) and, for platform admins, the users of
//! the platform (list, create, disable and enable) — `GET /api/v1/audit-events` and
//! `/api/v1/users` as pages.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::AppError;
use berth_types::{AuditQuery, CreateUser, UpdateUser};
use uuid::Uuid;

use super::web::{explain, page, to_login, visitor, Chrome, Visitor};
use super::{error_page, posted, Access, ProjectOption};
use crate::state::AppState;

struct EventRow {
    when: String,
    kind: String,
    actor: String,
    target: String,
    ip: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    platform_admin: bool,
    projects: Vec<ProjectOption>,
    event_type: String,
    actor: String,
    events: Vec<EventRow>,
    error: Option<String>,
}

pub(super) async fn audit(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    let text = |k: &str| q.get(k).map(|t| t.trim().to_owned()).unwrap_or_default();
    let project = q.get("project_id").and_then(|p| Uuid::parse_str(p).ok());
    let query = AuditQuery {
        event_type: Some(text("type")).filter(|t| !t.is_empty()),
        actor: Some(text("actor")).filter(|t| !t.is_empty()),
        project_id: project,
        limit: Some(100),
        ..Default::default()
    };
    let access = match Access::of(&s, &v).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(&v), e),
    };
    let (status, events, error) = match s.app.list_audit_events(&v.principal, &query).await {
        Ok(page) => (StatusCode::OK, page.results, None),
        Err(e) => {
            let (status, text) = explain(e);
            (status, Vec::new(), Some(text))
        }
    };
    page(
        status,
        &AuditPage {
            chrome: v.chrome("Audit log", "audit"),
            platform_admin: v.principal.is_platform_admin,
            projects: access
                .projects
                .iter()
                .filter(|p| access.may(p.id, berth_types::Permission::AuditRead))
                .map(|p| ProjectOption {
                    id: p.id,
                    name: p.name.clone(),
                    selected: Some(p.id) == project,
                })
                .collect(),
            event_type: text("type"),
            actor: text("actor"),
            events: events
                .into_iter()
                .map(|e| EventRow {
                    when: e.occurred_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    kind: e.event_type,
                    actor: e
                        .actor_username
                        .or(e.client_id)
                        .unwrap_or_else(|| "—".into()),
                    target: match (e.target_type, e.target_id) {
                        (Some(t), Some(id)) => format!("{t} {id}"),
                        _ => String::new(),
                    },
                    ip: e.ip.unwrap_or_default(),
                })
                .collect(),
            error,
        },
    )
}

struct UserRow {
    id: Uuid,
    /// The signed-in admin's own row (no disable button: that would sign them out).
    me: bool,
    username: String,
    email: String,
    admin: bool,
    disabled: bool,
    last_login: String,
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    chrome: Chrome,
    users: Vec<UserRow>,
    error: Option<String>,
    /// A refused disable or enable, and whose row it is.
    row_error: Option<(Uuid, String)>,
}

async fn users_page(
    s: &AppState,
    v: &Visitor,
    status: StatusCode,
    error: Option<String>,
    row_error: Option<(Uuid, String)>,
) -> Response {
    let users = match s.app.list_users(&v.principal, Some(500), None).await {
        Ok(page) => page.results,
        Err(e) => return error_page(Some(v), e),
    };
    page(
        status,
        &UsersPage {
            chrome: v.chrome("Users", "users"),
            users: users
                .into_iter()
                .map(|u| UserRow {
                    id: u.id,
                    me: u.id == v.principal.user_id,
                    username: u.username,
                    email: u.email,
                    admin: u.is_platform_admin,
                    disabled: u.disabled,
                    last_login: u
                        .last_login_at
                        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                        .unwrap_or_else(|| "never".into()),
                })
                .collect(),
            error,
            row_error,
        },
    )
}

pub(super) async fn users(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    users_page(&s, &v, StatusCode::OK, None, None).await
}

pub(super) async fn create_user(State(s): State<AppState>, req: Request) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let field = |name: &str| fields.get(name);
    let req = CreateUser {
        username: field("username").trim().to_owned(),
        email: field("email").trim().to_owned(),
        password: field("password").to_owned(),
        is_platform_admin: field("is_platform_admin") == "true",
    };
    match s.app.create_user(&v.principal, &req).await {
        Ok(_) => Redirect::to("/console/users").into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            users_page(&s, &v, status, Some(text), None).await
        }
    }
}

/// Disables a user (their sessions and tokens end at once; they cannot sign in) or enables
/// them again. Platform admins only: the app layer refuses anyone else, and the last active
/// platform admin.
pub(super) async fn set_disabled(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), AppError::NotFound("user"));
    };
    let disabled = match fields.get("disabled") {
        "true" => true,
        "false" => false,
        _ => {
            return users_page(
                &s,
                &v,
                StatusCode::BAD_REQUEST,
                None,
                Some((id, "Choose disable or enable.".into())),
            )
            .await
        }
    };
    let req = UpdateUser {
        disabled: Some(disabled),
        ..UpdateUser::default()
    };
    match s.app.update_user(&v.principal, id, &req).await {
        Ok(_) => Redirect::to("/console/users").into_response(),
        // Someone who may not list users gets the app layer's refusal as a page of its own.
        Err(e @ (AppError::Forbidden(_) | AppError::NotFound(_))) => error_page(Some(&v), e),
        Err(e) => {
            let (status, text) = explain(e);
            users_page(&s, &v, status, None, Some((id, text))).await
        }
    }
}
