//! A signed-in session with the Berth API for the resource commands (`instances`, `jobs`): the
//! stored credentials, an access token that is refreshed when it nears expiry (a `--wait` can
//! outlive one), JSON requests relative to the server, and paging through list endpoints.

use std::cell::RefCell;

use anyhow::Context;
use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::http::{HttpClient, HttpError};
use super::store::{Credentials, Store};
use super::token::{self, SESSION_ENDED};

/// The most a list endpoint returns per page.
const PAGE_LIMIT: usize = 500;

pub struct Api {
    store: Store,
    client: HttpClient,
    credentials: RefCell<Credentials>,
}

impl Api {
    /// Loads (and if needed refreshes) the credentials `berth login` stored.
    pub async fn connect() -> anyhow::Result<Api> {
        let store = Store::from_env()?;
        let credentials = token::valid_credentials(&store).await?;
        let client = HttpClient::new(credentials.ca_cert.as_deref())?;
        Ok(Api {
            store,
            client,
            credentials: RefCell::new(credentials),
        })
    }

    pub fn server(&self) -> String {
        self.credentials.borrow().server.clone()
    }

    pub fn config_dir(&self) -> &std::path::Path {
        self.store.dir()
    }

    /// An access token good for at least another minute.
    async fn access_token(&self) -> anyhow::Result<String> {
        let expires_at = self.credentials.borrow().expires_at;
        if token::needs_refresh(expires_at, Utc::now()) {
            let fresh = token::valid_credentials(&self.store).await?;
            *self.credentials.borrow_mut() = fresh;
        }
        Ok(self.credentials.borrow().access_token.clone())
    }

    /// `path` (with any query) relative to the server, e.g. `/api/v1/instances?name=db1`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.credentials.borrow().server)
    }

    /// A JSON request. A failure keeps the [`HttpError`] as its root cause, so callers can
    /// look at the status with [`status_of`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<T> {
        let token = self.access_token().await?;
        let url = self.url(path);
        self.client
            .request_json(method, &url, Some(&token), body, headers)
            .await
            .map_err(explain)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(Method::GET, path, None, &[]).await
    }

    pub async fn get_bytes(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        let token = self.access_token().await?;
        let url = self.url(path);
        self.client
            .get_bytes(&url, Some(&token))
            .await
            .map_err(explain)
    }

    /// Every item of a paginated list (`{count, next, previous, results}`), following
    /// `limit`/`offset` rather than the server's `next` links, which name its public URL.
    pub async fn get_all(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            let mut q: Vec<(&str, String)> = query.to_vec();
            q.push(("limit", PAGE_LIMIT.to_string()));
            q.push(("offset", items.len().to_string()));
            let page: Value = self.get(&with_query(path, &q)).await?;
            let results = page
                .get("results")
                .and_then(Value::as_array)
                .with_context(|| {
                    format!("unexpected answer from {}: no results", self.url(path))
                })?;
            let count = page.get("count").and_then(Value::as_u64).unwrap_or(0) as usize;
            let got = results.len();
            items.extend(results.iter().cloned());
            if got == 0 || items.len() >= count {
                return Ok(items);
            }
        }
    }
}

/// `path?k=v&…`, form-encoded; no `?` when there is nothing to add.
pub fn with_query(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in query {
        s.append_pair(k, v);
    }
    format!("{path}?{}", s.finish())
}

/// The HTTP status of a failed call, when the server answered.
pub fn status_of(e: &anyhow::Error) -> Option<StatusCode> {
    e.downcast_ref::<HttpError>().and_then(HttpError::status)
}

/// Adds what to do to the errors a person can act on.
fn explain(e: HttpError) -> anyhow::Error {
    match e.status() {
        Some(StatusCode::UNAUTHORIZED) => anyhow::Error::new(e).context(format!(
            "the server no longer accepts your access token (revoked?); {SESSION_ENDED}"
        )),
        Some(StatusCode::FORBIDDEN) => anyhow::Error::new(e)
            .context("not allowed: your role or your token's scopes do not permit this"),
        _ => anyhow::Error::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_encoded() {
        assert_eq!(with_query("/api/v1/jobs", &[]), "/api/v1/jobs");
        assert_eq!(
            with_query(
                "/api/v1/instances",
                &[("name", "a b&c".into()), ("limit", "500".into())]
            ),
            "/api/v1/instances?name=a+b%26c&limit=500"
        );
    }

    #[test]
    fn status_survives_context() {
        let e = explain(HttpError::Api {
            url: "u".into(),
            status: StatusCode::UNAUTHORIZED,
            error: "unauthorized".into(),
            message: "token expired".into(),
            request_id: None,
        });
        assert_eq!(status_of(&e), Some(StatusCode::UNAUTHORIZED));
        assert!(format!("{e:#}").contains("berth login"), "{e:#}");
        assert_eq!(status_of(&anyhow::anyhow!("other")), None);
    }
}
