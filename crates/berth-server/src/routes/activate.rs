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
        return html(StatusCode::OK, &code_form(&principal, None));
    }
    match s.app.device_request(&code).await {
        Ok(req) => html(
            StatusCode::OK,
            &confirm_form(&principal, &req, &csrf_for_session(&session)),
        ),
        Err(AppError::NotFound(_)) => html(
            StatusCode::NOT_FOUND,
            &code_form(
                &principal,
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

/// The form token of a signed-in page: bound to the session, unknowable without its cookie.
fn csrf_for_session(session: &str) -> String {
    let digest = berth_auth::sha256(format!("berth-activate-csrf:{session}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
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
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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

fn layout(title: &str, content: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Berth</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f4f5f7; color: #1d2330; margin: 0; }}
main {{ max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002; }}
h1 {{ font-size: 1.3rem; margin-top: 0; }}
label {{ display: block; margin: .8rem 0 .3rem; font-weight: 600; }}
input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem; border: 1px solid #bbc; border-radius: 4px; }}
input#user_code {{ font-family: ui-monospace, monospace; letter-spacing: .15em; text-transform: uppercase; }}
button {{ margin-top: 1.2rem; padding: .6rem 1.2rem; font-size: 1rem; border-radius: 4px; border: 1px solid #235; cursor: pointer; }}
button.primary {{ background: #1f4fd1; color: #fff; border-color: #1f4fd1; }}
.error {{ color: #a11; background: #fdecec; padding: .6rem; border-radius: 4px; }}
.code {{ font-family: ui-monospace, monospace; font-size: 1.4rem; letter-spacing: .15em; }}
ul.scopes li {{ margin: .3rem 0; }} ul.scopes code {{ font-weight: 600; }}
.who {{ color: #556; font-size: .9rem; }}
</style></head>
<body><main>
{content}
</main></body></html>"#,
        title = esc(title)
    )
}

fn error_html(error: Option<&str>) -> String {
    error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, esc(e)))
        .unwrap_or_default()
}

fn login_form(code: &str, csrf: &str, error: Option<&str>) -> String {
    layout(
        "Sign in",
        &format!(
            r#"<h1>Sign in to activate your device</h1>
{error}
<form method="post" action="/activate/login">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="user_code" value="{code}">
<label for="login">Username or email</label><input type="text" id="login" name="login" autocomplete="username" required autofocus>
<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>
<button class="primary" type="submit" id="sign-in">Sign in</button>
</form>"#,
            error = error_html(error),
            csrf = esc(csrf),
            code = esc(code),
        ),
    )
}

fn code_form(p: &Principal, error: Option<&str>) -> String {
    layout(
        "Activate a device",
        &format!(
            r#"<h1>Activate a device</h1>
<p class="who">Signed in as <strong>{user}</strong></p>
{error}
<form method="get" action="/activate">
<label for="user_code">Enter the code shown on your device</label>
<input type="text" id="user_code" name="user_code" placeholder="XXXX-XXXX" autocomplete="off" spellcheck="false" required autofocus>
<button class="primary" type="submit" id="continue">Continue</button>
</form>"#,
            user = esc(&p.username),
            error = error_html(error),
        ),
    )
}

fn confirm_form(p: &Principal, req: &DeviceRequest, csrf: &str) -> String {
    let scopes: String = req
        .scopes
        .iter()
        .map(|(name, description)| {
            format!("<li><code>{}</code> — {}</li>", esc(name), esc(description))
        })
        .collect();
    layout(
        "Device confirmation",
        &format!(
            r#"<h1>Device confirmation</h1>
<p class="who">Signed in as <strong>{user}</strong></p>
<p><strong id="client-name">{client}</strong> is asking to access Berth on your behalf. Make sure this code matches the one on your device:</p>
<p class="code" id="user-code">{code}</p>
<p>It will be able to:</p>
<ul class="scopes">{scopes}</ul>
<form method="post" action="/activate/decision">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="user_code" value="{code}">
<button class="primary" type="submit" name="decision" value="approve" id="confirm">Confirm</button>
<button type="submit" name="decision" value="deny" id="deny">Deny</button>
</form>"#,
            user = esc(&p.username),
            client = esc(&req.client_name),
            code = esc(&req.user_code),
            scopes = scopes,
            csrf = esc(csrf),
        ),
    )
}

fn message(title: &str, text: &str) -> String {
    layout(
        title,
        &format!(r#"<h1 id="result">{}</h1><p>{}</p>"#, esc(title), esc(text)),
    )
}
