//! The OAuth 2.0 token endpoint (RFC 6749) and its companions: client authentication, the
//! `client_credentials` and `refresh_token` grants, introspection (RFC 7662), revocation
//! (RFC 7009) and the CLI bootstrap document. The device grant lives in `device`, token
//! exchange in `exchange`.

use std::sync::Arc;

use berth_auth::jwt::{self, AccessClaims};
use berth_auth::secret::{self, SecretKind};
use berth_store::credentials::clients::ClientRow;
use berth_types::{
    AuthMethod, AuthProvider, AuthorizationServerMetadata, Introspection, OAuthTokenResponse,
    Permission, TokenActionForm, TokenForm,
};
use uuid::Uuid;

use crate::audit::Event;
use crate::auth::clients::{
    CLI_CLIENT_ID, GRANT_CLIENT_CREDENTIALS, GRANT_DEVICE, GRANT_EXCHANGE, GRANT_REFRESH,
};
use crate::{App, AppError};

/// Client credentials from an `Authorization: Basic` header, already decoded.
#[derive(Debug, Clone)]
pub struct BasicAuth {
    pub client_id: String,
    pub client_secret: String,
}

/// Scopes OpenID Connect clients habitually ask for; Berth accepts and ignores them.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

fn invalid_client(why: &str) -> AppError {
    AppError::oauth("invalid_client", why)
}

