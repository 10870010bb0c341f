//! Background upkeep: scheduled signing-key rotation, picking up other replicas' keys, and
//! pruning expired rows.

use std::time::Duration;

use berth_types::Permission;

use crate::audit::Event;
use crate::{App, AppError, Principal};

const TICK: Duration = Duration::from_secs(60);

impl App {
    /// How long a retired key stays published: the longest an access token can live, plus
    /// clock-skew margin.
    fn key_publish_window(&self) -> Duration {
        let s = self.settings();
        let longest = s
            .access_token_ttl
            .as_secs()
            .max(s.oauth.access_token_ttl_secs)
            .max(s.oauth.user_token_session_ttl_secs);
        Duration::from_secs(longest + 300)
    }

    /// `POST /api/v1/auth/keys/rotate` and `berth keys rotate`: platform admins only.
    pub async fn rotate_signing_key(&self, p: &Principal) -> Result<String, AppError> {
        self.require_global(p, Permission::UsersWrite)?;
        let kid = self.keyring().rotate(self.key_publish_window()).await?;
        self.audit(
            Event::new("signing_key.rotated")
                .by(p)
                .target("signing_key", &kid),
        )
        .await;
        Ok(kid)
    }

    pub(crate) fn spawn_maintenance(&self) {
        let app = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(TICK).await;
                // Upkeep can wait for the store; the next tick does it.
                if !app.store_health().is_up() {
                    continue;
                }
                if let Err(e) = app.maintain().await {
                    tracing::warn!(error = %e, "maintenance failed");
                }
            }
        });
    }

    async fn maintain(&self) -> Result<(), AppError> {
        let days = self.settings().oauth.signing_key_rotation_days;
        if days > 0 {
            let max_age = Duration::from_secs(days * 24 * 3600);
            if let Some(kid) = self
                .keyring()
                .rotate_if_older(max_age, self.key_publish_window())
                .await?
            {
                tracing::info!(kid, "rotated the signing key on schedule");
                self.audit(
                    Event::new("signing_key.rotated")
                        .target("signing_key", &kid)
                        .details(serde_json::json!({ "scheduled": true })),
                )
                .await;
            }
        }
        self.keyring().reload().await?;
        berth_store::prune_expired(self.db()).await?;
        let days = self.settings().audit_retention_days;
        if days > 0 {
            berth_store::audit::prune(self.db(), days).await?;
        }
        Ok(())
    }
}
