//! The single mapping from application errors to HTTP responses, and the JSON body every error
//! carries: `{error, message, request_id}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_core::{AppError, AuthFailure};
use berth_types::ErrorBody;

use crate::middleware::current_request_id;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    www_authenticate: Option<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the body's `message` says (for pages that show the API's answer).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            www_authenticate: None,
            retry_after: None,
        }
    }
}

const REALM: &str = r#"Bearer realm="berth""#;

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let message = e.to_string();
        match e {
            AppError::Validation(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
            }
            // RFC 6750 §3.1: a request without credentials gets the challenge but no error code.
            AppError::Unauthenticated(AuthFailure::Missing) => ApiError {
                www_authenticate: Some(REALM.into()),
                ..ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "authentication required",
                )
            },
            AppError::Unauthenticated(failure) => ApiError {
                www_authenticate: Some(format!(
                    r#"{REALM}, error="invalid_token", error_description="{failure}""#
                )),
                ..ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    failure.to_string(),
                )
            },
            AppError::InvalidCredentials => ApiError {
                www_authenticate: Some(REALM.into()),
                ..ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            },
            AppError::InvalidGrant(_) => ApiError {
                www_authenticate: Some(REALM.into()),
                ..ApiError::new(StatusCode::UNAUTHORIZED, "invalid_grant", message)
            },
            AppError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            AppError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            AppError::Conflict { .. } => ApiError::new(StatusCode::CONFLICT, "conflict", message),
            AppError::TooManyRequests { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs.max(1)),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
            },
            // Something Berth needs is away for now (its store, most often): say when to try
            // again, as RFC 9110 §10.2.3 allows for 503.
            AppError::Unavailable(_) => ApiError {
                retry_after: Some(berth_store::health::RETRY_AFTER_SECS),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            },
            AppError::Busy { retry_after_secs } => ApiError {
                retry_after: Some(retry_after_secs.max(1)),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            },
            AppError::OAuth { error, description } => {
                let status = match error {
                    "invalid_client" => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::BAD_REQUEST,
                };
                ApiError {
                    www_authenticate: (error == "invalid_client")
                        .then(|| r#"Basic realm="berth""#.to_owned()),
                    ..ApiError::new(status, error, description)
                }
            }
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "an internal error occurred",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.into(),
            message: self.message.clone(),
            request_id: current_request_id(),
        };
        let resp = (self.status, axum::Json(body)).into_response();
        self.with_headers(resp)
    }
}

/// An error of the `/oauth` endpoints, which answer with RFC 6749 §5.2 bodies
/// (`{"error", "error_description"}`) rather than Berth's own.
pub struct OAuthError(pub ApiError);

impl<E: Into<ApiError>> From<E> for OAuthError {
    fn from(e: E) -> Self {
        OAuthError(e.into())
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = berth_types::OAuthErrorBody {
            error: e.code.into(),
            error_description: e.message.clone(),
        };
        let resp = crate::respond::no_store((e.status, axum::Json(body)));
        e.with_headers(resp)
    }
}

impl ApiError {
    fn with_headers(self, mut resp: Response) -> Response {
        let headers = resp.headers_mut();
        if let Some(v) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            crate::respond::set_no_store(headers);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
