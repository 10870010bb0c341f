//! The web console under `/console`: server-rendered pages (askama templates in
//! `templates/console/`) over the same app-layer operations as the API, with htmx (vendored,
//! embedded) for live status and no build step. It signs in with the API's cookie session and
//! its throttling; every form carries a token bound to the session and must come from this
//! origin; pages send a strict Content-Security-Policy (no inline script or style) and are
//! never framed or cached. An action a visitor's role does not allow is not shown, and a forged
//! post gets the app layer's refusal anyway.

mod access;
mod admin;
mod jobs;
mod projects;
mod sections;
pub(crate) mod web;

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_core::AppError;
use berth_types::{
    CreateInstance, CreateProject, Instance, InstanceQuery, InstanceStatus, LoginRequest,
    Permission, Project, UpdateInstance,
};
use serde::Deserialize;
use uuid::Uuid;

use crate::extract::session_cookie;
use crate::routes::auth::session_cookie_header;
use crate::state::AppState;
use web::{explain, page, same_origin_form, to_login, visitor, Chrome, Fields, Refusal, Visitor};

/// The console's routes (merged into the application router by `router`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/instances") }),
        )
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/projects", get(projects).post(create_project))
        .route("/console/projects/{id}", get(projects::show))
        .route("/console/projects/{id}/members", post(projects::add_member))
        .route(
            "/console/projects/{id}/members/{user}",
            post(projects::change_member),
        )
        .route(
            "/console/projects/{id}/members/{user}/remove",
            post(projects::remove_member),
        )
        .route("/console/projects/{id}/edit", post(projects::edit))
        .route("/console/projects/{id}/delete", post(projects::delete))
        .route("/console/instances", get(instances).post(create_instance))
        .route("/console/instances/rows", get(instance_rows))
        .route("/console/instances/new", get(new_instance))
        .route("/console/instances/{id}", get(instance))
        .route("/console/instances/{id}/detail", get(instance_detail))
        .route("/console/instances/{id}/action", post(instance_action))
        .route("/console/instances/{id}/delete", post(delete_instance))
        .route("/console/instances/{id}/resize", post(resize_instance))
        .route("/console/instances/{id}/protection", post(protect_instance))
        .route(
            "/console/instances/{id}/backups",
            get(sections::backups).post(sections::take_backup),
        )
        .route("/console/instances/{id}/restore", post(sections::restore))
        .route(
            "/console/instances/{id}/config",
            get(sections::config).post(sections::update_config),
        )
        .route(
            "/console/instances/{id}/firewall",
            get(sections::firewall).post(sections::add_rule),
        )
        .route(
            "/console/instances/{id}/firewall/{rule}/remove",
            post(sections::remove_rule),
        )
        .route(
            "/console/instances/{id}/users",
            get(sections::users).post(sections::create_user),
        )
        .route(
            "/console/instances/{id}/users/{name}/reset",
            post(sections::reset_password),
        )
        .route(
            "/console/instances/{id}/users/{name}/remove",
            post(sections::remove_user),
        )
        .route(
            "/console/instances/{id}/monitoring",
            get(sections::monitoring),
        )
        .route(
            "/console/instances/{id}/databases",
            get(sections::databases).post(sections::create_database),
        )
        .route(
            "/console/instances/{id}/databases/{name}/remove",
            post(sections::remove_database),
        )
        .route("/console/jobs", get(jobs::list))
        .route("/console/jobs/{id}", get(jobs::show))
        .route("/console/audit", get(admin::audit))
        .route("/console/users", get(admin::users).post(admin::create_user))
        .route("/console/users/{id}/disabled", post(admin::set_disabled))
        .route("/console/api-keys", get(access::list).post(access::create))
        .route("/console/api-keys/{id}/revoke", post(access::revoke))
        .route("/console/api-clients", post(access::create_client))
        .route(
            "/console/api-clients/{client_id}/revoke",
            post(access::revoke_client),
        )
        .route("/console/user-tokens", post(access::create_user_token))
        .route(
            "/console/user-tokens/{id}/revoke",
            post(access::revoke_user_token),
        )
        .route("/console/assets/{name}", get(asset))
        .layer(axum::middleware::from_fn(web::security_headers))
}

// ---------------------------------------------------------------------------------------------
// Templates

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    chrome: Chrome,
    login: String,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage {
    chrome: Chrome,
    text: String,
}

