//! A signed-in session with the Berth API for the resource commands (`instances`, `jobs`): the
//! stored credentials and an access token that is refreshed when it nears expiry (a `--wait` can
//! outlive one). It hands out a typed [`Berth`] client with a fresh token for each request (or
//! each short run of them), and turns the errors a person can act on into advice.

use std::cell::RefCell;

use berth_client::{Berth, Credential};
use chrono::Utc;
use reqwest::StatusCode;

use super::http::{HttpClient, HttpError};
use super::store::{Credentials, Store};
use super::token::{self, SESSION_ENDED};

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

    /// A client of the server with an access token good for at least another minute. Its
    /// errors go through [`explain`].
    pub async fn berth(&self) -> anyhow::Result<Berth> {
        let token = self.access_token().await?;
        Ok(Berth::new(
            self.client.clone(),
            self.server(),
            Credential::Bearer(token),
        ))
    }
}

/// Adds what to do to the errors a person can act on. A failure keeps the [`HttpError`] as
/// its root cause, so callers can still look at it (its status, whether it is transient).
pub fn explain(e: HttpError) -> anyhow::Error {
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
    fn status_survives_context() {
        let e = explain(HttpError::Api {
            url: "u".into(),
            status: StatusCode::UNAUTHORIZED,
            error: "unauthorized".into(),
            message: "token expired".into(),
            request_id: None,
        });
        // The status stays readable under the advice (`wait::is_transient` relies on it).
        let status = e.downcast_ref::<HttpError>().and_then(HttpError::status);
        assert_eq!(status, Some(StatusCode::UNAUTHORIZED));
        assert!(format!("{e:#}").contains("berth login"), "{e:#}");
    }
}
