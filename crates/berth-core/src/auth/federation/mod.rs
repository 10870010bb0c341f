//! Trust in external OpenID Connect issuers, for token exchange (RFC 8693): the operator lists
//! issuers under `[[auth.oauth.trusted_issuers]]`; a token one of them signed is verified
//! against the keys its discovery document publishes, then mapped to a Berth user (created on
//! first use when the operator allows it).
//!
//! - [`keys`]: an issuer's JWKS, reduced to the signature keys Berth will verify with.
//! - [`verify`]: a token checked against those keys and the issuer's configuration — pure, no
//!   I/O, so every rule is unit-tested.
//! - [`discovery`]: fetching discovery documents and key sets, cached per issuer and refetched
//!   (rate-limited) when a token names an unknown key.
//! - [`mapping`]: which Berth user a verified token speaks for, and finding or creating them.

mod discovery;
mod keys;
mod mapping;
mod verify;

#[cfg(test)]
mod tests;

use berth_store::identity::users::UserRow;

pub(crate) use discovery::{Federation, Timing};

use crate::audit::Event;
use crate::settings::TrustedIssuer;
use crate::{App, AppError};

/// Why an external token was refused. Every variant becomes `invalid_grant` with this text as
/// the description: the caller presented a token we cannot accept, whatever the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FederationError {
    #[error("the subject token names no issuer")]
    NoIssuer,
    #[error("issuer `{0}` is not trusted")]
    Untrusted(String),
    #[error("the subject token is not a well-formed signed JWT")]
    Malformed,
    #[error("the subject token is signed with `{0}`, which is not accepted")]
    Algorithm(String),
    #[error("the subject token's header carries critical extensions, which are not supported")]
    Critical,
    #[error("the subject token was signed by a key its issuer does not publish")]
    UnknownKey,
    #[error("the key that signed the subject token is not for algorithm `{0}`")]
    KeyAlgorithm(String),
    #[error("the subject token's signature is invalid")]
    Signature,
    #[error("the subject token has expired")]
    Expired,
    #[error("the subject token is not valid yet")]
    NotYetValid,
    #[error("the subject token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the subject token's `{0}` claim is malformed")]
    BadClaim(String),
    #[error("the subject token was issued by `{0}`, not by the issuer it was checked against")]
    WrongIssuer(String),
    #[error("the subject token is not intended for audience `{0}`")]
    WrongAudience(String),
    #[error("the subject token's email address is not verified")]
    EmailNotVerified,
    #[error("the subject token's `{claim}` claim {problem}")]
    UserClaim {
        claim: String,
        problem: &'static str,
    },
    #[error("could not obtain the signing keys of issuer `{issuer}`: {reason}")]
    Fetch { issuer: String, reason: String },
}

impl From<FederationError> for AppError {
    fn from(e: FederationError) -> Self {
        AppError::oauth("invalid_grant", e.to_string())
    }
}

/// Compares issuer URLs the way operators write them: `https://idp.example/` and
/// `https://idp.example` are the same issuer.
pub(crate) fn normalize_issuer(issuer: &str) -> &str {
    issuer.strip_suffix('/').unwrap_or(issuer)
}

/// The configured issuer a token's (unverified) `iss` names, if it is trusted.
pub(crate) fn find_trusted<'a>(
    trusted: &'a [TrustedIssuer],
    iss: &str,
) -> Option<&'a TrustedIssuer> {
    let iss = normalize_issuer(iss);
    trusted.iter().find(|t| normalize_issuer(&t.issuer) == iss)
}

impl App {
    /// The Berth user an external issuer's token speaks for: the token is verified against the
    /// issuer's published keys and configuration, then mapped (or, when allowed, provisioned).
    pub(crate) async fn verify_external_token(
        &self,
        token: &str,
        issuer: Option<&str>,
        client_id: &str,
    ) -> Result<UserRow, AppError> {
        match self.exchange_external(token, issuer, client_id).await {
            Ok(user) => Ok(user),
            Err(e) => {
                let reason = match &e {
                    AppError::OAuth { description, .. } => description.clone(),
                    other => other.to_string(),
                };
                tracing::info!(issuer = ?issuer, %reason, "external token refused");
                let issuer: Option<String> = issuer.map(|i| i.chars().take(256).collect());
                self.audit(
                    Event::new("auth.token.exchange_failed")
                        .client(Some(client_id))
                        .details(serde_json::json!({ "issuer": issuer, "reason": reason })),
                )
                .await;
                Err(e)
            }
        }
    }

    async fn exchange_external(
        &self,
        token: &str,
        issuer: Option<&str>,
        client_id: &str,
    ) -> Result<UserRow, AppError> {
        let issuer = issuer.ok_or(FederationError::NoIssuer)?;
        let trusted = find_trusted(&self.settings().oauth.trusted_issuers, issuer)
            .ok_or_else(|| FederationError::Untrusted(issuer.chars().take(256).collect()))?;
        let claims = self.inner.federation.verify(token, trusted).await?;
        let identity = mapping::identity(trusted, &claims)?;
        let (user, created) = self.federated_user(trusted, &identity).await?;
        self.audit(
            Event::new("auth.token.exchanged")
                .user(user.id, &user.username)
                .client(Some(client_id))
                .target("user", user.id)
                .details(serde_json::json!({
                    "issuer": trusted.issuer,
                    "subject": identity.subject,
                    "user_claim": trusted.user_claim,
                    "user_created": created,
                })),
        )
        .await;
        Ok(user)
    }
}
