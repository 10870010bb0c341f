//! What every console page shares: who is signed in (the API's cookie session), the form
//! tokens that stop cross-site posts, rendering a template with the console's security headers,
//! and the assets embedded in the binary.

use askama::Template;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use berth_core::{AppError, Credential, Principal};

use crate::extract::{check_same_origin, cookie, session_cookie};
use crate::state::AppState;

/// The double-submit token of the sign-in form (there is no session yet to bind it to).
pub(crate) const LOGIN_CSRF_COOKIE: &str = "berth_console_csrf";

/// Scripts and styles from this origin only, no inline script or style, no framing, no
/// plugins; forms post only here.
pub(crate) const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The frame of every page: its title, the signed-in user, the form token, the menu entry.
pub(crate) struct Chrome {
    pub title: String,
    pub username: Option<String>,
    pub csrf: String,
    pub section: &'static str,
    /// Shows the platform admins' pages in the menu.
    pub platform_admin: bool,
}

/// A signed-in visitor: the principal and the session cookie's value.
pub(crate) struct Visitor {
    pub principal: Principal,
    pub session: String,
}

impl Visitor {
    pub fn chrome(&self, title: impl Into<String>, section: &'static str) -> Chrome {
        Chrome {
            title: title.into(),
            username: Some(self.principal.username.clone()),
            csrf: csrf_for_session(&self.session),
            section,
            platform_admin: self.principal.is_platform_admin,
        }
    }

    /// Whether a posted form token is this session's.
    pub fn csrf_ok(&self, token: &str) -> bool {
        berth_auth::ct_eq(csrf_for_session(&self.session).as_bytes(), token.as_bytes())
    }
}

/// The visitor, if their session cookie is valid.
pub(crate) async fn visitor(s: &AppState, headers: &HeaderMap) -> Option<Visitor> {
    let session = session_cookie(headers)?;
    let principal = s
        .app
        .authenticate(&Credential::Session(session.clone()))
        .await
        .ok()?;
    Some(Visitor { principal, session })
}

/// The form token of a signed-in page: bound to the session, unknowable without its cookie.
pub(crate) fn csrf_for_session(session: &str) -> String {
    let digest = berth_auth::sha256(format!("berth-console-csrf:{session}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

/// The sign-in form's token: the cookie's, or a new one.
pub(crate) fn login_token(headers: &HeaderMap) -> String {
    cookie(headers, LOGIN_CSRF_COOKIE)
        .filter(|t| t.len() == 43)
        .unwrap_or_else(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(berth_auth::random_bytes::<32>())
        })
}

/// Renders a page with the console's headers. Pages are never cached: they carry tenants'
/// data, and some a secret shown once.
pub(crate) fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(body) => {
            let mut resp = (status, body).into_response();
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a console page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the page could not be rendered",
            )
                .into_response()
        }
    }
}

/// The console's security headers, on every response under `/console`.
pub(crate) async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// To the sign-in page (a visitor without a session).
pub(crate) fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

/// For a fragment htmx fetches (live updates) whose visitor has no session any more: 401, and
/// `HX-Redirect` so the page goes to sign in instead of silently showing a stale status.
pub(crate) fn fragment_to_login() -> Response {
    fragment_refused(StatusCode::UNAUTHORIZED, "/console/login")
}

/// A fragment that cannot be had: the status, and `HX-Redirect` to `to` (htmx follows it, a
/// page that polls does not keep asking).
pub(crate) fn fragment_refused(status: StatusCode, to: &'static str) -> Response {
    (status, [("hx-redirect", to)]).into_response()
}

/// A form posted from this site: its headers and fields; anything else is refused.
pub(crate) async fn same_origin_form<T: serde::de::DeserializeOwned>(
    s: &AppState,
    req: Request,
) -> Result<(HeaderMap, T), Refusal> {
    let (parts, body) = req.into_parts();
    if check_same_origin(&parts, s).is_err() {
        return Err(Refusal::Forbidden("The form did not come from this site."));
    }
    let headers = parts.headers.clone();
    match axum::Form::<T>::from_request(Request::from_parts(parts, body), s).await {
        Ok(axum::Form(form)) => Ok((headers, form)),
        Err(_) => Err(Refusal::BadRequest("The form was incomplete.")),
    }
}

/// The fields of a posted form, in order (a group of checkboxes repeats its name).
pub(crate) struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name` (empty when the form has none).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a form was not even read.
pub(crate) enum Refusal {
    Forbidden(&'static str),
    BadRequest(&'static str),
}

/// The status an app error answers with in the API (the console answers the same way) and
/// what to tell the visitor: the API's message for their mistakes, nothing of the server's.
pub(crate) fn explain(e: AppError) -> (StatusCode, String) {
    let api: crate::error::ApiError = e.into();
    let status = api.status();
    if status.is_server_error() {
        return (
            status,
            "Something went wrong on the server; please try again in a moment.".into(),
        );
    }
    (status, api.message().to_owned())
}
