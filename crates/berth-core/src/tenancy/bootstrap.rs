//! First start: create the `admin` user so there is someone to sign in as.

use berth_store::identity::users::NewUser;
use uuid::Uuid;

use crate::{validate, App, AppError};

/// What bootstrapping did; a generated password is returned so the caller can show it once.
#[derive(Debug)]
pub enum BootstrapOutcome {
    AlreadyInitialised,
    CreatedWithGivenPassword,
    CreatedWithGeneratedPassword(String),
}

impl App {
    /// Creates `admin` when there are no users at all. Serialised across replicas by an
    /// advisory lock so exactly one of them does it.
    pub async fn bootstrap_admin(
        &self,
        given_password: Option<&str>,
    ) -> Result<BootstrapOutcome, AppError> {
        let mut tx = self.db().begin().await?;
        berth_store::identity::users::lock_bootstrap(&mut *tx).await?;
        if berth_store::identity::users::count(&mut *tx).await? > 0 {
            return Ok(BootstrapOutcome::AlreadyInitialised);
        }
        let (password, generated) = match given_password {
            Some(p) => {
                validate::password(p).map_err(|_| {
                    AppError::Validation(
                        "BERTH_ADMIN_PASSWORD must be at least 12 characters".into(),
                    )
                })?;
                (p.to_owned(), false)
            }
            None => (
                berth_auth::secret::generate(berth_auth::secret::SecretKind::Session).plaintext
                    [9..33]
                    .to_owned(),
                true,
            ),
        };
        let hash = self.inner.hasher.hash(&password).await?;
        berth_store::identity::users::insert(
            &mut *tx,
            &NewUser {
                id: Uuid::now_v7(),
                username: "admin",
                email: "admin@localhost.localdomain",
                password_hash: &hash,
                is_platform_admin: true,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(if generated {
            BootstrapOutcome::CreatedWithGeneratedPassword(password)
        } else {
            BootstrapOutcome::CreatedWithGivenPassword
        })
    }
}
