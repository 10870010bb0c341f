//! The transport: JSON requests to Berth's API with its error bodies, Berth's bootstrap endpoint,
//! RFC 8414 discovery, and the OAuth endpoints a client uses (RFC 8628 device authorization,
//! RFC 6749 token, RFC 7009 revocation).
//! Errors keep what a caller needs to decide (an OAuth error code, "unreachable", a rate limit)
//! and render as messages a person can act on.

use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, RETRY_AFTER};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// Why a request did not produce the expected answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot reach the server at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// An RFC 6749 error body (`{"error", "error_description"}`).
    #[error("{url} refused the request: {error}{}", describe_opt(.description))]
    OAuth {
        url: String,
        status: StatusCode,
        error: String,
        description: Option<String>,
    },
    /// A Berth API error body (`{"error", "message", "request_id"}`).
    #[error("{url} answered HTTP {status}: {message}{}", request_id_text(.request_id))]
    Api {
        url: String,
        status: StatusCode,
        error: String,
        message: String,
        request_id: Option<String>,
    },
    #[error("{url} is rate limiting requests{}", retry_after_text(.retry_after))]
    RateLimited {
        url: String,
        retry_after: Option<Duration>,
    },
    /// The client could not be set up (an unreadable CA certificate, say).
    #[error("{0}")]
    Setup(String),
    #[error("unexpected response from {url} (HTTP {status}): {detail}")]
    Unexpected {
        url: String,
        status: StatusCode,
        detail: String,
    },
}

fn describe_opt(d: &Option<String>) -> String {
    match d {
        Some(d) if !d.is_empty() => format!(" ({d})"),
        _ => String::new(),
    }
}

fn request_id_text(id: &Option<String>) -> String {
    match id {
        Some(id) if !id.is_empty() => format!(" (request id {id})"),
        _ => String::new(),
    }
}

fn retry_after_text(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!("; retry in {} s", d.as_secs()),
        None => String::new(),
    }
}

impl HttpError {
    /// The OAuth error code, when the server answered with one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            HttpError::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered at all.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Unreachable { .. } | HttpError::Setup(_) => None,
            HttpError::OAuth { status, .. }
            | HttpError::Api { status, .. }
            | HttpError::Unexpected { status, .. } => Some(*status),
            HttpError::RateLimited { .. } => Some(StatusCode::TOO_MANY_REQUESTS),
        }
    }

    /// Worth retrying later: the server could not be reached or failed on its side.
    pub fn is_transient(&self) -> bool {
        match self {
            HttpError::Unreachable { .. } => true,
            HttpError::Unexpected { status, .. } => status.is_server_error(),
            _ => false,
        }
    }
}

/// The parts of the RFC 8414 metadata the CLI uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// RFC 8628 §3.2.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    #[serde(default)]
    pub interval: Option<u64>,
}

/// RFC 6749 §5.1.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// A client secret and the id it belongs to, sent as HTTP Basic (RFC 6749 §2.3.1).
#[derive(Clone, Copy)]
pub struct ClientAuth<'a> {
    pub id: &'a str,
    pub secret: &'a str,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
}

impl HttpClient {
    /// `ca_cert`: an extra PEM root certificate, for servers whose certificate a private CA
    /// (such as Berth's own) signed.
    pub fn new(ca_cert: Option<&Path>) -> Result<HttpClient, HttpError> {
        let setup = |what: &str, e: &dyn std::fmt::Display| {
            HttpError::Setup(format!(
                "{what} {}: {e}",
                ca_cert.map_or(String::new(), |p| p.display().to_string())
            ))
        };
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("berth-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            // Never carry a form with a device code or a client secret to somewhere else.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = ca_cert {
            let pem = std::fs::read(path).map_err(|e| setup("reading the CA certificate", &e))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup("parsing the CA certificate", &e))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        Ok(HttpClient {
            inner: builder
                .build()
                .map_err(|e| HttpError::Setup(format!("setting up the HTTP client: {e}")))?,
        })
    }