struct ProjectOption {
    id: Uuid,
    name: String,
    selected: bool,
}

struct InstanceRowView {
    id: Uuid,
    name: String,
    project: String,
    status: String,
    status_class: &'static str,
    version: String,
    memory: String,
}

#[derive(Template)]
#[template(path = "console/instances.html")]
struct InstancesPage {
    chrome: Chrome,
    can_create: bool,
    projects: Vec<ProjectOption>,
    statuses: Vec<(&'static str, bool)>,
    rows: Vec<InstanceRowView>,
    live: bool,
    query: String,
}

#[derive(Template)]
#[template(path = "console/instance_rows.html")]
struct InstanceRows {
    rows: Vec<InstanceRowView>,
    live: bool,
    query: String,
}

/// The instance's current job, linked to its page.
struct JobLink {
    id: Uuid,
    label: String,
}

struct InstanceView {
    id: Uuid,
    name: String,
    project: String,
    status: String,
    status_class: &'static str,
    status_message: Option<String>,
    busy: bool,
    job: Option<JobLink>,
    version: String,
    memory: String,
    storage: String,
    region: String,
    connection_url: Option<String>,
    username: String,
    database: String,
    deletion_protection: bool,
    actions: Vec<&'static str>,
}

/// What the instance page says about a form just posted: the page's error, one per field of
/// the resize form, the delete form's, and the sizes chosen (kept when refused).
#[derive(Default)]
struct Said {
    error: Option<String>,
    memory: Option<String>,
    storage: Option<String>,
    delete: Option<String>,
    memory_choice: Option<String>,
    storage_choice: Option<String>,
}

impl Said {
    fn error(text: String) -> Said {
        Said {
            error: Some(text),
            ..Said::default()
        }
    }

    fn delete(text: String) -> Said {
        Said {
            delete: Some(text),
            ..Said::default()
        }
    }

