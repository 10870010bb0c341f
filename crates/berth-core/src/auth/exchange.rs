//! Token exchange (RFC 8693): a Berth access token for one with narrower scope or another
//! configured audience, or a token from a trusted external OpenID Connect issuer for a Berth
//! token — the "exchange your identity provider's token for a platform token" step.

use berth_auth::jwt::{self, AccessClaims};
use berth_store::credentials::clients::ClientRow;
use berth_types::{OAuthTokenResponse, TokenForm};

use crate::auth::tokens::NewFamily;
use crate::{App, AppError, Credential};

pub(crate) const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
pub(crate) const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub(crate) const TOKEN_TYPE_ID: &str = "urn:ietf:params:oauth:token-type:id_token";

impl App {
    /// Exchanges a token (Berth's own, or one of a trusted external issuer) for a Berth access
    /// token through Berth's public CLI client: RFC 8693 for callers that only hold a token,
    /// such as BigAnimal's `POST /api/v3/auth/token`.
    pub async fn exchange_presented_token(
        &self,
        token: &str,
    ) -> Result<OAuthTokenResponse, AppError> {
        let form = TokenForm {
            grant_type: Some(crate::auth::clients::GRANT_EXCHANGE.into()),
            client_id: Some(crate::auth::clients::CLI_CLIENT_ID.into()),
            subject_token: Some(token.into()),
            subject_token_type: Some(TOKEN_TYPE_ACCESS.into()),
            ..TokenForm::default()
        };
        self.oauth_token(&form, None).await
    }

    pub(crate) async fn token_exchange(
        &self,
        client: &ClientRow,
        form: &TokenForm,
    ) -> Result<OAuthTokenResponse, AppError> {
        let subject = form
            .subject_token
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AppError::oauth("invalid_request", "subject_token is required"))?;
        let subject_type = form
            .subject_token_type
            .as_deref()
            .ok_or_else(|| AppError::oauth("invalid_request", "subject_token_type is required"))?;
        if ![TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT, TOKEN_TYPE_ID].contains(&subject_type) {
            return Err(AppError::oauth(
                "invalid_request",
                format!("unsupported subject_token_type `{subject_type}`"),
            ));
        }
        if let Some(t) = form.requested_token_type.as_deref() {
            if t != TOKEN_TYPE_ACCESS {
                return Err(AppError::oauth(
                    "invalid_request",
                    format!("cannot issue `{t}`; only access tokens"),
                ));
            }
        }
        let issuer: Option<String> = jwt::claims_unverified::<serde_json::Value>(subject)
            .ok()
            .and_then(|c| c.get("iss").and_then(|i| i.as_str()).map(str::to_owned));
        let audience = self.requested_audience(form.audience.as_deref())?;
        let mut response = if issuer.as_deref() == Some(self.settings().issuer.as_str()) {
            self.exchange_own_token(client, subject, form.scope.as_deref(), audience.as_deref())
                .await?
        } else {
            let user = self
                .verify_external_token(subject, issuer.as_deref(), &client.client_id)
                .await?;
            let scopes = self.requested_scopes(form.scope.as_deref(), &client.scopes)?;
            let family = NewFamily {
                kind: "exchange",
                scopes: &scopes,
                client_id: Some(&client.client_id),
                audience: audience.as_deref(),
                user_token_id: None,
                refreshable: client
                    .grant_types
                    .iter()
                    .any(|g| g == crate::auth::clients::GRANT_REFRESH),
            };
            self.start_family(user, &family, crate::auth::clients::GRANT_EXCHANGE)
                .await?
                .into()
        };
        response.issued_token_type = Some(TOKEN_TYPE_ACCESS.into());
        Ok(response)
    }

    /// A Berth access token, re-issued with a subset of its scope and/or another audience. The
    /// new token belongs to the same grant, so revoking one revokes both.
    async fn exchange_own_token(
        &self,
        client: &ClientRow,
        subject: &str,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> Result<OAuthTokenResponse, AppError> {
        let invalid = || {
            AppError::oauth(
                "invalid_grant",
                "the subject token is invalid, expired or revoked",
            )
        };
        let principal = self
            .authenticate(&Credential::Bearer(subject.to_owned()))
            .await
            .map_err(|_| invalid())?;
        let claims: AccessClaims = jwt::claims_unverified(subject).map_err(|_| invalid())?;
        if claims.gty.is_some() {
            return Err(AppError::oauth(
                "invalid_grant",
                "client-credential tokens cannot be exchanged",
            ));
        }
        let held: Vec<String> = claims.scope.split_whitespace().map(str::to_owned).collect();
        let scopes = self.requested_scopes(scope, &held)?;
        let user = berth_store::identity::users::get(self.db(), principal.user_id)
            .await?
            .ok_or_else(invalid)?;
        let grant = berth_store::credentials::grants::get(self.db(), principal.credential_id)
            .await?
            .ok_or_else(invalid)?;
        let spec = crate::auth::tokens::AccessSpec {
            grant_id: grant.id,
            kind: &grant.kind,
            ceiling: &scopes,
            client_id: Some(&client.client_id),
            audience,
        };
        let pair = self.issue(user, &spec, None).await?;
        self.audit(
            crate::audit::Event::new("auth.token.issued")
                .by(&principal)
                .client(Some(&client.client_id))
                .target("grant", grant.id)
                .details(serde_json::json!({ "grant_type": crate::auth::clients::GRANT_EXCHANGE, "subject_issuer": "berth" })),
        )
        .await;
        Ok(pair.into())
    }
}
