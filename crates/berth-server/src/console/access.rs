//! The console's access page: the visitor's API keys (prefix, scopes, expiry, last use; a new
//! one with a name, an expiry and scopes), API clients (client credentials, optionally bound to
//! a project) and user tokens, each created with its secret shown once (never cached, never in
//! a URL) and revocable — the operations of `/api/v1/auth/api-keys`, `/api/v1/auth/clients`
//! and `/api/v1/users/{id}/tokens`.

use askama::Template;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use berth_types::{CreateApiKey, CreateClient, CreateUserToken, Permission};
use chrono::{Duration, Utc};
use uuid::Uuid;

use super::web::{explain, page, to_login, visitor, Chrome, Fields, Visitor};
use super::{error_page, posted};
use crate::state::AppState;

struct KeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: String,
    expires: String,
    last_used: String,
}

struct ClientRow {
    client_id: String,
    name: String,
    project: String,
    expires: String,
}

struct TokenRow {
    id: Uuid,
    name: String,
    prefix: String,
    expires: String,
    last_used: String,
}

/// A secret just made, shown once.
#[derive(Default)]
struct Created {
    secret: Option<String>,
    label: &'static str,
    hint: &'static str,
    client_id: Option<String>,
}

#[derive(Template)]
#[template(path = "console/api_keys.html")]
struct ApiKeysPage {
    chrome: Chrome,
    keys: Vec<KeyRow>,
    scopes: Vec<&'static str>,
    clients: Vec<ClientRow>,
    tokens: Vec<TokenRow>,
    projects: Vec<(Uuid, String)>,
    created: Option<String>,
    created_label: &'static str,
    created_hint: &'static str,
    created_client_id: Option<String>,
    error: Option<String>,
}

fn api_key_made(secret: String) -> Created {
    Created {
        secret: Some(secret),
        label: "New API key",
        hint: "Send it as Authorization: Api-Key <key>.",
        client_id: None,
    }
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
    created: Created,
    error: Option<String>,
) -> Response {
    let p = &v.principal;
    let lists = async {
        Ok::<_, berth_core::AppError>((
            s.app.list_api_keys(p, Some(500), None).await?.results,
            s.app.list_clients(p, Some(500), None).await?.results,
            s.app
                .list_user_tokens(p, p.user_id, Some(500), None)
                .await?
                .results,
            super::Access::of(s, v).await?,
        ))
    }
    .await;
    let (keys, clients, tokens, access) = match lists {
        Ok(l) => l,
        Err(e) => return error_page(Some(v), e),
    };
    page(
        status,
        &ApiKeysPage {
            chrome: v.chrome("Access", "access"),
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
            clients: clients
                .into_iter()
                .map(|c| ClientRow {
                    project: c.project_id.map(|p| access.name(p)).unwrap_or_default(),
                    client_id: c.client_id,
                    name: c.name,
                    expires: when(c.expires_at, "never"),
                })
                .collect(),
            tokens: tokens
                .into_iter()
                .map(|t| TokenRow {
                    id: t.id,
                    name: t.name,
                    prefix: t.prefix,
                    expires: when(Some(t.expires_at), "never"),
                    last_used: when(t.last_used_at, "never"),
                })
                .collect(),
            projects: access
                .projects
                .iter()
                .map(|p| (p.id, p.name.clone()))
                .collect(),
            created: created.secret,
            created_label: created.label,
            created_hint: created.hint,
            created_client_id: created.client_id,
            error,
        },
    )
}

pub(super) async fn list(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some(v) = visitor(&s, &headers).await else {
        return to_login();
    };
    render(&s, &v, StatusCode::OK, Created::default(), None).await
}