    /// Someone refused the form altogether (a viewer's forged post) has no form on their page
    /// to read the refusal beside: it goes at the top.
    fn or_top(mut self, status: StatusCode) -> Said {
        if status == StatusCode::FORBIDDEN {
            self.error = self
                .memory
                .take()
                .or(self.storage.take())
                .or(self.delete.take());
        }
        self
    }
}

#[derive(Template)]
#[template(path = "console/instance.html")]
struct InstancePage {
    chrome: Chrome,
    tab_id: Uuid,
    tab: &'static str,
    i: InstanceView,
    can_write: bool,
    csrf: String,
    said: Said,
    /// The resize form's choices: (size, selected).
    memory_sizes: Vec<(String, bool)>,
    storage_sizes: Vec<(String, bool)>,
}

#[derive(Template)]
#[template(path = "console/instance_detail.html")]
struct InstanceDetail {
    i: InstanceView,
    can_write: bool,
    csrf: String,
}

#[derive(Template)]
#[template(path = "console/new_instance.html")]
struct NewInstancePage {
    chrome: Chrome,
    error: Option<String>,
    name: String,
    projects: Vec<ProjectOption>,
    regions: Vec<String>,
    versions: Vec<String>,
    memory_sizes: Vec<String>,
    storage_sizes: Vec<String>,
}

#[derive(Template)]
#[template(path = "console/created.html")]
struct CreatedPage {
    chrome: Chrome,
    id: Uuid,
    /// Already running (a spare was claimed), or still being made.
    ready: bool,
    name: String,
    username: String,
    password: String,
    connection_url: Option<String>,
}

struct ProjectRow {
    id: Uuid,
    name: String,
    role: String,
    description: String,
}

#[derive(Template)]
#[template(path = "console/projects.html")]
struct ProjectsPage {
    chrome: Chrome,
    projects: Vec<ProjectRow>,
    can_create: bool,
    error: Option<String>,
    name: String,
}

// ---------------------------------------------------------------------------------------------
// Sign-in

#[derive(Deserialize)]
struct LoginForm {
    login: String,
    password: String,
    csrf: String,
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

fn anonymous(title: &str, csrf: String) -> Chrome {
    Chrome {
        title: title.into(),
        username: None,
        csrf,
        section: "",
        platform_admin: false,
    }
}

/// The sign-in form, with its double-submit cookie.
fn login_form(
    headers: &HeaderMap,
    login: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let token = web::login_token(headers);
    let mut resp = page(
        status,
        &LoginPage {
            chrome: anonymous("Sign in", token.clone()),
            login: login.to_owned(),
            error: error.map(str::to_owned),
        },
    );
    let cookie = format!(
        "{}={token}; Path=/console; Max-Age=3600; HttpOnly; Secure; SameSite=Strict",
        web::LOGIN_CSRF_COOKIE
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

async fn login_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if visitor(&s, &headers).await.is_some() {
        return Redirect::to("/console/instances").into_response();
    }
    login_form(&headers, "", None, StatusCode::OK)
}

async fn login(State(s): State<AppState>, req: Request) -> Response {
    let (headers, form) = match same_origin_form::<LoginForm>(&s, req).await {
        Ok(parsed) => parsed,
        Err(r) => return refused(r),
    };
    let expected = crate::extract::cookie(&headers, web::LOGIN_CSRF_COOKIE);
    if !expected.is_some_and(|e| berth_auth::ct_eq(e.as_bytes(), form.csrf.as_bytes())) {
        return login_form(
            &headers,
            &form.login,
            Some("This form expired; please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let request = LoginRequest {
        login: form.login.clone(),
        password: form.password,
    };
    match s
        .app
        .login_session(&request, session_cookie(&headers).as_deref())
        .await
    {
        Ok(session) => {
            let mut resp = Redirect::to("/console/instances").into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie_header(&session.secret, session.max_age.as_secs()),
            );
            resp
        }
        Err(AppError::InvalidCredentials) => login_form(
            &headers,
            &form.login,
            Some("Invalid username or password."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(AppError::TooManyRequests { retry_after_secs }) => login_form(
            &headers,
            &form.login,
            Some(&format!(
                "Too many sign-in attempts; try again in {retry_after_secs} seconds."
            )),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(e) => {
            let (status, text) = explain(e);
            login_form(&headers, &form.login, Some(&text), status)
        }
    }
}

async fn logout(State(s): State<AppState>, req: Request) -> Response {
    let (headers, form) = match same_origin_form::<CsrfForm>(&s, req).await {
        Ok(parsed) => parsed,
        Err(r) => return refused(r),
    };
    if let Some(v) = visitor(&s, &headers).await {
        if !v.csrf_ok(&form.csrf) {
            return stale(&v);
        }
        if let Err(e) = s.app.logout(Some(&v.principal)).await {
            return error_page(Some(&v), e);
        }
    }
    let mut resp = Redirect::to("/console/login").into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie_header("", 0));
    resp
}

// ---------------------------------------------------------------------------------------------
// Errors

fn message_page(v: Option<&Visitor>, status: StatusCode, title: &str, text: &str) -> Response {
    let chrome = match v {
        Some(v) => v.chrome(title, ""),
        None => anonymous(title, String::new()),
    };
    page(
        status,
        &MessagePage {
            chrome,
            text: text.to_owned(),
        },
    )
}

fn error_page(v: Option<&Visitor>, e: AppError) -> Response {
    let (status, text) = explain(e);
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        _ => "Something went wrong",
    };
    message_page(v, status, title, &text)
}

fn refused(r: Refusal) -> Response {
    match r {
        Refusal::Forbidden(text) => {
            message_page(None, StatusCode::FORBIDDEN, "Request refused", text)
        }
        Refusal::BadRequest(text) => {
            message_page(None, StatusCode::BAD_REQUEST, "Bad request", text)
        }
    }
}

/// A form the signed-in visitor posted from this site with their session's token, or the page
/// that refuses it (another origin, no session, a stale token). Every signed-in post of the
/// console is read here.
async fn posted(s: &AppState, req: Request) -> Result<(Visitor, Fields), Response> {
    let (headers, pairs) = same_origin_form::<Vec<(String, String)>>(s, req)
        .await
        .map_err(refused)?;
    let v = visitor(s, &headers).await.ok_or_else(to_login)?;
    let fields = Fields(pairs);
    if !v.csrf_ok(fields.get("csrf")) {
        return Err(stale(&v));
    }
    Ok((v, fields))
}

fn stale(v: &Visitor) -> Response {
    message_page(
        Some(v),
        StatusCode::FORBIDDEN,
        "Request refused",
        "The form is stale; reload the page and try again.",
    )
}

// ---------------------------------------------------------------------------------------------
// Projects and what the visitor may do in them

/// The visitor's projects, with what they may do in each.
struct Access {
    projects: Vec<Project>,
    platform_admin: bool,
}

impl Access {
    async fn of(s: &AppState, v: &Visitor) -> Result<Access, AppError> {
        let mut projects = Vec::new();
        let mut offset = 0;
        loop {
            let page = s
                .app
                .list_projects(&v.principal, Some(500), Some(offset))
                .await?;
            let n = page.results.len() as i64;
            projects.extend(page.results);
            if page.next.is_none() || n == 0 {
                break;
            }
            offset += n;
        }
        Ok(Access {
            projects,
            platform_admin: v.principal.is_platform_admin,
        })
    }

    fn may(&self, project: Uuid, need: Permission) -> bool {
        self.platform_admin
            || self
                .projects
                .iter()
                .find(|p| p.id == project)
                .and_then(|p| p.role)
                .is_some_and(|r| r.permissions().contains(&need))
    }

    fn name(&self, project: Uuid) -> String {
        self.projects
            .iter()
            .find(|p| p.id == project)
            .map_or_else(|| project.to_string(), |p| p.name.clone())
    }

    fn writable(&self, selected: Option<Uuid>) -> Vec<ProjectOption> {
        self.projects
            .iter()
            .filter(|p| self.may(p.id, Permission::InstancesWrite))
            .map(|p| ProjectOption {
                id: p.id,
                name: p.name.clone(),
                selected: Some(p.id) == selected,
            })
            .collect()
    }
}

async fn projects(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    projects_page(&s, &v, StatusCode::OK, None, "").await
}

async fn projects_page(
    s: &AppState,
    v: &Visitor,
    status: StatusCode,
    error: Option<String>,
    name: &str,
) -> Response {
    let access = match Access::of(s, v).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(v), e),
    };
    page(
        status,
        &ProjectsPage {
            chrome: v.chrome("Projects", "projects"),
            projects: access
                .projects
                .iter()
                .map(|p| ProjectRow {
                    id: p.id,
                    name: p.name.clone(),
                    role: p
                        .role
                        .map_or_else(|| "platform admin".to_owned(), |r| r.as_str().to_owned()),
                    description: p.description.clone(),
                })
                .collect(),
            can_create: v.principal.has_scope(Permission::ProjectsCreate),
            error,
            name: name.to_owned(),
        },
    )
}

async fn create_project(State(s): State<AppState>, req: Request) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let req = CreateProject {
        name: form.get("name").to_owned(),
        description: form.get("description").to_owned(),
    };
    match s.app.create_project(&v.principal, &req).await {
        Ok(_) => Redirect::to("/console/projects").into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            projects_page(&s, &v, status, Some(text), &req.name).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Instances

/// How a status is drawn.
fn status_class(s: InstanceStatus) -> &'static str {
    match s {
        InstanceStatus::Running => "running",
        InstanceStatus::Paused => "paused",
        InstanceStatus::Failed => "failed",
        s if s.is_transitional() => "busy",
        _ => "",
    }
}

fn row_view(i: &Instance, access: &Access) -> InstanceRowView {
    InstanceRowView {
        id: i.id,
        name: i.name.clone(),
        project: access.name(i.project_id),
        status: i.status.to_string(),
        status_class: status_class(i.status),
        version: i.version.clone(),
        memory: i.memory.clone(),
    }
}

/// The actions an instance in its status can take.
fn actions(status: InstanceStatus) -> Vec<&'static str> {
    match status {
        InstanceStatus::Running => vec!["pause", "restart"],
        InstanceStatus::Paused => vec!["resume"],
        InstanceStatus::Failed => vec!["resume", "restart"],
        _ => vec![],
    }
}

fn instance_view(i: Instance, access: &Access) -> InstanceView {
    InstanceView {
        project: access.name(i.project_id),
        status: i.status.to_string(),
        status_class: status_class(i.status),
        busy: i.status.is_transitional(),
        job: i.current_job.as_ref().map(|j| JobLink {
            id: j.id,
            label: format!("{} ({})", j.job_type, j.state),
        }),
        actions: actions(i.status),
        id: i.id,
        name: i.name,
        status_message: i.status_message,
        version: i.version,
        memory: i.memory,
        storage: i.storage,
        region: i.region,
        connection_url: i.connection_url,
        username: i.username,
        database: i.database,
        deletion_protection: i.deletion_protection,
    }
}

#[derive(Deserialize, Default)]
struct ListQuery {
    #[serde(default)]
    project_id: String,
    #[serde(default)]
    status: String,
}

impl ListQuery {
    fn project(&self) -> Option<Uuid> {
        Uuid::parse_str(&self.project_id).ok()
    }

