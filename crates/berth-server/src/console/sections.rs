//! The tabs of an instance's page beside its overview: backups (take one; restore one, or a
//! moment, into a new instance), firewall rules (add, remove), configuration (the parameters a
//! user may set, changed together), database users (create with the password shown once, reset
//! a password, remove), databases (create, remove) and monitoring (charts of the last hour drawn
//! as SVG on the server, and the latest log entries).
//! Each is the instance's API operations under a page; write forms show only to those whose
//! role allows them.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_core::AppError;
use std::collections::BTreeMap;

use berth_types::{
    ApplyMode, BackupQuery, BackupStatus, BackupType, CreateBackup, CreateDatabase, CreateDbUser,
    CreateFirewallRule, CreateInstance, DbUserProfile, InstanceParameter, InstanceSource, LogQuery,
    Permission, StatsQuery, UpdateConfig,
};
use uuid::Uuid;

use super::web::{explain, page, to_login, visitor, Chrome, Visitor};
use super::{error_page, posted, Access};
use crate::state::AppState;

pub(super) struct BackupRow {
    kind: String,
    status: String,
    status_class: &'static str,
    trigger: String,
    finished: String,
    size: String,
}

/// What the restore form offers: the window, and the completed backups to restore exactly.
pub(super) struct RestoreForm {
    /// The window in words (empty: nothing is restorable yet).
    window: String,
    /// Bounds of the moment field (`datetime-local`, UTC).
    min: String,
    max: String,
    /// (id, what it is) of each completed backup, newest first.
    backups: Vec<(Uuid, String)>,
    /// The new instance's suggested name.
    name: String,
}

/// One parameter of the configuration form.
pub(super) struct ParamRow {
    name: String,
    /// What the field holds: after a refused change what was posted, else the value.
    value: String,
    default: String,
    user_set: bool,
    /// The values of a select (enums and booleans); None: a text field.
    choices: Option<Vec<String>>,
    /// Type, unit and bounds in words.
    hint: String,
    restart_required: bool,
    pending_restart: bool,
    description: String,
    /// Why the last change refused this parameter.
    error: Option<String>,
}

pub(super) struct RuleRow {
    id: Uuid,
    cidr: String,
    description: String,
}

pub(super) struct UserRow {
    name: String,
    profile: String,
    state: String,
    owner: bool,
}

pub(super) struct DatabaseRow {
    name: String,
    owner: String,
    state: String,
    /// The instance's own database (not removable).
    primary: bool,
}

pub(super) struct Chart {
    title: String,
    latest: String,
    max: String,
    /// An SVG path over a 300 × 80 box.
    path: String,
}

pub(super) enum Section {
    Backups(Vec<BackupRow>, RestoreForm),
    Config(Vec<ParamRow>),
    Firewall(Vec<RuleRow>),
    Users(Vec<UserRow>),
    Databases(Vec<DatabaseRow>),
    Monitoring(Vec<Chart>, Vec<(String, String, String)>),
}

#[derive(Template)]
#[template(path = "console/instance_section.html")]
struct SectionPage {
    chrome: Chrome,
    name: String,
    tab_id: Uuid,
    tab: &'static str,
    can_write: bool,
    error: Option<String>,
    notice: Option<String>,
    secret: Option<String>,
    secret_for: String,
    body: Section,
}

/// What a section page shows besides its body.
#[derive(Default)]
struct Extras {
    error: Option<String>,
    notice: Option<String>,
    /// A password shown once, and whose it is.
    secret: Option<(String, String)>,
    /// The configuration form as posted (parameter → value), shown again after a refusal.
    posted: BTreeMap<String, String>,
    /// The parameter a refused change names, and why.
    field_error: Option<(String, String)>,
}

fn bytes(n: Option<i64>) -> String {
    match n {
        None => String::new(),
        Some(n) if n >= 1 << 30 => format!("{:.1} GB", n as f64 / f64::from(1 << 30)),
        Some(n) if n >= 1 << 20 => format!("{:.1} MB", n as f64 / f64::from(1 << 20)),
        Some(n) => format!("{:.0} kB", n as f64 / 1024.0),
    }
}

