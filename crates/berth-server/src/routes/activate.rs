//! The device activation page (RFC 8628 `verification_uri`): a small server-rendered web page
//! where a signed-in user enters the code their CLI shows, sees which client asks for what,
//! and confirms or denies. Signing in happens on the page itself with the usual cookie session.
//!
//! CSRF: every form post must come from this origin (`Origin`/`Referer`) and carry a token —
//! derived from the session cookie for signed-in forms, and a double-submit cookie for the
//! sign-in form. Pages refuse to be framed, so the Confirm button cannot be clickjacked.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use berth_core::{AppError, Credential, Principal};
use berth_types::{DeviceRequest, LoginRequest};
use serde::Deserialize;

use askama::Template;

use crate::console::web::Chrome;
use crate::extract::{check_same_origin, cookie, session_cookie};
use crate::routes::auth::session_cookie_header;
use crate::state::AppState;

const LOGIN_CSRF_COOKIE: &str = "berth_activate_csrf";

#[derive(Deserialize)]
pub struct CodeQuery {
    user_code: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    login: String,
    password: String,
    #[serde(default)]
    user_code: String,
    csrf: String,
}

#[derive(Deserialize)]
pub struct DecisionForm {
    user_code: String,
    decision: String,
    csrf: String,
}

/// `GET /activate[?user_code=…]`: sign in, enter the code, or confirm the request.
pub async fn page(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<CodeQuery>,
) -> Response {
    let code = q.user_code.unwrap_or_default();
    let Some((principal, session)) = signed_in(&s, &headers).await else {
        return login_page(&headers, &code, None, StatusCode::OK);
    };
    if code.trim().is_empty() {
        return html(StatusCode::OK, &code_form(&principal, &session, None));
    }
    match s.app.device_request(&code).await {
        Ok(req) => html(
            StatusCode::OK,
            &confirm_form(&principal, &session, &req, &csrf_for_session(&session)),
        ),
        Err(AppError::NotFound(_)) => html(
            StatusCode::NOT_FOUND,
            &code_form(
                &principal,
                &session,
                Some("That code is unknown or has expired. Check your terminal and try again."),
            ),
        ),
        Err(e) => error_page(e),
    }
}

/// `POST /activate/login`: the cookie sign-in, from the page.
pub async fn login(State(s): State<AppState>, req: Request) -> Response {
    let (headers, form) = match same_origin_form::<LoginForm>(&s, req).await {
        Ok(parsed) => parsed,
        Err(refused) => return refused,
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE);
    if !expected.is_some_and(|e| berth_auth::ct_eq(e.as_bytes(), form.csrf.as_bytes())) {
        return login_page(
            &headers,
            &form.user_code,
            Some("Your session on this page expired; please sign in again."),
            StatusCode::FORBIDDEN,
        );
    }
    let request = LoginRequest {
        login: form.login,
        password: form.password,
    };
    match s
        .app
        .login_session(&request, session_cookie(&headers).as_deref())
        .await
    {
        Ok(session) => {
            let target = if form.user_code.trim().is_empty() {
                "/activate".to_owned()
            } else {
                format!("/activate?user_code={}", url_escape(form.user_code.trim()))
            };
            let mut resp = Redirect::to(&target).into_response();
            resp.headers_mut().insert(
                header::SET_COOKIE,
                session_cookie_header(&session.secret, session.max_age.as_secs()),
            );
            resp
        }
        Err(AppError::InvalidCredentials) => login_page(
            &headers,
            &form.user_code,
            Some("Invalid username or password."),
            StatusCode::UNAUTHORIZED,
        ),
        Err(AppError::TooManyRequests { retry_after_secs }) => login_page(
            &headers,
            &form.user_code,
            Some(&format!(
                "Too many sign-in attempts; try again in {retry_after_secs} seconds."
            )),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(e) => error_page(e),
    }
}

/// `POST /activate/decision`: Confirm or Deny.
pub async fn decide(State(s): State<AppState>, req: Request) -> Response {
    let (headers, form) = match same_origin_form::<DecisionForm>(&s, req).await {
        Ok(parsed) => parsed,
        Err(refused) => return refused,
    };
    let Some((principal, session)) = signed_in(&s, &headers).await else {
        return login_page(
            &headers,
            &form.user_code,
            Some("Please sign in first."),
            StatusCode::UNAUTHORIZED,
        );
    };
    if !berth_auth::ct_eq(csrf_for_session(&session).as_bytes(), form.csrf.as_bytes()) {
        return html(
            StatusCode::FORBIDDEN,
            &message(
                "Request refused",
                "The form is stale; reload the page and try again.",
            ),
        );
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return html(
                StatusCode::BAD_REQUEST,
                &message("Bad request", "Unknown decision."),
            )
        }
    };
    match s
        .app
        .device_decide(&principal, &form.user_code, approve)
        .await
    {
        Ok(()) if approve => html(
            StatusCode::OK,
            &message(
                "Device approved",
                "You can close this window and return to your terminal.",
            ),
        ),
        Ok(()) => html(
            StatusCode::OK,
            &message(
                "Request denied",
                "The device was not given access. You can close this window.",
            ),
        ),
        Err(AppError::NotFound(_)) => html(
            StatusCode::NOT_FOUND,
            &code_form(
                &principal,
                &session,
                Some("That code is unknown, has expired, or was already used."),
            ),
        ),
        Err(e) => error_page(e),
    }
}

