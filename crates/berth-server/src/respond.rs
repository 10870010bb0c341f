//! Response headers several routes share: `Cache-Control: no-store` on every response that
//! carries a secret, a token or a sign-in page, so no cache between client and server keeps it.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

/// `resp`, marked never to be stored by a cache.
pub(crate) fn no_store(resp: impl IntoResponse) -> Response {
    let mut resp = resp.into_response();
    set_no_store(resp.headers_mut());
    resp
}

/// Marks the response these headers belong to never to be stored by a cache.
pub(crate) fn set_no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