    fn status(&self) -> Option<String> {
        InstanceStatus::ALL
            .iter()
            .find(|s| s.as_str() == self.status)
            .map(|s| s.as_str().to_owned())
    }

    /// The same filters, for the live rows' URL.
    fn to_query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        if let Some(p) = self.project() {
            q.append_pair("project_id", &p.to_string());
        }
        if let Some(s) = self.status() {
            q.append_pair("status", &s);
        }
        let q = q.finish();
        if q.is_empty() {
            q
        } else {
            format!("?{q}")
        }
    }
}

/// The instances the visitor may see under the filters (every page of them).
async fn list(s: &AppState, v: &Visitor, q: &ListQuery) -> Result<Vec<Instance>, AppError> {
    let mut all = Vec::new();
    let mut query = InstanceQuery {
        project_id: q.project(),
        status: q.status(),
        limit: Some(500),
        ..Default::default()
    };
    loop {
        let page = s.app.list_instances(&v.principal, &query).await?;
        let n = page.results.len() as i64;
        all.extend(page.results);
        if page.next.is_none() || n == 0 {
            return Ok(all);
        }
        query.offset = Some(query.offset.unwrap_or(0) + n);
    }
}

async fn instances(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    let q = ListQuery {
        project_id: q.get("project_id").cloned().unwrap_or_default(),
        status: q.get("status").cloned().unwrap_or_default(),
    };
    let (access, found) = match (Access::of(&s, &v).await, list(&s, &v, &q).await) {
        (Ok(a), Ok(f)) => (a, f),
        (Err(e), _) | (_, Err(e)) => return error_page(Some(&v), e),
    };
    let rows: Vec<InstanceRowView> = found.iter().map(|i| row_view(i, &access)).collect();
    let selected = q.project();
    page(
        StatusCode::OK,
        &InstancesPage {
            chrome: v.chrome("Instances", "instances"),
            can_create: access
                .projects
                .iter()
                .any(|p| access.may(p.id, Permission::InstancesWrite)),
            projects: access
                .projects
                .iter()
                .map(|p| ProjectOption {
                    id: p.id,
                    name: p.name.clone(),
                    selected: Some(p.id) == selected,
                })
                .collect(),
            statuses: InstanceStatus::ALL
                .iter()
                .filter(|s| !matches!(s, InstanceStatus::Deleted | InstanceStatus::Unknown))
                .map(|s| (s.as_str(), q.status().as_deref() == Some(s.as_str())))
                .collect(),
            live: found.iter().any(|i| i.status.is_transitional()),
            rows,
            query: q.to_query(),
        },
    )
}

/// The rows alone, for the list's live updates (htmx swaps the table).
async fn instance_rows(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return web::fragment_to_login();
    };
    let q = ListQuery {
        project_id: q.get("project_id").cloned().unwrap_or_default(),
        status: q.get("status").cloned().unwrap_or_default(),
    };
    let (access, found) = match (Access::of(&s, &v).await, list(&s, &v, &q).await) {
        (Ok(a), Ok(f)) => (a, f),
        // (Kept as it is on the page: the next poll tries again.)
        (Err(e), _) | (_, Err(e)) => return explain(e).0.into_response(),
    };
    page(
        StatusCode::OK,
        &InstanceRows {
            live: found.iter().any(|i| i.status.is_transitional()),
            rows: found.iter().map(|i| row_view(i, &access)).collect(),
            query: q.to_query(),
        },
    )
}