pub(super) async fn create(State(s): State<AppState>, req: Request) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let expires_at = match fields.get("expires_in_days") {
        "" => None,
        days => match days.parse::<i64>() {
            Ok(d) if (1..=3650).contains(&d) => Some(Utc::now() + Duration::days(d)),
            _ => {
                return render(
                    &s,
                    &v,
                    StatusCode::BAD_REQUEST,
                    Created::default(),
                    Some("Choose an expiry.".into()),
                )
                .await
            }
        },
    };
    // A checkbox group: the `scope` field repeated.
    let scopes: Vec<String> = fields.all("scope").map(str::to_owned).collect();
    let req = CreateApiKey {
        name: fields.get("name").to_owned(),
        expires_at,
        scopes: (!scopes.is_empty()).then_some(scopes),
    };
    match s.app.create_api_key(&v.principal, &req).await {
        // The secret is in this answer only (a page that is never cached), not in a URL.
        Ok(created) => {
            render(
                &s,
                &v,
                StatusCode::CREATED,
                api_key_made(created.api_key),
                None,
            )
            .await
        }
        Err(e) => {
            let (status, text) = explain(e);
            render(&s, &v, status, Created::default(), Some(text)).await
        }
    }
}

pub(super) async fn revoke(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, _) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return error_page(Some(&v), berth_core::AppError::NotFound("API key"));
    };
    match s.app.revoke_api_key(&v.principal, id).await {
        Ok(()) => Redirect::to("/console/api-keys").into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            render(&s, &v, status, Created::default(), Some(text)).await
        }
    }
}

/// The expiry a form chose (30, 90 or 365 days).
fn expiry(fields: &Fields) -> Result<chrono::DateTime<Utc>, berth_core::AppError> {
    match fields.get("expires_in_days").parse::<i64>() {
        Ok(d) if (1..=3650).contains(&d) => Ok(Utc::now() + Duration::days(d)),
        _ => Err(berth_core::AppError::Validation("choose an expiry".into())),
    }
}

/// The page again: with the secret made, or with what went wrong.
async fn made<T>(
    s: &AppState,
    v: &Visitor,
    result: Result<T, berth_core::AppError>,
    shown: impl FnOnce(T) -> Created,
) -> Response {
    match result {
        Ok(t) => render(s, v, StatusCode::CREATED, shown(t), None).await,
        Err(e) => {
            let (status, text) = explain(e);
            render(s, v, status, Created::default(), Some(text)).await
        }
    }
}

pub(super) async fn create_client(State(s): State<AppState>, req: Request) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = async {
        let req = CreateClient {
            name: fields.get("name").to_owned(),
            expires_at: expiry(&fields)?,
            scopes: None,
            project_id: Uuid::parse_str(fields.get("project_id")).ok(),
        };
        s.app.create_client(&v.principal, &req).await
    }
    .await;
    made(&s, &v, result, |c| Created {
        secret: Some(c.client_secret),
        label: "Client secret",
        hint: "Use the client ID and secret with grant_type=client_credentials at /oauth/token.",
        client_id: Some(c.client.client_id),
    })
    .await
}

pub(super) async fn revoke_client(
    State(s): State<AppState>,
    Path(client_id): Path<String>,
    req: Request,
) -> Response {
    let (v, _) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.app.revoke_client(&v.principal, &client_id).await {
        Ok(()) => Redirect::to("/console/api-keys").into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            render(&s, &v, status, Created::default(), Some(text)).await
        }
    }
}

pub(super) async fn create_user_token(State(s): State<AppState>, req: Request) -> Response {
    let (v, fields) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = async {
        let req = CreateUserToken {
            name: fields.get("name").to_owned(),
            expires_at: expiry(&fields)?,
        };
        s.app
            .create_user_token(&v.principal, v.principal.user_id, &req)
            .await
    }
    .await;
    made(&s, &v, result, |t| Created {
        secret: Some(t.token),
        label: "New user token",
        hint: "Trade it for an access token at /api/v1/auth/token/refresh.",
        client_id: None,
    })
    .await
}

pub(super) async fn revoke_user_token(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (v, _) = match posted(&s, req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match Uuid::parse_str(&id) {
        Ok(id) => {
            s.app
                .revoke_user_token(&v.principal, v.principal.user_id, id)
                .await
        }
        Err(_) => Err(berth_core::AppError::NotFound("user token")),
    };
    match result {
        Ok(()) => Redirect::to("/console/api-keys").into_response(),
        Err(e) => {
            let (status, text) = explain(e);
            render(&s, &v, status, Created::default(), Some(text)).await
        }
    }
}