    /// RFC 8414 §3: for an issuer with a path the well-known segment goes before the path; the
    /// OpenID-style suffix is tried next for servers that publish it there instead.
    pub async fn metadata(&self, issuer: &str) -> Result<Metadata, HttpError> {
        let issuer = issuer.trim_end_matches('/');
        let mut candidates = Vec::new();
        if let Ok(url) = url::Url::parse(issuer) {
            let path = url.path().trim_end_matches('/');
            if !path.is_empty() {
                let mut inserted = url.clone();
                inserted.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
                candidates.push(inserted.to_string());
            }
        }
        candidates.push(format!("{issuer}/.well-known/oauth-authorization-server"));
        let mut last = None;
        for url in candidates {
            match self.get_json::<Metadata>(&url, None).await {
                Ok(m) => {
                    // RFC 8414 §3.3: metadata for another issuer must not be used.
                    if m.issuer.trim_end_matches('/') != issuer {
                        return Err(HttpError::Unexpected {
                            detail: format!(
                                "the authorization server metadata is for issuer {}, not {issuer}",
                                m.issuer
                            ),
                            url,
                            status: StatusCode::OK,
                        });
                    }
                    return Ok(m);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one candidate"))
    }

    pub async fn device_authorization(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Result<DeviceAuthorization, HttpError> {
        let request = self.inner.post(endpoint).form(form);
        self.oauth_json(endpoint, request).await
    }

    pub async fn token(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
        auth: Option<ClientAuth<'_>>,
    ) -> Result<TokenResponse, HttpError> {
        let mut request = self.inner.post(endpoint).form(form);
        if let Some(a) = auth {
            request = basic_auth(request, a);
        }
        let token: TokenResponse = self.oauth_json(endpoint, request).await?;
        if !token.token_type.eq_ignore_ascii_case("bearer") {
            return Err(HttpError::Unexpected {
                url: endpoint.to_owned(),
                status: StatusCode::OK,
                detail: format!("token type {:?}, expected Bearer", token.token_type),
            });
        }
        Ok(token)
    }

    /// RFC 7009: the server answers 200 whether or not it knew the token.
    pub async fn revoke(
        &self,
        endpoint: &str,
        form: &[(&str, &str)],
        auth: Option<ClientAuth<'_>>,
    ) -> Result<(), HttpError> {
        let mut request = self.inner.post(endpoint).form(form);
        if let Some(a) = auth {
            request = basic_auth(request, a);
        }
        let (status, headers, body) = self.send(endpoint, request).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(oauth_error(endpoint, status, &headers, &body))
        }
    }

    /// A GET answered with JSON; `bearer` adds `Authorization: Bearer …`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, HttpError> {
        self.api_json(self.inner.get(url), url, bearer).await
    }

    /// A POST without a body, answered with JSON.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, HttpError> {
        self.api_json(self.inner.post(url), url, bearer).await
    }

    /// A Berth API request: `body` goes as JSON, `headers` are added as given, and the answer
    /// is parsed as JSON (an empty body, as with 204, parses as `null`). Error answers become
    /// [`HttpError::Api`] from the `{"error", "message", "request_id"}` body.
    pub async fn request_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        bearer: Option<&str>,
        body: Option<&(impl serde::Serialize + ?Sized)>,
        headers: &[(&str, &str)],
    ) -> Result<T, HttpError> {
        let mut request = self.inner.request(method, url);
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.api_json(request, url, bearer).await
    }