async fn new_instance(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    let selected = q.get("project_id").and_then(|p| Uuid::parse_str(p).ok());
    new_instance_page(&s, &v, StatusCode::OK, None, "", selected).await
}

async fn new_instance_page(
    s: &AppState,
    v: &Visitor,
    status: StatusCode,
    error: Option<String>,
    name: &str,
    project: Option<Uuid>,
) -> Response {
    let access = match Access::of(s, v).await {
        Ok(a) => a,
        Err(e) => return error_page(Some(v), e),
    };
    let regions = s.app.regions();
    let first = regions.first();
    page(
        status,
        &NewInstancePage {
            chrome: v.chrome("Create an instance", "instances"),
            error,
            name: name.to_owned(),
            projects: access.writable(project),
            versions: first.map(|r| r.versions.clone()).unwrap_or_default(),
            memory_sizes: first.map(|r| r.memory_sizes.clone()).unwrap_or_default(),
            storage_sizes: first.map(|r| r.storage_sizes.clone()).unwrap_or_default(),
            regions: regions.into_iter().map(|r| r.id).collect(),
        },
    )
}

async fn create_instance(State(s): State<AppState>, req: Request) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let project = Uuid::parse_str(form.get("project_id")).ok();
    let Some(project_id) = project else {
        return new_instance_page(
            &s,
            &v,
            StatusCode::BAD_REQUEST,
            Some("Choose a project.".into()),
            form.get("name"),
            None,
        )
        .await;
    };
    let req = CreateInstance {
        name: form.get("name").to_owned(),
        project_id,
        engine: "postgres".into(),
        version: form.get("version").to_owned(),
        region: form.get("region").to_owned(),
        memory: form.get("memory").to_owned(),
        storage: Some(form.get("storage").to_owned()).filter(|s| !s.is_empty()),
        source: None,
        firewall_rules: None,
    };
    match s.app.create_instance(&v.principal, &req, None).await {
        Ok(created) => created_page(&v, created),
        Err(e) => {
            let (status, text) = explain(e);
            new_instance_page(&s, &v, status, Some(text), &req.name, project).await
        }
    }
}

