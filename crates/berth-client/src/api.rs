//! [`Berth`]: a server address, a credential and the transport; every API operation is a method
//! on it (in `auth`, `tenancy` and `fleet`). Requests and answers are `berth-types` values, and
//! failures are [`HttpError`]s that keep the server's status and error body.

use std::future::Future;

use berth_types::{Page, PageParams};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::http::{HttpClient, HttpError};

/// How requests authenticate.
#[derive(Clone)]
pub enum Credential {
    /// No credential (sign-in, discovery and health endpoints).
    None,
    /// An access token (JWT), a user token or a client-credentials token: `Authorization: Bearer`.
    Bearer(String),
    /// An API key: `Authorization: Api-Key`.
    ApiKey(String),
}

impl std::fmt::Debug for Credential {
    // Never print a secret, not even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::None => "None",
            Credential::Bearer(_) => "Bearer(…)",
            Credential::ApiKey(_) => "ApiKey(…)",
        })
    }
}

/// A client of one Berth server, acting with one credential.
#[derive(Clone)]
pub struct Berth {
    http: HttpClient,
    server: String,
    credential: Credential,
}

impl Berth {
    /// `server` is the base URL (`http://127.0.0.1:8080`), without a trailing slash.
    pub fn new(http: HttpClient, server: impl Into<String>, credential: Credential) -> Berth {
        Berth {
            http,
            server: server.into().trim_end_matches('/').to_owned(),
            credential,
        }
    }

    /// The same server and transport with another credential.
    pub fn with_credential(&self, credential: Credential) -> Berth {
        Berth {
            credential,
            ..self.clone()
        }
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `path` (with any query) relative to the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server)
    }

    /// A request with a JSON body (or none), answered with JSON (`()` for an empty answer).
    /// The typed methods are built on this; it stays public for routes they do not cover yet.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> Result<T, HttpError> {
        let url = self.url(path);
        let api_key;
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        let bearer = match &self.credential {
            Credential::None => None,
            Credential::Bearer(token) => Some(token.as_str()),
            Credential::ApiKey(key) => {
                api_key = format!("Api-Key {key}");
                all.push(("authorization", &api_key));
                None
            }
        };
        self.http
            .request_json(method, &url, bearer, body, &all)
            .await
    }

    pub(crate) async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, HttpError> {
        self.request(Method::GET, path, None::<&()>, &[]).await
    }

    pub(crate) async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &impl Serialize,
    ) -> Result<T, HttpError> {
        self.get(&with_query(path, query)).await
    }

    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &(impl Serialize + ?Sized),
    ) -> Result<T, HttpError> {
        self.request(method, path, Some(body), &[]).await
    }

    /// A request without a body whose answer is ignored beyond its status (`204`, say).
    pub(crate) async fn call(&self, method: Method, path: &str) -> Result<(), HttpError> {
        self.request::<serde_json::Value>(method, path, None::<&()>, &[])
            .await
            .map(drop)
    }

    /// A request without a body, answered with JSON.
    pub(crate) async fn act<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T, HttpError> {
        self.request(method, path, None::<&()>, &[]).await
    }

    /// A GET answered with bytes (the CA certificate, say).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>, HttpError> {
        let bearer = match &self.credential {
            Credential::Bearer(token) => Some(token.as_str()),
            _ => None,
        };
        self.http.get_bytes(&self.url(path), bearer).await
    }
}

/// The most a list endpoint returns per page.
pub const PAGE_LIMIT: i64 = 500;

/// An answer both as the JSON document the server sent and as this client reads it: `json` is
/// what to show or pass on (with any field a newer server added, which re-serialising `value`
/// would drop), `value` is what to decide with. The `*_raw` methods answer with it.
#[derive(Debug, Clone)]
pub struct Raw<T> {
    pub json: serde_json::Value,
    pub value: T,
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Raw<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(d)?;
        let value = T::deserialize(&json).map_err(serde::de::Error::custom)?;
        Ok(Raw { json, value })
    }
}

impl<T> std::ops::Deref for Raw<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

/// Every item of a paginated list: `fetch` is asked for one page after another (`limit`
/// [`PAGE_LIMIT`], `offset` the items so far) until it has `count` items or a page is empty.
/// Paging by offset rather than by the `next` links, which name the server's public URL.
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Vec<T>, HttpError>
where
    F: FnMut(PageParams) -> Fut,
    Fut: Future<Output = Result<Page<T>, HttpError>>,
{
    let mut items = Vec::new();
    loop {
        let page = fetch(PageParams {
            limit: Some(PAGE_LIMIT),
            offset: Some(items.len() as i64),
        })
        .await?;
        let got = page.results.len();
        items.extend(page.results);
        if got == 0 || items.len() as i64 >= page.count {
            return Ok(items);
        }
    }
}

/// `path?k=v&…` from a query struct: its fields serialised as JSON scalars, form-encoded; unset
/// (null) fields are left out, and so is the `?` when nothing is set.
pub fn with_query(path: &str, query: &impl Serialize) -> String {
    let value = serde_json::to_value(query).unwrap_or(serde_json::Value::Null);
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    if let serde_json::Value::Object(fields) = value {
        for (k, v) in fields {
            let v = match v {
                serde_json::Value::Null => continue,
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            s.append_pair(&k, &v);
            any = true;
        }
    }
    if any {
        format!("{path}?{}", s.finish())
    } else {
        path.to_owned()
    }
}

/// A path segment, percent-encoded (client ids and names can hold anything).
pub(crate) fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Q {
        name: Option<String>,
        limit: Option<i64>,
        #[serde(rename = "type")]
        kind: Option<String>,
    }

    #[test]
    fn queries_leave_out_unset_fields_and_encode_values() {
        let none = Q {
            name: None,
            limit: None,
            kind: None,
        };
        assert_eq!(with_query("/api/v1/jobs", &none), "/api/v1/jobs");
        let some = Q {
            name: Some("a b&c".into()),
            limit: Some(500),
            kind: Some("create".into()),
        };
        assert_eq!(
            with_query("/api/v1/instances", &some),
            "/api/v1/instances?limit=500&name=a+b%26c&type=create"
        );
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(seg("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn raw_answers_keep_the_whole_document() {
        #[derive(Deserialize)]
        struct Known {
            id: i64,
        }
        let raw: Raw<Known> = serde_json::from_str(r#"{"id": 7, "added_later": [1]}"#).unwrap();
        assert_eq!(raw.id, 7);
        assert_eq!(raw.json["added_later"][0], 1);
        assert!(serde_json::from_str::<Raw<Known>>(r#"{"id": "x"}"#).is_err());
    }

    #[test]
    fn all_pages_follows_offsets_until_count() {
        let answer = |p: PageParams| {
            let offset = p.offset.unwrap() as usize;
            assert_eq!(p.limit, Some(PAGE_LIMIT));
            // Two items per page whatever the limit, five in all.
            let results: Vec<usize> = (offset..(offset + 2).min(5)).collect();
            std::future::ready(Ok(Page {
                count: 5,
                next: None,
                previous: None,
                results,
            }))
        };
        let all = block_on_ready(all_pages(answer)).unwrap();
        assert_eq!(all, [0, 1, 2, 3, 4]);
    }

    /// A tiny executor for futures that never wait.
    fn block_on_ready<F: Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, Waker};
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the future waited"),
        }
    }

    #[test]
    fn credentials_never_print() {
        let c = Credential::ApiKey("berth_ak_secret".into());
        assert!(!format!("{c:?}").contains("secret"));
    }
}