/// A form posted from this site: its headers and fields, or the page that refuses it.
async fn same_origin_form<T: serde::de::DeserializeOwned>(
    s: &AppState,
    req: Request,
) -> Result<(HeaderMap, T), Response> {
    let (parts, body) = req.into_parts();
    if check_same_origin(&parts, s).is_err() {
        return Err(html(
            StatusCode::FORBIDDEN,
            &message("Request refused", "The form did not come from this site."),
        ));
    }
    let headers = parts.headers.clone();
    match axum::Form::<T>::from_request(Request::from_parts(parts, body), s).await {
        Ok(axum::Form(form)) => Ok((headers, form)),
        Err(_) => Err(html(
            StatusCode::BAD_REQUEST,
            &message("Bad request", "The form was incomplete."),
        )),
    }
}

async fn signed_in(s: &AppState, headers: &HeaderMap) -> Option<(Principal, String)> {
    let session = session_cookie(headers)?;
    let p = s
        .app
        .authenticate(&Credential::Session(session.clone()))
        .await
        .ok()?;
    Some((p, session))
}

/// The form token of a signed-in page: the console's, bound to the session (the page's own
/// form and the header's Sign out carry the same one).
fn csrf_for_session(session: &str) -> String {
    crate::console::web::csrf_for_session(session)
}

fn login_page(
    headers: &HeaderMap,
    code: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    // Double-submit token for the sign-in form, reused while the cookie lives.
    let token = cookie(headers, LOGIN_CSRF_COOKIE)
        .filter(|t| t.len() == 43)
        .unwrap_or_else(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(berth_auth::random_bytes::<32>())
        });
    let mut resp = html(status, &login_form(code, &token, error));
    let cookie = format!("{LOGIN_CSRF_COOKIE}={token}; Path=/activate; Max-Age=3600; HttpOnly; Secure; SameSite=Strict");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn error_page(e: AppError) -> Response {
    let api: crate::error::ApiError = e.into();
    let status = api.status();
    html(
        status,
        &message("Something went wrong", "Please try again in a moment."),
    )
}

fn html(status: StatusCode, body: &str) -> Response {
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body.to_owned(),
    )
        .into_response();
    let h = resp.headers_mut();
    crate::respond::set_no_store(h);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The console's policy: its stylesheet and scripts only, nothing inline.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::console::web::CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The console's frame, for a visitor not signed in.
fn anonymous(title: &str) -> Chrome {
    Chrome {
        title: title.to_owned(),
        username: None,
        csrf: String::new(),
        section: "",
        platform_admin: false,
    }
}

/// The console's frame for a signed-in visitor (its menu and Sign out button).
fn signed_in_chrome(title: &str, p: &Principal, session: &str) -> Chrome {
    Chrome {
        title: title.to_owned(),
        username: Some(p.username.clone()),
        csrf: crate::console::web::csrf_for_session(session),
        section: "",
        platform_admin: p.is_platform_admin,
    }
}

fn render(t: &impl Template) -> String {
    t.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "rendering the activation page failed");
        "the page could not be rendered".to_owned()
    })
}

#[derive(Template)]
#[template(path = "console/activate_login.html")]
struct LoginTemplate<'a> {
    chrome: Chrome,
    csrf: &'a str,
    code: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "console/activate_code.html")]
struct CodeTemplate<'a> {
    chrome: Chrome,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "console/activate_confirm.html")]
struct ConfirmTemplate<'a> {
    chrome: Chrome,
    client: &'a str,
    code: &'a str,
    scopes: &'a [(String, String)],
    csrf: &'a str,
}

#[derive(Template)]
#[template(path = "console/activate_message.html")]
struct MessageTemplate<'a> {
    chrome: Chrome,
    text: &'a str,
}

fn login_form(code: &str, csrf: &str, error: Option<&str>) -> String {
    render(&LoginTemplate {
        chrome: anonymous("Sign in"),
        csrf,
        code,
        error,
    })
}

fn code_form(p: &Principal, session: &str, error: Option<&str>) -> String {
    render(&CodeTemplate {
        chrome: signed_in_chrome("Activate a device", p, session),
        error,
    })
}

fn confirm_form(p: &Principal, session: &str, req: &DeviceRequest, csrf: &str) -> String {
    render(&ConfirmTemplate {
        chrome: signed_in_chrome("Device confirmation", p, session),
        client: &req.client_name,
        code: &req.user_code,
        scopes: &req.scopes,
        csrf,
    })
}

fn message(title: &str, text: &str) -> String {
    render(&MessageTemplate {
        chrome: anonymous(title),
        text,
    })
}