/// A new instance (created, restored or cloned) with its password: shown in this answer only,
/// never in a URL, never cached.
pub(super) fn created_page(v: &Visitor, created: berth_types::CreatedInstance) -> Response {
    let i = created.instance;
    page(
        StatusCode::CREATED,
        &CreatedPage {
            chrome: v.chrome(format!("{} created", i.name), "instances"),
            id: i.id,
            ready: i.status == InstanceStatus::Running,
            name: i.name,
            username: i.username,
            password: created.password,
            connection_url: i.connection_url,
        },
    )
}

/// The instance and what the visitor may do with it.
async fn load(s: &AppState, v: &Visitor, id: &str) -> Result<(InstanceView, bool), AppError> {
    let id = Uuid::parse_str(id).map_err(|_| AppError::NotFound("instance"))?;
    let i = s.app.get_instance(&v.principal, id).await?;
    let access = Access::of(s, v).await?;
    let can_write = access.may(i.project_id, Permission::InstancesWrite);
    Ok((instance_view(i, &access), can_write))
}

async fn instance(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    instance_page(&s, &v, &id, StatusCode::OK, Said::default()).await
}

async fn instance_page(
    s: &AppState,
    v: &Visitor,
    id: &str,
    status: StatusCode,
    said: Said,
) -> Response {
    let (i, can_write) = match load(s, v, id).await {
        Ok(x) => x,
        Err(e) => return error_page(Some(v), e),
    };
    let regions = s.app.regions();
    let region = regions
        .iter()
        .find(|r| r.id == i.region)
        .or(regions.first());
    let memory = said.memory_choice.as_deref().unwrap_or(&i.memory);
    let memory_sizes = region
        .map(|r| r.memory_sizes.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let selected = m == memory;
            (m, selected)
        })
        .collect();
    // Storage only grows: the sizes offered start at the instance's own.
    let storage = said.storage_choice.as_deref().unwrap_or(&i.storage);
    let offered = region.map(|r| r.storage_sizes.clone()).unwrap_or_default();
    let from = offered.iter().position(|x| *x == i.storage).unwrap_or(0);
    let storage_sizes = offered
        .into_iter()
        .skip(from)
        .map(|x| {
            let selected = x == storage;
            (x, selected)
        })
        .collect();
    page(
        status,
        &InstancePage {
            chrome: v.chrome(i.name.clone(), "instances"),
            tab_id: i.id,
            tab: "overview",
            csrf: web::csrf_for_session(&v.session),
            i,
            can_write,
            said,
            memory_sizes,
            storage_sizes,
        },
    )
}

/// The status panel alone, for the instance page's live updates.
async fn instance_detail(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return web::fragment_to_login();
    };
    match load(&s, &v, &id).await {
        Ok((i, can_write)) => page(
            StatusCode::OK,
            &InstanceDetail {
                csrf: web::csrf_for_session(&v.session),
                i,
                can_write,
            },
        ),
        // Deleted meanwhile (or never visible): back to the list.
        Err(AppError::NotFound(_)) => {
            web::fragment_refused(StatusCode::NOT_FOUND, "/console/instances")
        }
        Err(e) => explain(e).0.into_response(),
    }
}

