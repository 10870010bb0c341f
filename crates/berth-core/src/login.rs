//! Checking a username and password, with throttling of failures per account and per client
//! address. The answer never reveals whether the account exists, and an unknown account costs
//! the same hashing work as a wrong password.

use std::net::IpAddr;

use berth_store::users::UserRow;
use chrono::Utc;

use crate::audit::Event;
use crate::{App, AppError};

/// Where a request came from, for throttling and the audit trail.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl App {
    /// The user whose credentials these are, or `InvalidCredentials` / `TooManyRequests`.
    pub(crate) async fn check_password(
        &self,
        login: &str,
        password: &str,
    ) -> Result<UserRow, AppError> {
        let user = if login.len() <= 254 {
            berth_store::users::find_by_login(self.db(), login.trim()).await?
        } else {
            None
        };
        // One counter per account however it is named (username or email); unknown names
        // get their own counter so the answer does not depend on whether the account exists.
        let account_key = match &user {
            Some(u) => format!("user:{}", u.id),
            None => format!("login:{}", login.trim().to_lowercase()),
        };
        let ip = crate::context::current_client()
            .map_or_else(|| "unknown".to_owned(), |c| c.ip.to_string());
        let ip_key = format!("ip:{ip}");
        self.refuse_if_throttled(
            &account_key,
            self.settings().throttle.max_failures_per_account,
        )
        .await?;
        self.refuse_if_throttled(&ip_key, self.settings().throttle.max_failures_per_ip)
            .await?;
        let verified = self
            .inner
            .hasher
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)
            .await?;
        match user {
            Some(user) if verified.matches && !user.disabled => {
                berth_store::login_failures::clear(self.db(), &account_key).await?;
                let new_hash = if verified.needs_rehash {
                    Some(self.inner.hasher.hash(password).await?)
                } else {
                    None
                };
                berth_store::users::record_login(self.db(), user.id, new_hash.as_deref()).await?;
                self.inner.cache.forget_user(user.id);
                tracing::info!(user = %user.username, ip = %ip, "sign-in succeeded");
                self.audit(Event::new("auth.login.succeeded").user(user.id, &user.username))
                    .await;
                Ok(user)
            }
            _ => {
                let window = self.settings().throttle.window_secs;
                berth_store::login_failures::increment(self.db(), &account_key, window).await?;
                berth_store::login_failures::increment(self.db(), &ip_key, window).await?;
                tracing::info!(ip = %ip, "sign-in failed");
                let mut event = Event::new("auth.login.failed").details(
                    serde_json::json!({ "login": login.chars().take(254).collect::<String>() }),
                );
                if let Some(u) = &user {
                    event = event.user(u.id, &u.username);
                }
                self.audit(event).await;
                Err(AppError::InvalidCredentials)
            }
        }
    }

    async fn refuse_if_throttled(&self, key: &str, max: i32) -> Result<(), AppError> {
        let Some((failures, window_start)) =
            berth_store::login_failures::get(self.db(), key).await?
        else {
            return Ok(());
        };
        let window_end = window_start.timestamp() + self.settings().throttle.window_secs;
        let remaining = window_end - Utc::now().timestamp();
        if failures >= max && remaining > 0 {
            return Err(AppError::TooManyRequests {
                retry_after_secs: remaining as u64,
            });
        }
        Ok(())
    }
}
