//! Request extractors that turn HTTP into the app layer's inputs: the authenticated principal
//! (with CSRF protection for cookie sessions), JSON bodies, path and query parameters, and the
//! client's address. Every rejection becomes an [`ApiError`] with the standard body.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use berth_core::{AppError, AuthFailure, BasicAuth, Credential, Principal};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, OAuthError};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "berth_session";

/// A JSON body; malformed input is a 4xx with a message saying what is wrong.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        _ => "invalid_request",
    };
    let status = if status == StatusCode::UNPROCESSABLE_ENTITY {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    ApiError::new(status, code, r.body_text())
}

/// A path parameter; a malformed id cannot name anything, so it is "not found".
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such resource (ids are UUIDs)",
            )),
            Err(e) => Err(ApiError::new(e.status(), "invalid_request", e.body_text())),
        }
    }
}

pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                e.body_text(),
            )),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                e.body_text(),
            )),
        }
    }
}

/// The authenticated caller. Rejects with 401 (no or bad credentials) or 403 (CSRF).
pub struct Auth(pub Principal);

/// The caller if they presented valid credentials; never rejects for missing ones.
pub struct MaybeAuth(pub Option<Principal>);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let credential =
            credential(parts)?.ok_or(AppError::Unauthenticated(AuthFailure::Missing))?;
        if matches!(credential, Credential::Session(_)) {
            check_same_origin(parts, state)?;
        }
        Ok(Auth(state.app.authenticate(&credential).await?))
    }
}

impl FromRequestParts<AppState> for MaybeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(credential) = credential(parts)? else {
            return Ok(MaybeAuth(None));
        };
        let is_session = matches!(credential, Credential::Session(_));
        if is_session {
            check_same_origin(parts, state)?;
        }
        match state.app.authenticate(&credential).await {
            Ok(p) => Ok(MaybeAuth(Some(p))),
            // A stale cookie must not stop anyone from signing in or out.
            Err(AppError::Unauthenticated(_)) if is_session => Ok(MaybeAuth(None)),
            Err(e) => Err(e.into()),
        }
    }
}

/// The credential in the `Authorization` header, else the session cookie.
fn credential(parts: &Parts) -> Result<Option<Credential>, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| AppError::Unauthenticated(AuthFailure::Malformed))?
            .trim();
        let credential = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
                Credential::Bearer(rest.trim().to_owned())
            }
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("api-key") => {
                Credential::ApiKey(rest.trim().to_owned())
            }
            // Some clients send the bare token, as BigID's API expects.
            None if !value.is_empty() => Credential::Bearer(value.to_owned()),
            _ => return Err(AppError::Unauthenticated(AuthFailure::Malformed).into()),
        };
        return Ok(Some(credential));
    }
    Ok(session_cookie(&parts.headers).map(Credential::Session))
}

pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie `name`, if the request carries a non-empty one.
pub(crate) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// CSRF defence for cookie-authenticated requests that change state: the browser-supplied
/// `Origin` (or, failing that, `Referer`) must be this server's own origin.
pub(crate) fn check_same_origin(parts: &Parts, state: &AppState) -> Result<(), ApiError> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let claimed = parts
        .headers
        .get(header::ORIGIN)
        .or_else(|| parts.headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    let same = claimed.is_some_and(|url| {
        let origin = url.origin();
        origin == state.public_url.origin()
            || host.is_some_and(|h| {
                url.host_str()
                    .map(|uh| match url.port() {
                        Some(p) => format!("{uh}:{p}"),
                        None => uh.to_owned(),
                    })
                    .as_deref()
                    == Some(h)
            })
    });
    if same {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cookie-authenticated requests that change state must come from this server's origin (Origin header)",
        ))
    }
}

/// A form body of the `/oauth` endpoints; malformed input is an RFC 6749 `invalid_request`.
pub struct OAuthForm<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OAuthForm<T> {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(OAuthForm(v)),
            Err(r) => {
                let status = if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE
                    || r.status() == StatusCode::PAYLOAD_TOO_LARGE
                {
                    r.status()
                } else {
                    StatusCode::BAD_REQUEST
                };
                Err(OAuthError(ApiError::new(
                    status,
                    "invalid_request",
                    r.body_text(),
                )))
            }
        }
    }
}

/// Client credentials sent as HTTP Basic (RFC 6749 §2.3.1), if any.
pub struct ClientBasic(pub Option<BasicAuth>);

impl<S: Send + Sync> FromRequestParts<S> for ClientBasic {
    type Rejection = OAuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Ok(ClientBasic(None));
        };
        let bad = || {
            OAuthError::from(AppError::oauth(
                "invalid_client",
                "malformed HTTP Basic client credentials",
            ))
        };
        let value = value.to_str().map_err(|_| bad())?;
        let Some((scheme, encoded)) = value.split_once(' ') else {
            return Err(bad());
        };
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(bad());
        }
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| bad())?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
        let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
        Ok(ClientBasic(Some(BasicAuth {
            client_id: percent_decode(id).ok_or_else(bad)?,
            client_secret: percent_decode(secret).ok_or_else(bad)?,
        })))
    }
}

/// RFC 6749 has clients form-encode their id and secret before HTTP Basic encoding.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}
