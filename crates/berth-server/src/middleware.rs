//! Cross-cutting request handling: request ids (in the log, the response header and every error
//! body), access logs, metrics, refusing requests at once while the store is down,
//! trailing-slash normalisation and panics.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::connections::BodyTimedOut;
use crate::error::ApiError;
use crate::state::AppState;

/// At which level each finished request is logged (`[log] requests`). Requests that fail with
/// a 5xx are logged at error whatever this says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestLog {
    #[default]
    Debug,
    Info,
    Off,
}

/// Process-wide, like the log subscriber it feeds.
static REQUEST_LOG: AtomicU8 = AtomicU8::new(RequestLog::Debug as u8);

pub(crate) fn set_request_log(level: RequestLog) {
    REQUEST_LOG.store(level as u8, Ordering::Relaxed);
}

fn request_log() -> RequestLog {
    match REQUEST_LOG.load(Ordering::Relaxed) {
        x if x == RequestLog::Info as u8 => RequestLog::Info,
        x if x == RequestLog::Off as u8 => RequestLog::Off,
        _ => RequestLog::Debug,
    }
}

tokio::task_local! {
    static REQUEST_ID: String;
    /// The request's query string, so list pages can link to their neighbours with the same
    /// filters.
    static REQUEST_QUERY: Option<String>;
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The query string of the request being handled on this task.
pub fn current_query() -> Option<String> {
    REQUEST_QUERY.try_with(Clone::clone).ok().flatten()
}

/// The id of the request being handled on this task.
pub fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Uses the caller's `X-Request-Id` when it is short and plain, else makes one; logs the
/// outcome and records metrics.
pub async fn request_context(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %req.uri().path());
    let started = Instant::now();
    let client = berth_core::ClientInfo {
        ip: req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |c| c.0.ip()),
        user_agent: req
            .headers()
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(256).collect()),
    };
    let req_query = req.uri().query().map(str::to_owned);
    let body_timed_out = req.extensions().get::<BodyTimedOut>().cloned();
    let handled = berth_core::context::with_client(client, next.run(req).instrument(span.clone()));
    let query = req_query;
    let mut resp = REQUEST_ID
        .scope(id.clone(), REQUEST_QUERY.scope(query, handled))
        .await;
    if body_timed_out.is_some_and(|t| t.is_set()) {
        // Whatever the handler made of the broken body (usually a 400), the client was too slow.
        resp = REQUEST_ID.sync_scope(id.clone(), || {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request body did not arrive in time",
            )
            .into_response()
        });
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            HeaderValue::from_static("close"),
        );
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    let latency_us = elapsed.as_micros() as u64;
    span.in_scope(|| match request_log() {
        // 503 is a known state (the store away, hashing saturated) that is logged once where
        // it starts; one line per refused request would flood the log during an outage.
        _ if status >= 500 && status != 503 => {
            tracing::error!(status, latency_us, "request failed")
        }
        RequestLog::Info => tracing::info!(status, latency_us, "request completed"),
        RequestLog::Debug => tracing::debug!(status, latency_us, "request completed"),
        RequestLog::Off => {}
    });
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.to_string()),
    ];
    metrics::counter!("berth_http_requests_total", &labels).increment(1);
    metrics::histogram!("berth_http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// While the store is down, a request that needs it gets 503 with `Retry-After` at once rather
/// than after the pool's acquire timeout. Liveness, readiness, metrics, the discovery documents
/// and the API docs need no store and keep answering.
pub async fn require_store(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !needs_no_store(req.uri().path()) {
        if let Err(e) = state.app.require_store() {
            return ApiError::from(e).into_response();
        }
    }
    next.run(req).await
}

fn needs_no_store(path: &str) -> bool {
    matches!(
        path,
        "/healthz"
            | "/readyz"
            | "/metrics"
            | "/api/openapi.json"
            | "/api/v1/auth/provider"
            | "/api/v3/auth/provider"
    ) || path.starts_with("/.well-known/")
        || path.starts_with("/api/docs")
        || path.starts_with("/api/swagger")
}

/// Every route answers with and without a trailing slash: strip it before routing. Swagger UI
/// (`/api/docs`, and CCX's `/api/swagger`) is exempt because it redirects `/api/docs` to
/// `/api/docs/` itself.
pub fn trim_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.len() > 1
        && path.ends_with('/')
        && !path.starts_with("/api/docs")
        && !path.starts_with("/api/swagger")
    {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let new = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = new.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "an internal error occurred",
    )
    .into_response()
}
