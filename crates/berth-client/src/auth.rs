//! Signing in and credentials: token pairs, who am I, API keys, API clients, user tokens, signing
//! keys and the audit log.

use berth_types::{
    ApiKey, AuditEvent, AuditQuery, AuthCheck, AuthProvider, Client, CreateApiKey, CreateClient,
    CreateUserToken, CreatedApiKey, CreatedClient, CreatedUserToken, Page, PageParams,
    RefreshRequest, TokenRequest, TokenResponse, UserToken,
};
use reqwest::Method;
use uuid::Uuid;

use crate::api::{seg, Raw};
use crate::{Berth, HttpError};

/// `POST /api/v1/auth/keys/rotate`.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RotatedKey {
    pub kid: String,
}

impl Berth {
    /// `GET /api/v1/auth/provider`: how a CLI signs in to this server.
    pub async fn auth_provider(&self) -> Result<AuthProvider, HttpError> {
        self.get("/api/v1/auth/provider").await
    }

    /// `POST /api/v1/auth/token`: an access and refresh token for a username and password.
    pub async fn token(&self, username: &str, password: &str) -> Result<TokenResponse, HttpError> {
        let body = TokenRequest {
            username: username.to_owned(),
            password: password.to_owned(),
        };
        self.send(Method::POST, "/api/v1/auth/token", &body).await
    }

    /// `POST /api/v1/auth/token/refresh`: a new pair for a refresh token (which is used up).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, HttpError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        self.send(Method::POST, "/api/v1/auth/token/refresh", &body)
            .await
    }

    /// `GET /api/v1/auth/check`: the user and credential behind this client.
    pub async fn check(&self) -> Result<AuthCheck, HttpError> {
        self.get("/api/v1/auth/check").await
    }

    pub async fn check_raw(&self) -> Result<Raw<AuthCheck>, HttpError> {
        self.get("/api/v1/auth/check").await
    }

    /// `POST /api/v1/auth/logout`: ends this credential's session or token family.
    pub async fn logout(&self) -> Result<(), HttpError> {
        self.call(Method::POST, "/api/v1/auth/logout").await
    }

    pub async fn create_api_key(&self, req: &CreateApiKey) -> Result<CreatedApiKey, HttpError> {
        self.send(Method::POST, "/api/v1/auth/api-keys", req).await
    }

    pub async fn list_api_keys(&self, page: PageParams) -> Result<Page<ApiKey>, HttpError> {
        self.get_query("/api/v1/auth/api-keys", &page).await
    }

    pub async fn revoke_api_key(&self, id: Uuid) -> Result<(), HttpError> {
        self.call(Method::DELETE, &format!("/api/v1/auth/api-keys/{id}"))
            .await
    }

    pub async fn create_client(&self, req: &CreateClient) -> Result<CreatedClient, HttpError> {
        self.send(Method::POST, "/api/v1/auth/clients", req).await
    }

    pub async fn list_clients(&self, page: PageParams) -> Result<Page<Client>, HttpError> {
        self.get_query("/api/v1/auth/clients", &page).await
    }

    pub async fn revoke_client(&self, client_id: &str) -> Result<(), HttpError> {
        let path = format!("/api/v1/auth/clients/{}", seg(client_id));
        self.call(Method::DELETE, &path).await
    }

    pub async fn create_user_token(
        &self,
        user: Uuid,
        req: &CreateUserToken,
    ) -> Result<CreatedUserToken, HttpError> {
        self.send(Method::POST, &format!("/api/v1/users/{user}/tokens"), req)
            .await
    }

    pub async fn list_user_tokens(
        &self,
        user: Uuid,
        page: PageParams,
    ) -> Result<Page<UserToken>, HttpError> {
        self.get_query(&format!("/api/v1/users/{user}/tokens"), &page)
            .await
    }

    pub async fn revoke_user_token(&self, user: Uuid, token: Uuid) -> Result<(), HttpError> {
        let path = format!("/api/v1/users/{user}/tokens/{token}");
        self.call(Method::DELETE, &path).await
    }

    /// `POST /api/v1/auth/keys/rotate` (platform admins).
    pub async fn rotate_signing_key(&self) -> Result<RotatedKey, HttpError> {
        self.act(Method::POST, "/api/v1/auth/keys/rotate").await
    }

    pub async fn list_audit_events(
        &self,
        query: &AuditQuery,
    ) -> Result<Page<AuditEvent>, HttpError> {
        self.get_query("/api/v1/audit-events", query).await
    }
}
