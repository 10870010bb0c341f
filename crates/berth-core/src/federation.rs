//! Trust in external OpenID Connect issuers, for token exchange: verifying their tokens against
//! their published keys and mapping them to Berth users.

use berth_store::users::UserRow;

use crate::{App, AppError};

impl App {
    /// The Berth user an external issuer's token speaks for.
    pub(crate) async fn verify_external_token(
        &self,
        _token: &str,
        issuer: Option<&str>,
    ) -> Result<UserRow, AppError> {
        let issuer = issuer
            .ok_or_else(|| AppError::oauth("invalid_grant", "the subject token names no issuer"))?;
        if !self
            .settings()
            .oauth
            .trusted_issuers
            .iter()
            .any(|t| t.issuer == issuer)
        {
            return Err(AppError::oauth(
                "invalid_grant",
                format!("issuer `{issuer}` is not trusted"),
            ));
        }
        Err(AppError::oauth(
            "invalid_grant",
            "verification of external tokens is not available yet",
        ))
    }
}
