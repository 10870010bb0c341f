//! Health, readiness, metrics and the public signing keys.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_types::{HealthStatus, Jwks};

use crate::state::AppState;

/// Liveness: the process is serving.
#[utoipa::path(get, path = "/healthz", operation_id = "get_health", tag = "operations", responses((status = 200, body = HealthStatus)))]
pub async fn healthz() -> axum::Json<HealthStatus> {
    // 200 while the store is down too: restarting Berth would not bring the store back (and
    // Berth restarts its own PostgreSQL itself); `/readyz` tells that the store is away.
    axum::Json(HealthStatus {
        status: "ok".into(),
    })
}

/// Readiness: the store is reachable.
#[utoipa::path(get, path = "/readyz", operation_id = "get_readiness", tag = "operations", responses((status = 200, body = HealthStatus), (status = 503, body = HealthStatus)))]
pub async fn readyz(State(s): State<AppState>) -> Response {
    // As the store's probe and supervisor last saw it, so this answers at once.
    if s.app.ready() {
        axum::Json(HealthStatus {
            status: "ready".into(),
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(HealthStatus {
                status: "store unreachable".into(),
            }),
        )
            .into_response()
    }
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", operation_id = "get_metrics", tag = "operations",
    responses((status = 200, body = String, content_type = "text/plain", description = "Prometheus text exposition format")))]
pub async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render() + &s.app.instance_metrics(),
    )
        .into_response()
}

/// The public keys that verify Berth's access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", operation_id = "get_jwks", tag = "auth", responses((status = 200, body = Jwks)))]
pub async fn jwks(State(s): State<AppState>) -> Response {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(s.app.keyring().jwks()),
    )
        .into_response()
}