    /// A GET answered with something other than JSON (a PEM file, say).
    pub async fn get_bytes(&self, url: &str, bearer: Option<&str>) -> Result<Vec<u8>, HttpError> {
        let mut request = self.inner.get(url);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let (status, headers, body) = self.send_raw(url, request).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(api_error(url, status, &headers, &body))
        }
    }

    async fn api_json<T: DeserializeOwned>(
        &self,
        mut request: reqwest::RequestBuilder,
        url: &str,
        bearer: Option<&str>,
    ) -> Result<T, HttpError> {
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let (status, headers, body) = self.send(url, request).await?;
        if status.is_success() {
            let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
                b"null"
            } else {
                &body
            };
            return parse(url, status, body);
        }
        Err(api_error(url, status, &headers, &body))
    }

    async fn oauth_json<T: DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, HttpError> {
        let (status, headers, body) = self.send(url, request).await?;
        if status.is_success() {
            parse(url, status, &body)
        } else {
            Err(oauth_error(url, status, &headers, &body))
        }
    }

    async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), HttpError> {
        self.send_raw(url, request.header(ACCEPT, "application/json"))
            .await
    }

    async fn send_raw(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), HttpError> {
        let unreachable = |source| HttpError::Unreachable {
            url: url.to_owned(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(unreachable)?;
        Ok((status, headers, body.to_vec()))
    }
}

/// RFC 6749 §2.3.1: id and secret are form-encoded before they go into the Basic header.
fn basic_auth(request: reqwest::RequestBuilder, auth: ClientAuth<'_>) -> reqwest::RequestBuilder {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    request.basic_auth(encode(auth.id), Some(encode(auth.secret)))
}

fn parse<T: DeserializeOwned>(url: &str, status: StatusCode, body: &[u8]) -> Result<T, HttpError> {
    serde_json::from_slice(body).map_err(|e| HttpError::Unexpected {
        url: url.to_owned(),
        status,
        detail: format!("not the expected JSON ({e})"),
    })
}

/// A Berth API error answer: `{"error", "message", "request_id"}`, or something unexpected.
fn api_error(url: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> HttpError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return rate_limited(url, headers);
    }
    #[derive(Deserialize)]
    struct ApiErrorBody {
        error: String,
        message: String,
        #[serde(default)]
        request_id: Option<String>,
    }
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(e) => HttpError::Api {
            url: url.to_owned(),
            status,
            error: e.error,
            message: e.message,
            request_id: e.request_id,
        },
        Err(_) => unexpected(url, status, headers, body),
    }
}

fn oauth_error(url: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> HttpError {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return rate_limited(url, headers);
    }
    #[derive(Deserialize)]
    struct OAuthErrorBody {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match serde_json::from_slice::<OAuthErrorBody>(body) {
        Ok(e) if status.is_client_error() => HttpError::OAuth {
            url: url.to_owned(),
            status,
            error: e.error,
            description: e.error_description,
        },
        _ => unexpected(url, status, headers, body),
    }
}

fn rate_limited(url: &str, headers: &HeaderMap) -> HttpError {
    let retry_after = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    HttpError::RateLimited {
        url: url.to_owned(),
        retry_after,
    }
}

fn unexpected(url: &str, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> HttpError {
    let detail = if status.is_redirection() {
        match headers
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
        {
            Some(to) => format!("redirected to {to}; use that address as --server"),
            None => "a redirect".to_owned(),
        }
    } else {
        snippet(body)
    };
    HttpError::Unexpected {
        url: url.to_owned(),
        status,
        detail,
    }
}

/// The start of a body, printable, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        "empty body".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_are_recognised() {
        let e = oauth_error(
            "http://x/oauth/token",
            StatusCode::BAD_REQUEST,
            &HeaderMap::new(),
            br#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#,
        );
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        assert!(!e.is_transient());
        assert!(e.to_string().contains("refresh token revoked"));
    }

    #[test]
    fn api_errors_carry_the_message_and_request_id() {
        let e = api_error(
            "http://x/api/v1/instances/1",
            StatusCode::CONFLICT,
            &HeaderMap::new(),
            br#"{"error":"conflict","message":"deletion protection is on","request_id":"r-1"}"#,
        );
        assert!(matches!(&e, HttpError::Api { error, .. } if error == "conflict"));
        assert_eq!(e.status(), Some(StatusCode::CONFLICT));
        assert!(!e.is_transient());
        let text = e.to_string();
        assert!(text.contains("deletion protection is on"), "{text}");
        assert!(text.contains("(request id r-1)"), "{text}");

        let e = api_error("u", StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"oops");
        assert!(e.is_transient());
        assert!(matches!(e, HttpError::Unexpected { .. }));
    }

    #[test]
    fn server_errors_are_transient_and_rate_limits_carry_retry_after() {
        let e = oauth_error(
            "http://x/oauth/token",
            StatusCode::BAD_GATEWAY,
            &HeaderMap::new(),
            b"<html>bad gateway</html>",
        );
        assert!(e.is_transient());
        assert!(e.to_string().contains("bad gateway"), "{e}");

        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        let e = oauth_error("u", StatusCode::TOO_MANY_REQUESTS, &headers, b"{}");
        assert!(
            matches!(e, HttpError::RateLimited { retry_after: Some(d), .. } if d.as_secs() == 7)
        );
    }
}