/// The chart of a series: its points scaled into the box (gaps where there is no value).
fn chart(title: &str, unit: &str, points: &[Option<f64>]) -> Chart {
    let max = points.iter().flatten().fold(0.0_f64, |m, v| m.max(*v));
    let scale = if max > 0.0 { 76.0 / max } else { 0.0 };
    let n = points.len().max(2) - 1;
    let mut path = String::new();
    let mut pen_down = false;
    for (i, p) in points.iter().enumerate() {
        match p {
            Some(v) => {
                let x = 300.0 * i as f64 / n as f64;
                let y = 78.0 - v * scale;
                path.push_str(&format!(
                    "{}{x:.1} {y:.1} ",
                    if pen_down { "L" } else { "M" }
                ));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let fmt = |v: f64| {
        if unit == "bytes" {
            bytes(Some(v as i64))
        } else if v.fract() == 0.0 {
            format!("{v:.0} {unit}")
        } else {
            format!("{v:.2} {unit}")
        }
    };
    Chart {
        title: title.replace('_', " "),
        latest: points
            .iter()
            .rev()
            .flatten()
            .next()
            .map_or_else(|| "no samples yet".to_owned(), |v| fmt(*v)),
        max: fmt(max),
        path: path.trim_end().to_owned(),
    }
}

async fn render(
    s: &AppState,
    v: &Visitor,
    id: &str,
    tab: &'static str,
    status: StatusCode,
    extras: Extras,
) -> Response {
    match build(s, v, id, tab, extras).await {
        Ok(p) => page(status, &p),
        Err(e) => error_page(Some(v), e),
    }
}

async fn build(
    s: &AppState,
    v: &Visitor,
    id: &str,
    tab: &'static str,
    extras: Extras,
) -> Result<SectionPage, AppError> {
    let id = Uuid::parse_str(id).map_err(|_| AppError::NotFound("instance"))?;
    let instance = s.app.get_instance(&v.principal, id).await?;
    let access = Access::of(s, v).await?;
    let p = &v.principal;
    let body = match tab {
        "backups" => {
            let q = BackupQuery {
                limit: Some(50),
                ..Default::default()
            };
            let rows = s.app.list_backups(p, id, &q).await?.results;
            let window = s.app.restore_window(p, id).await?;
            let local =
                |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
            let restore = RestoreForm {
                window: match (window.earliest, window.latest) {
                    (Some(from), Some(to)) => format!(
                        "from {} to {}{}",
                        from.format("%Y-%m-%d %H:%M:%S UTC"),
                        to.format("%Y-%m-%d %H:%M:%S UTC"),
                        if window.continuous { " (now)" } else { "" }
                    ),
                    _ => String::new(),
                },
                // (Rounded up to the second, so the field's lowest value is within the window.)
                min: window
                    .earliest
                    .map(|t| local(t + chrono::Duration::milliseconds(999)))
                    .unwrap_or_default(),
                max: window.latest.map(local).unwrap_or_default(),
                backups: rows
                    .iter()
                    .filter(|b| b.status == BackupStatus::Completed)
                    .map(|b| {
                        let when = b
                            .finished_at
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                            .unwrap_or_default();
                        (b.id, format!("{} backup of {when}", b.backup_type))
                    })
                    .collect(),
                // (Within the 63 characters a name may have.)
                name: format!("{}-restored", truncate_chars(&instance.name, 54)),
            };
            Section::Backups(
                rows.into_iter()
                    .map(|b| BackupRow {
                        kind: b.backup_type.to_string(),
                        status_class: match b.status.as_str() {
                            "completed" => "running",
                            "failed" => "failed",
                            _ => "busy",
                        },
                        status: b.status.to_string(),
                        trigger: b.trigger.to_string(),
                        finished: b
                            .finished_at
                            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                            .unwrap_or_default(),
                        size: bytes(b.size),
                    })
                    .collect(),
                restore,
            )
        }
        "config" => {
            let params = s.app.get_config(p, id).await?.results;
            Section::Config(
                params
                    .into_iter()
                    .map(|param| param_row(param, &extras.posted, &extras.field_error))
                    .collect(),
            )
        }
        "firewall" => Section::Firewall(
            s.app
                .list_firewall_rules(p, id)
                .await?
                .results
                .into_iter()
                .map(|r| RuleRow {
                    id: r.id,
                    cidr: r.cidr,
                    description: r.description,
                })
                .collect(),
        ),
        "users" => Section::Users(
            s.app
                .list_db_users(p, id)
                .await?
                .results
                .into_iter()
                .map(|u| UserRow {
                    owner: u.profile == DbUserProfile::Owner,
                    name: u.name,
                    profile: u.profile.to_string(),
                    state: u.state.to_string(),
                })
                .collect(),
        ),
        "databases" => Section::Databases(
            s.app
                .list_databases(p, id)
                .await?
                .results
                .into_iter()
                .map(|d| DatabaseRow {
                    primary: d.name == instance.database,
                    name: d.name,
                    owner: d.owner,
                    state: d.state.to_string(),
                })
                .collect(),
        ),
        _ => {
            let q = StatsQuery {
                metric: Some(
                    "connections_total,commits_per_second,database_size_bytes,cache_hit_ratio"
                        .into(),
                ),
                ..Default::default()
            };
            let stats = s.app.instance_stats(p, id, &q).await?;
            let charts = stats
                .series
                .iter()
                .map(|series| {
                    let values: Vec<Option<f64>> =
                        series.points.iter().map(|pt| pt.value).collect();
                    chart(&series.metric, &series.unit, &values)
                })
                .collect();
            let logs = s
                .app
                .instance_logs(
                    p,
                    id,
                    &LogQuery {
                        limit: Some(50),
                        ..Default::default()
                    },
                )
                .await?
                .results
                .into_iter()
                .rev()
                .map(|l| {
                    (
                        l.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                        l.severity,
                        l.message,
                    )
                })
                .collect();
            Section::Monitoring(charts, logs)
        }
    };
    let (secret, secret_for) = match extras.secret {
        Some((user, password)) => (Some(password), user),
        None => (None, String::new()),
    };
    Ok(SectionPage {
        chrome: v.chrome(instance.name.clone(), "instances"),
        can_write: access.may(instance.project_id, Permission::InstancesWrite),
        name: instance.name,
        tab_id: id,
        tab,
        error: extras.error,
        notice: extras.notice,
        secret,
        secret_for,
        body,
    })
}

/// The first `n` characters of `s`.
fn truncate_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}

/// A parameter as the form shows it.
fn param_row(
    p: InstanceParameter,
    posted: &BTreeMap<String, String>,
    field_error: &Option<(String, String)>,
) -> ParamRow {
    let choices = match p.kind.as_str() {
        "bool" => Some(vec!["on".to_owned(), "off".to_owned()]),
        _ => p.allowed_values.clone().filter(|_| p.kind == "enum"),
    };
    let mut hint = p.kind.clone();
    if let Some(unit) = &p.unit {
        hint.push_str(&format!(", a bare number in {unit}"));
    }
    if let (Some(min), Some(max)) = (&p.min, &p.max) {
        hint.push_str(&format!(", {min} to {max}"));
    }
    ParamRow {
        value: posted.get(&p.name).cloned().unwrap_or(p.value),
        error: field_error
            .as_ref()
            .filter(|(name, _)| *name == p.name)
            .map(|(_, why)| why.clone()),
        user_set: p.source == "user",
        name: p.name,
        default: p.default,
        choices,
        hint,
        restart_required: p.restart_required,
        pending_restart: p.pending_restart,
        description: p.description,
    }
}

macro_rules! section_page {
    ($name:ident, $tab:literal) => {
        pub(super) async fn $name(
            State(s): State<AppState>,
            headers: HeaderMap,
            Path(id): Path<String>,
        ) -> Response {
            let Some(v) = visitor(&s, &headers).await else {
                return to_login();
            };
            render(&s, &v, &id, $tab, StatusCode::OK, Extras::default()).await
        }
    };
}

section_page!(backups, "backups");
section_page!(firewall, "firewall");
section_page!(users, "users");
section_page!(monitoring, "monitoring");
section_page!(databases, "databases");
section_page!(config, "config");

/// The section again, saying what came of a change.
async fn after<T>(
    s: &AppState,
    v: &Visitor,
    id: &str,
    tab: &'static str,
    result: Result<T, AppError>,
    done: impl FnOnce(T) -> Extras,
) -> Response {
    match result {
        Ok(t) => render(s, v, id, tab, StatusCode::OK, done(t)).await,
        Err(e) => refused(s, v, id, tab, e).await,
    }
}

/// The section again, with the refusal at the top (and the API's status).
async fn refused(s: &AppState, v: &Visitor, id: &str, tab: &'static str, e: AppError) -> Response {
    let (status, text) = explain(e);
    let extras = Extras {
        error: Some(text),
        ..Extras::default()
    };
    render(s, v, id, tab, status, extras).await
}

fn instance_id(id: &str) -> Result<Uuid, AppError> {
    Uuid::parse_str(id).map_err(|_| AppError::NotFound("instance"))
}

fn notice(text: &str) -> Extras {
    Extras {
        notice: Some(text.to_owned()),
        ..Extras::default()
    }
}

pub(super) async fn take_backup(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = async {
        let backup_type = match fields.get("type") {
            "" => None,
            t => Some(
                t.parse::<BackupType>()
                    .map_err(|_| AppError::Validation("choose full, diff or incr".into()))?,
            ),
        };
        s.app
            .create_backup(
                &v.principal,
                instance_id(&id)?,
                &CreateBackup { backup_type },
            )
            .await
    }
    .await;
    after(&s, &v, &id, "backups", result, |_| {
        notice("The backup has started; it appears below as it runs.")
    })
    .await
}

pub(super) async fn add_rule(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let rule = CreateFirewallRule {
        cidr: fields.get("cidr").trim().to_owned(),
        description: fields.get("description").to_owned(),
    };
    let result = match instance_id(&id) {
        Ok(i) => s.app.add_firewall_rule(&v.principal, i, &rule).await,
        Err(e) => Err(e),
    };
    after(&s, &v, &id, "firewall", result, |a| {
        notice(&format!("{} may connect within a second.", a.rule.cidr))
    })
    .await
}

pub(super) async fn remove_rule(
    State(s): State<AppState>,
    Path((id, rule)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (v, _) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match (instance_id(&id), Uuid::parse_str(&rule)) {
        (Ok(i), Ok(r)) => s.app.delete_firewall_rule(&v.principal, i, r).await,
        _ => Err(AppError::NotFound("firewall rule")),
    };
    after(&s, &v, &id, "firewall", result, |_| {
        notice("The rule is removed; connections made under it stay.")
    })
    .await
}

pub(super) async fn create_user(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = async {
        let profile = fields
            .get("profile")
            .parse::<DbUserProfile>()
            .map_err(|_| AppError::Validation("choose a profile".into()))?;
        let req = CreateDbUser {
            name: fields.get("name").trim().to_owned(),
            profile,
        };
        s.app
            .create_db_user(&v.principal, instance_id(&id)?, &req)
            .await
    }
    .await;
    // The password is in this answer only (never cached, never in a URL).
    after(&s, &v, &id, "users", result, |c| Extras {
        secret: Some((c.user.name, c.password)),
        ..Extras::default()
    })
    .await
}

pub(super) async fn reset_password(
    State(s): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (v, _) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match instance_id(&id) {
        Ok(i) => s.app.reset_db_user_password(&v.principal, i, &name).await,
        Err(e) => Err(e),
    };
    after(&s, &v, &id, "users", result, |r| Extras {
        secret: Some((r.username, r.password)),
        ..Extras::default()
    })
    .await
}

pub(super) async fn remove_user(
    State(s): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (v, _) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match instance_id(&id) {
        Ok(i) => s.app.delete_db_user(&v.principal, i, &name).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/console/instances/{id}/users")).into_response(),
        Err(e) => refused(&s, &v, &id, "users", e).await,
    }
}

pub(super) async fn create_database(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let owner = fields.get("owner").trim();
    let req = CreateDatabase {
        name: fields.get("name").trim().to_owned(),
        owner: (!owner.is_empty()).then(|| owner.to_owned()),
    };
    let result = match instance_id(&id) {
        Ok(i) => s.app.create_database(&v.principal, i, &req).await,
        Err(e) => Err(e),
    };
    after(&s, &v, &id, "databases", result, |d| {
        notice(&format!("{} is being created.", d.database.name))
    })
    .await
}

pub(super) async fn remove_database(
    State(s): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    req: Request,
) -> Response {
    let (v, _) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match instance_id(&id) {
        Ok(i) => s.app.delete_database(&v.principal, i, &name).await,
        Err(e) => Err(e),
    };
    after(&s, &v, &id, "databases", result, |_| {
        notice(&format!("{name} is being removed; its sessions are ended."))
    })
    .await
}

/// A moment of the restore form: `datetime-local` (UTC, with or without seconds) or RFC 3339.
fn moment(text: &str) -> Result<chrono::DateTime<chrono::Utc>, AppError> {
    let text = text.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            AppError::Validation(
                "give the moment as a date and time (UTC) within the window".into(),
            )
        })
}

/// Restores a backup, a moment or the latest state of the instance into a new instance of the
/// same project and shape: the created page, with the new password shown once.
pub(super) async fn restore(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = async {
        let source = s.app.get_instance(&v.principal, instance_id(&id)?).await?;
        let mut from = InstanceSource {
            instance_id: Some(source.id),
            ..InstanceSource::default()
        };
        match fields.get("point") {
            "" | "latest" => {}
            "backup" => {
                let backup = Uuid::parse_str(fields.get("backup_id"))
                    .map_err(|_| AppError::Validation("choose the backup to restore".into()))?;
                from.backup_id = Some(backup);
            }
            "time" => from.point_in_time = Some(moment(fields.get("time"))?),
            _ => {
                return Err(AppError::Validation(
                    "choose the latest state, a backup or a moment".into(),
                ))
            }
        }
        let req = CreateInstance {
            name: fields.get("name").trim().to_owned(),
            project_id: source.project_id,
            engine: source.engine,
            version: source.version,
            region: source.region,
            memory: source.memory,
            storage: Some(source.storage),
            source: Some(from),
            firewall_rules: None,
        };
        s.app.create_instance(&v.principal, &req, None).await
    }
    .await;
    match result {
        Ok(created) => super::created_page(&v, created),
        Err(e) => refused(&s, &v, &id, "backups", e).await,
    }
}

/// Changes the parameters whose field differs from their value (an emptied field resets one
/// the user had set), all in one `config` job; a refusal is shown beside its parameter, with
/// what was typed kept.
pub(super) async fn update_config(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let posted: BTreeMap<String, String> = fields
        .0
        .iter()
        .filter_map(|(k, val)| Some((k.strip_prefix("param.")?.to_owned(), val.trim().to_owned())))
        .collect();
    let result = async {
        let iid = instance_id(&id)?;
        let current = s.app.get_config(&v.principal, iid).await?.results;
        let mut parameters = BTreeMap::new();
        for param in &current {
            match posted.get(&param.name) {
                Some(val) if val.is_empty() && param.source == "user" => {
                    parameters.insert(param.name.clone(), serde_json::Value::Null);
                }
                Some(val) if !val.is_empty() && *val != param.value => {
                    parameters.insert(param.name.clone(), val.clone().into());
                }
                _ => {}
            }
        }
        if parameters.is_empty() {
            return Ok(None);
        }
        let apply = match fields.get("apply") {
            "restart" => ApplyMode::Restart,
            _ => ApplyMode::Reload,
        };
        let change = UpdateConfig { parameters, apply };
        s.app
            .update_config(&v.principal, iid, &change)
            .await
            .map(Some)
    }
    .await;
    let extras = match result {
        Ok(None) => notice(
            "Nothing changed: every field holds the parameter's value. (Changes waiting for a \
             restart take effect when the instance restarts: Overview, Restart.)",
        ),
        Ok(Some(c)) => {
            let names: Vec<&str> = c.changed.keys().map(String::as_str).collect();
            let mut text = format!("Changed {}; the change is being applied.", names.join(", "));
            if !c.pending_restart.is_empty() {
                text.push_str(&format!(
                    " {} take effect at the next restart.",
                    c.pending_restart.join(", ")
                ));
            }
            notice(&text)
        }
        Err(e) => {
            let (status, text) = explain(e);
            let field = posted
                .keys()
                .find(|name| text.starts_with(&format!("{name}:")))
                .cloned();
            let extras = Extras {
                error: field.is_none().then(|| text.clone()),
                field_error: field.map(|f| (f, text)),
                posted,
                ..Extras::default()
            };
            return render(&s, &v, &id, "config", status, extras).await;
        }
    };
    render(&s, &v, &id, "config", StatusCode::OK, extras).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_scale_into_the_box_and_leave_gaps() {
        let c = chart(
            "commits_per_second",
            "1/s",
            &[Some(0.0), Some(2.0), None, Some(1.0)],
        );
        assert_eq!(c.path, "M0.0 78.0 L100.0 2.0 M300.0 40.0");
        assert_eq!(c.latest, "1 1/s");
        let empty = chart("x", "", &[None, None]);
        assert!(empty.path.is_empty());
        assert_eq!(empty.latest, "no samples yet");
    }

    #[test]
    fn suggested_names_stay_within_the_limit() {
        assert_eq!(truncate_chars("db", 54), "db");
        assert_eq!(truncate_chars(&"é".repeat(60), 54).chars().count(), 54);
    }

    #[test]
    fn restore_moments_are_utc_with_or_without_seconds() {
        let t = |s: &str| moment(s).map(|t| t.to_rfc3339());
        assert_eq!(t("2026-12-02T16:40").unwrap(), "2026-12-02T16:40:00+00:00");
        assert_eq!(
            t("2026-12-02T16:40:05").unwrap(),
            "2026-12-02T16:40:05+00:00"
        );
        assert_eq!(
            t("2026-12-02T17:40:05+01:00").unwrap(),
            "2026-12-02T16:40:05+00:00"
        );
        assert!(t("yesterday").is_err());
        assert!(t("").is_err());
    }
}
