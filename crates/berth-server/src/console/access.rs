//! The console's API keys page: the visitor's keys (prefix, scopes, expiry, last use), a new
//! key with a name, an expiry and scopes (its secret shown once, never cached), and revoking
//! one — the same operations as `/api/v1/auth/api-keys`.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_types::{CreateApiKey, Permission};
use chrono::{Duration, Utc};
use uuid::Uuid;

use super::web::{explain, page, same_origin_form, to_login, visitor, Chrome, Visitor};
use super::{error_page, refused, stale};
use crate::state::AppState;

struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: String,
    expires: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/api_keys.html")]
struct ApiKeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    scopes: Vec<&'static str>,
    created: Option<String>,
    error: Option<String>,
}

fn when(t: Option<chrono::DateTime<Utc>>, none: &str) -> String {
    t.map_or_else(
        || none.to_owned(),
        |t| t.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

async fn render(
    s: &AppState,
    v: &Visitor,
    status: StatusCode,
    created: Option<String>,
    error: Option<String>,
) -> Response {
    let keys = match s.app.list_api_keys(&v.principal, Some(500), None).await {
        Ok(page) => page.results,
        Err(e) => return error_page(Some(v), e),
    };
    page(
        status,
        &ApiKeysPage {
            chrome: v.chrome("API keys", "access"),
            keys: keys
                .into_iter()
                .map(|k| KeyRow {
                    id: k.id,
                    name: k.name,
                    prefix: k.prefix,
                    scopes: if k.scopes.is_empty() {
                        "everything".into()
                    } else {
                        k.scopes.join(", ")
                    },
                    expires: when(k.expires_at, "never"),
                    last_used: when(k.last_used_at, "never"),
                })
                .collect(),
            scopes: Permission::ALL
                .iter()
                .filter(|p| v.principal.is_platform_admin || !p.as_str().starts_with("users:"))
                .map(|p| p.as_str())
                .collect(),
            created,
            error,
        },
    )
}

pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    render(&s, &v, StatusCode::OK, None, None).await
}

pub(super) async fn create(State(s): State<AppState>, req: Request) -> Response {
    // Repeated `scope` fields: read as pairs.
    let (headers, fields) = match same_origin_form::<Vec<(String, String)>>(&s, req).await {
        Ok(parsed) => parsed,
        Err(r) => return refused(r),
    };
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if !v.csrf_ok(field("csrf").unwrap_or("")) {
        return stale(&v);
    }
    let expires_at = match field("expires_in_days").unwrap_or("") {
        "" => None,
        days => match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Some(Utc::now() + Duration::days(d)),
            _ => {
                return render(
                    &s,
                    &v,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some("Choose an expiry.".into()),
                )
                .await
            }
        },
    };
    let scopes: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let req = CreateApiKey {
        name: field("name").unwrap_or("").to_owned(),
        expires_at,
        scopes: (!scopes.is_empty()).then_some(scopes),
    };
    match s.app.create_api_key(&v.principal, &req).await {
        // The secret is in this answer only (a page that is never cached), not in a URL.
        Ok(created) => render(&s, &v, StatusCode::CREATED, Some(created.api_key), None).await,
        Err(e) => {
            let (status, text) = explain(e);
            render(&s, &v, status, None, Some(text)).await
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct RevokeForm {
    csrf: String,
}

pub(super) async fn revoke(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (headers, form) = match same_origin_form::<RevokeForm>(&s, req).await {
        Ok(parsed) => parsed,
        Err(r) => return refused(r),
    };
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    if !v.csrf_ok(&form.csrf) {
        return stale(&v);
    }
    let Ok(id) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), berth_core::AppError::NotFound("API key"));
    };
    match s.app.revoke_api_key(&v.principal, id).await {
        Ok(()) => Redirect::to("/console/api-keys").into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            render(&s, &v, status, None, Some(text)).await
        }
    }
}