async fn instance_action(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), AppError::NotFound("instance"));
    };
    match s
        .app
        .instance_action(&v.principal, uuid, form.get("action"))
        .await
    {
        Ok(_) => Redirect::to(&format!("/console/instances/{uuid}")).into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            instance_page(&s, &v, &id, status, Said::error(text)).await
        }
    }
}

async fn delete_instance(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), AppError::NotFound("instance"));
    };
    let (name, protected) = match s.app.get_instance(&v.principal, uuid).await {
        Ok(i) => (i.name, i.deletion_protection),
        Err(e) => return error_page(Some(&v), e),
    };
    if form.get("confirm_name").trim() != name {
        return instance_page(
            &s,
            &v,
            &id,
            StatusCode::BAD_REQUEST,
            Said::delete(format!("Type the instance's name, {name}, to delete it.")),
        )
        .await;
    }
    // The app layer decides (a viewer's forged post gets its 403, not a hint); its refusal of a
    // protected instance speaks of the API, so the page says where the switch is instead.
    match s.app.delete_instance(&v.principal, uuid).await {
        Ok(_) => Redirect::to("/console/instances").into_response(),
        Err(e) => {
            let (status, mut text) = explain(e);
            if protected && status == StatusCode::CONFLICT {
                text = "Deletion protection is on: turn it off above, then delete.".into();
            }
            instance_page(&s, &v, &id, status, Said::delete(text).or_top(status)).await
        }
    }
}

/// Resizes memory (a `resize` job, the instance restarts) and grows storage (at once), each
/// refusal shown next to its field. Storage goes first: it needs no job, so a refused memory
/// size leaves nothing half done but the storage the page then shows.
async fn resize_instance(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), AppError::NotFound("instance"));
    };
    let current = match s.app.get_instance(&v.principal, uuid).await {
        Ok(i) => i,
        Err(e) => return error_page(Some(&v), e),
    };
    let (memory, storage) = (form.get("memory").trim(), form.get("storage").trim());
    let beside = |memory_error, storage_error| Said {
        memory: memory_error,
        storage: storage_error,
        memory_choice: Some(memory.to_owned()),
        storage_choice: Some(storage.to_owned()),
        ..Said::default()
    };
    let change = |memory: Option<&str>, storage: Option<&str>| UpdateInstance {
        memory: memory.map(str::to_owned),
        storage: storage.map(str::to_owned),
        ..UpdateInstance::default()
    };
    if !storage.is_empty() && storage != current.storage {
        if let Err(e) = s
            .app
            .update_instance(&v.principal, uuid, &change(None, Some(storage)))
            .await
        {
            let (status, text) = explain(e);
            let said = beside(None, Some(text)).or_top(status);
            return instance_page(&s, &v, &id, status, said).await;
        }
    }
    if !memory.is_empty() && memory != current.memory {
        if let Err(e) = s
            .app
            .update_instance(&v.principal, uuid, &change(Some(memory), None))
            .await
        {
            let (status, text) = explain(e);
            let said = beside(Some(text), None).or_top(status);
            return instance_page(&s, &v, &id, status, said).await;
        }
    }
    Redirect::to(&format!("/console/instances/{uuid}")).into_response()
}

/// Turns deletion protection on or off (at once, no job).
async fn protect_instance(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, form) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(uuid) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), AppError::NotFound("instance"));
    };
    let on = match form.get("deletion_protection") {
        "on" => true,
        "off" => false,
        _ => {
            return instance_page(
                &s,
                &v,
                &id,
                StatusCode::BAD_REQUEST,
                Said::error("Choose on or off.".into()),
            )
            .await
        }
    };
    let req = UpdateInstance {
        deletion_protection: Some(on),
        ..UpdateInstance::default()
    };
    match s.app.update_instance(&v.principal, uuid, &req).await {
        Ok(_) => Redirect::to(&format!("/console/instances/{uuid}")).into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            instance_page(&s, &v, &id, status, Said::error(text)).await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Assets (vendored and embedded: no CDN, no build step)

const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/console.js"),
    ),
    (
        "htmx-2.0.4.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/htmx-2.0.4.min.js"),
    ),
];

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, ..)| *n == name) {
        Some((_, mime, bytes)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