impl App {
    pub async fn oauth_token(
        &self,
        form: &TokenForm,
        basic: Option<&BasicAuth>,
    ) -> Result<OAuthTokenResponse, AppError> {
        let grant_type = form
            .grant_type
            .as_deref()
            .ok_or_else(|| AppError::oauth("invalid_request", "grant_type is required"))?;
        if ![
            GRANT_CLIENT_CREDENTIALS,
            GRANT_REFRESH,
            GRANT_DEVICE,
            GRANT_EXCHANGE,
        ]
        .contains(&grant_type)
        {
            return Err(AppError::oauth(
                "unsupported_grant_type",
                format!("unsupported grant_type `{grant_type}`"),
            ));
        }
        let confidential_only = grant_type == GRANT_CLIENT_CREDENTIALS;
        let client = self
            .authenticate_client(
                form.client_id.as_deref(),
                form.client_secret.as_deref(),
                basic,
                confidential_only,
            )
            .await?;
        self.limit_client(&client.client_id)?;
        if !client.grant_types.iter().any(|g| g == grant_type) {
            return Err(AppError::oauth(
                "unauthorized_client",
                format!("this client may not use `{grant_type}`"),
            ));
        }
        let required = |v: &Option<String>, name: &str| {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| AppError::oauth("invalid_request", format!("{name} is required")))
        };
        match grant_type {
            GRANT_CLIENT_CREDENTIALS => {
                self.client_credentials(&client, form.scope.as_deref(), form.audience.as_deref())
                    .await
            }
            GRANT_REFRESH => {
                let token = required(&form.refresh_token, "refresh_token")?;
                let pair = self
                    .rotate_refresh(&token, Some(&client.client_id))
                    .await
                    .map_err(as_invalid_grant)?;
                Ok(pair.into())
            }
            GRANT_DEVICE => {
                let code = required(&form.device_code, "device_code")?;
                Ok(self.device_code_grant(&client, &code).await?.into())
            }
            _ => self.token_exchange(&client, form).await,
        }
    }

    /// Identifies the client by HTTP Basic or by form fields (not both). Confidential clients
    /// must prove their secret; public clients must not send one.
    pub(crate) async fn authenticate_client(
        &self,
        form_id: Option<&str>,
        form_secret: Option<&str>,
        basic: Option<&BasicAuth>,
        confidential_only: bool,
    ) -> Result<Arc<ClientRow>, AppError> {
        self.limit_address()?;
        let result = self
            .check_client(form_id, form_secret, basic, confidential_only)
            .await;
        if let Err(AppError::OAuth {
            error: "invalid_client",
            description,
        }) = &result
        {
            let claimed: Option<String> = basic
                .map(|b| b.client_id.as_str())
                .or(form_id)
                .map(|id| id.chars().take(128).collect());
            self.audit(
                Event::new("auth.client.failed")
                    .client(claimed.as_deref())
                    .details(serde_json::json!({ "reason": description })),
            )
            .await;
        }
        result
    }

    async fn check_client(
        &self,
        form_id: Option<&str>,
        form_secret: Option<&str>,
        basic: Option<&BasicAuth>,
        confidential_only: bool,
    ) -> Result<Arc<ClientRow>, AppError> {
        if basic.is_some() && form_secret.is_some() {
            return Err(AppError::oauth(
                "invalid_request",
                "use one client authentication method, not two",
            ));
        }
        if let (Some(b), Some(id)) = (basic, form_id) {
            if b.client_id != id {
                return Err(AppError::oauth(
                    "invalid_request",
                    "client_id does not match the authenticated client",
                ));
            }
        }
        let (id, secret_given) = match basic {
            Some(b) => (b.client_id.as_str(), Some(b.client_secret.as_str())),
            None => (
                form_id.ok_or_else(|| invalid_client("client authentication is required"))?,
                form_secret,
            ),
        };
        let client = self
            .client_by_id(id)
            .await?
            .ok_or_else(|| invalid_client("unknown client or bad credentials"))?;
        if client.revoked_at.is_some() || client.expires_at.is_some_and(|e| e <= self.now()) {
            return Err(invalid_client("unknown client or bad credentials"));
        }
        match (&client.secret_digest, secret_given) {
            (Some(digest), Some(given)) => {
                let ok = secret::parse(SecretKind::ClientSecret, given)
                    .is_some_and(|d| berth_auth::ct_eq(&d, digest));
                if !ok {
                    return Err(invalid_client("unknown client or bad credentials"));
                }
            }
            (Some(_), None) => {
                return Err(invalid_client(
                    "this client must authenticate with its secret",
                ))
            }
            (None, Some(_)) => return Err(invalid_client("a public client has no secret")),
            (None, None) if confidential_only => {
                return Err(invalid_client("a confidential client is required"))
            }
            (None, None) => {}
        }
        Ok(client)
    }

    async fn client_by_id(&self, client_id: &str) -> Result<Option<Arc<ClientRow>>, AppError> {
        if let Some(c) = self.inner.cache.client(client_id) {
            return Ok(Some(c));
        }
        if client_id.len() > 128 {
            return Ok(None);
        }
        let generation = self.inner.cache.generation();
        Ok(
            berth_store::credentials::clients::find(self.db(), client_id)
                .await?
                .map(|row| self.inner.cache.insert_client(row, generation)),
        )
    }

    /// The token endpoint's per-client and per-address limits.
    /// Per-address limit of every `/oauth` request, applied before the client is even
    /// authenticated, so guessing client secrets is limited too.
    fn limit_address(&self) -> Result<(), AppError> {
        let Some(c) = crate::context::current_client() else {
            return Ok(());
        };
        let rate = self.settings().oauth.token_requests_per_second_per_ip;
        self.inner
            .limiter
            .take(&format!("token-ip:{}", c.ip), rate, rate * 2.0)
            .map_err(too_many)
    }

    /// Per-client limit of the token endpoint.
    fn limit_client(&self, client_id: &str) -> Result<(), AppError> {
        let rate = self.settings().oauth.token_requests_per_second_per_client;
        self.inner
            .limiter
            .take(&format!("token-client:{client_id}"), rate, rate * 2.0)
            .map_err(too_many)
    }

    /// Checks a requested scope against what the client may have: Berth permission names,
    /// plus the usual OpenID Connect scopes, which are accepted and ignored. No scope means
    /// everything allowed.
    pub(crate) fn requested_scopes(
        &self,
        scope: Option<&str>,
        allowed: &[String],
    ) -> Result<Vec<String>, AppError> {
        let mut wanted = Vec::new();
        for s in scope.unwrap_or("").split_whitespace() {
            if OIDC_SCOPES.contains(&s) {
                continue;
            }
            if Permission::parse(s).is_none() {
                return Err(AppError::oauth(
                    "invalid_scope",
                    format!("unknown scope `{s}`"),
                ));
            }
            if !allowed.iter().any(|a| a == s) {
                return Err(AppError::oauth(
                    "invalid_scope",
                    format!("this client may not request `{s}`"),
                ));
            }
            if !wanted.iter().any(|w| w == s) {
                wanted.push(s.to_owned());
            }
        }
        Ok(if wanted.is_empty() {
            allowed.to_vec()
        } else {
            wanted
        })
    }

    /// Berth's own API audience unless another configured one is asked for.
    pub(crate) fn requested_audience(
        &self,
        audience: Option<&str>,
    ) -> Result<Option<String>, AppError> {
        match audience.filter(|a| !a.is_empty()) {
            None => Ok(None),
            Some(a) if a == self.settings().audience => Ok(None),
            Some(a)
                if self
                    .settings()
                    .oauth
                    .additional_audiences
                    .iter()
                    .any(|x| x == a) =>
            {
                Ok(Some(a.to_owned()))
            }
            Some(a) => Err(AppError::oauth(
                "invalid_target",
                format!("unknown audience `{a}`"),
            )),
        }
    }

    /// A token for the client itself, acting as its owner narrowed by its scopes (and project).
    async fn client_credentials(
        &self,
        client: &ClientRow,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> Result<OAuthTokenResponse, AppError> {
        let owner = client
            .owner_id
            .ok_or_else(|| invalid_client("a confidential client is required"))?;
        let scopes = self.requested_scopes(scope, &client.scopes)?;
        let audience = self.requested_audience(audience)?;
        let snapshot = self.user_snapshot(owner).await?;
        if snapshot.user.disabled {
            return Err(invalid_client("the client's owner is disabled"));
        }
        let holdable = crate::authz::holdable(snapshot.user.is_platform_admin);
        let scope = scopes
            .iter()
            .filter(|s| Permission::parse(s).is_some_and(|p| holdable.contains(&p)))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        let now = self.now().timestamp();
        // Never outlive the client that obtained it.
        let ttl = (self.settings().oauth.access_token_ttl_secs as i64).min(
            client
                .expires_at
                .map_or(i64::MAX, |e| (e.timestamp() - now).max(1)),
        );
        let claims = AccessClaims {
            iss: self.settings().issuer.clone(),
            sub: owner.to_string(),
            aud: audience.unwrap_or_else(|| self.settings().audience.clone()),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: Uuid::new_v4().to_string(),
            scope: scope.clone(),
            sid: client.id.to_string(),
            client_id: Some(client.client_id.clone()),
            gty: Some(GRANT_CLIENT_CREDENTIALS.into()),
            project_id: client.project_id.map(|p| p.to_string()),
        };
        let token = self.keyring().sign(&claims);
        let mut event = Event::new("auth.token.issued")
            .user(owner, &snapshot.user.username)
            .client(Some(&client.client_id))
            .target("client", client.id)
            .details(
                serde_json::json!({ "grant_type": GRANT_CLIENT_CREDENTIALS, "jti": claims.jti }),
            );
        if let Some(p) = client.project_id {
            event = event.project(p);
        }
        self.audit(event).await;
        Ok(OAuthTokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: ttl,
            scope,
            refresh_token: None,
            issued_token_type: None,
        })
    }

    /// The authenticated client and the token of an introspection or revocation request.
    async fn token_action<'f>(
        &self,
        form: &'f TokenActionForm,
        basic: Option<&BasicAuth>,
        confidential_only: bool,
    ) -> Result<(Arc<ClientRow>, &'f str), AppError> {
        let client = self
            .authenticate_client(
                form.client_id.as_deref(),
                form.client_secret.as_deref(),
                basic,
                confidential_only,
            )
            .await?;
        let token = form
            .token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| AppError::oauth("invalid_request", "token is required"))?;
        Ok((client, token))
    }

    /// RFC 7662: what a token is, for resource servers holding confidential client credentials.
    pub async fn introspect(
        &self,
        form: &TokenActionForm,
        basic: Option<&BasicAuth>,
    ) -> Result<Introspection, AppError> {
        let (_, token) = self.token_action(form, basic, true).await?;
        if SecretKind::of(token) == Some(SecretKind::RefreshToken) {
            return self.introspect_refresh(token).await;
        }
        if SecretKind::of(token).is_some() {
            return Ok(Introspection::default());
        }
        let Ok(principal) = self.inspect_access_token(token).await else {
            return Ok(Introspection::default());
        };
        let claims: AccessClaims = jwt::claims_unverified(token)
            .map_err(|_| AppError::Internal("verified token does not decode".into()))?;
        Ok(Introspection {
            active: true,
            scope: Some(claims.scope),
            client_id: claims.client_id,
            username: Some(principal.username),
            token_type: Some("Bearer".into()),
            exp: Some(claims.exp),
            iat: Some(claims.iat),
            sub: Some(claims.sub),
            aud: Some(claims.aud),
            iss: Some(claims.iss),
            jti: Some(claims.jti),
        })
    }

    async fn introspect_refresh(&self, token: &str) -> Result<Introspection, AppError> {
        let inactive = Introspection::default();
        let Some(digest) = secret::parse(SecretKind::RefreshToken, token) else {
            return Ok(inactive);
        };
        let Some(row) = berth_store::credentials::grants::find_refresh(self.db(), &digest).await?
        else {
            return Ok(inactive);
        };
        let Some(grant) = berth_store::credentials::grants::get(self.db(), row.grant_id).await?
        else {
            return Ok(inactive);
        };
        let now = self.now();
        if row.rotated_at.is_some()
            || row.expires_at <= now
            || grant.revoked_at.is_some()
            || grant.expires_at <= now
        {
            return Ok(inactive);
        }
        let Some(user) = berth_store::identity::users::get(self.db(), grant.user_id)
            .await?
            .filter(|u| !u.disabled)
        else {
            return Ok(inactive);
        };
        let (client_id, audience) = berth_store::credentials::grants::origin(self.db(), grant.id)
            .await?
            .unwrap_or_default();
        Ok(Introspection {
            active: true,
            scope: Some(grant.scopes.join(" ")),
            client_id,
            username: Some(user.username),
            token_type: Some("refresh_token".into()),
            exp: Some(row.expires_at.timestamp()),
            iat: Some(row.created_at.timestamp()),
            sub: Some(user.id.to_string()),
            aud: Some(audience.unwrap_or_else(|| self.settings().audience.clone())),
            iss: Some(self.settings().issuer.clone()),
            jti: None,
        })
    }

    /// RFC 7009: revokes a token the calling client was issued. Unknown or foreign tokens are
    /// ignored (the answer is the same, so it reveals nothing).
    pub async fn revoke_token(
        &self,
        form: &TokenActionForm,
        basic: Option<&BasicAuth>,
    ) -> Result<(), AppError> {
        let (client, token) = self.token_action(form, basic, false).await?;
        if SecretKind::of(token) == Some(SecretKind::RefreshToken) {
            let Some(digest) = secret::parse(SecretKind::RefreshToken, token) else {
                return Ok(());
            };
            let Some(row) =
                berth_store::credentials::grants::find_refresh(self.db(), &digest).await?
            else {
                return Ok(());
            };
            let (grant_client, _) =
                berth_store::credentials::grants::origin(self.db(), row.grant_id)
                    .await?
                    .unwrap_or_default();
            if grant_client.as_deref() == Some(client.client_id.as_str()) {
                self.revoke_grant(row.grant_id, "revoked by the client")
                    .await?;
                self.audit(
                    Event::new("auth.token.revoked")
                        .client(Some(&client.client_id))
                        .target("grant", row.grant_id),
                )
                .await;
            }
            return Ok(());
        }
        let Ok(p) = self.inspect_access_token(token).await else {
            return Ok(());
        };
        if p.client_id.as_deref() != Some(client.client_id.as_str()) {
            return Ok(());
        }
        if p.method == AuthMethod::ClientCredentials {
            let (Some(jti), Some(exp)) = (p.token_id, p.expires_at) else {
                return Ok(());
            };
            berth_store::credentials::grants::revoke_access_token(self.db(), jti, exp).await?;
            self.forget_credential(jti).await?;
            self.audit(
                Event::new("auth.token.revoked")
                    .by(&p)
                    .target("access_token", jti),
            )
            .await;
        } else {
            self.revoke_grant(p.credential_id, "revoked by the client")
                .await?;
            self.audit(
                Event::new("auth.token.revoked")
                    .by(&p)
                    .target("grant", p.credential_id),
            )
            .await;
        }
        Ok(())
    }

    /// Exactly what this server supports, for RFC 8414 and OpenID Connect discovery alike.
    pub fn authorization_server_metadata(&self) -> AuthorizationServerMetadata {
        let issuer = &self.settings().issuer;
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        AuthorizationServerMetadata {
            issuer: issuer.clone(),
            token_endpoint: format!("{issuer}/oauth/token"),
            device_authorization_endpoint: format!("{issuer}/oauth/device/code"),
            introspection_endpoint: format!("{issuer}/oauth/introspect"),
            revocation_endpoint: format!("{issuer}/oauth/revoke"),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            grant_types_supported: strings(&[
                GRANT_CLIENT_CREDENTIALS,
                GRANT_REFRESH,
                GRANT_DEVICE,
                GRANT_EXCHANGE,
            ]),
            // RFC 8414 requires this field; with no authorization endpoint the only true
            // value is the response type that issues nothing (OAuth 2.0 Multiple Response
            // Type Encoding Practices, "none"). An empty list is refused by strict libraries.
            response_types_supported: strings(&["none"]),
            token_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
            introspection_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_post",
            ]),
            revocation_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
            scopes_supported: Permission::ALL.to_vec(),
            subject_types_supported: strings(&["public"]),
            access_token_signing_alg_values_supported: strings(&["EdDSA"]),
            service_documentation: format!("{issuer}/api/docs"),
        }
    }

    /// What Berth's CLI needs to sign in, from the server URL alone.
    pub fn auth_provider(&self) -> AuthProvider {
        AuthProvider {
            client_id: CLI_CLIENT_ID.into(),
            issuer_uri: self.settings().issuer.clone(),
            scope: Permission::ALL
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            audience: self.settings().audience.clone(),
        }
    }
}

fn too_many(wait: std::time::Duration) -> AppError {
    AppError::TooManyRequests {
        retry_after_secs: wait.as_secs().max(1),
    }
}

/// At the token endpoint every refresh failure is RFC 6749's `invalid_grant`.
fn as_invalid_grant(e: AppError) -> AppError {
    match e {
        AppError::InvalidGrant(why) => AppError::oauth("invalid_grant", why),
        other => other,
    }
}
