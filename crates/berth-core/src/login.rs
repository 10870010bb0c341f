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
        let login = login.trim();
        // Names no account can have are unknown without asking the store.
        let plausible =
            !login.is_empty() && login.len() <= 254 && !login.chars().any(char::is_control);
        let user = if plausible {
            berth_store::users::find_by_login(self.db(), login).await?
        } else {
            None
        };
        // One counter per account however it is named (username or email); unknown names
        // get their own counter (by digest: the name may be anything) so the answer does not
        // depend on whether the account exists.
        let account_key = match &user {
            Some(u) => format!("user:{}", u.id),
            None => format!(
                "login:{}",
                hex(&berth_auth::sha256(login.to_lowercase().as_bytes()))
            ),
        };
        let attempt = self.begin_attempt(&account_key).await?;
        let verified = self
            .inner
            .hasher
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)
            .await?;
        match user {
            Some(user) if verified.matches && !user.disabled => {
                self.attempt_succeeded(&attempt).await?;
                let new_hash = if verified.needs_rehash {
                    Some(self.inner.hasher.hash(password).await?)
                } else {
                    None
                };
                berth_store::users::record_login(self.db(), user.id, new_hash.as_deref()).await?;
                self.inner.cache.forget_user(user.id);
                tracing::info!(user = %user.username, ip = %attempt.ip, "sign-in succeeded");
                self.audit(Event::new("auth.login.succeeded").user(user.id, &user.username))
                    .await;
                Ok(user)
            }
            _ => {
                tracing::info!(ip = %attempt.ip, "sign-in failed");
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

    /// Checks a signed-in user's password (to confirm a sensitive change), throttled like a
    /// sign-in so a stolen token cannot be used to guess it.
    pub(crate) async fn confirm_password(
        &self,
        user: &UserRow,
        password: &str,
    ) -> Result<bool, AppError> {
        let attempt = self.begin_attempt(&format!("user:{}", user.id)).await?;
        let verified = self
            .inner
            .hasher
            .verify(Some(&user.password_hash), password)
            .await?;
        if verified.matches {
            self.attempt_succeeded(&attempt).await?;
        }
        Ok(verified.matches)
    }

    /// Counts an attempt against the account's and the address's limits *before* the password
    /// is checked, so concurrent guesses cannot slip past the limit; a success is taken back.
    async fn begin_attempt(&self, account_key: &str) -> Result<Attempt, AppError> {
        let ip = crate::context::current_client()
            .map_or_else(|| "unknown".to_owned(), |c| c.ip.to_string());
        let t = self.settings().throttle;
        let attempt = Attempt {
            account_key: account_key.to_owned(),
            ip_key: format!("ip:{ip}"),
            ip,
        };
        self.count_attempt(&attempt.account_key, t.max_failures_per_account)
            .await?;
        self.count_attempt(&attempt.ip_key, t.max_failures_per_ip)
            .await?;
        Ok(attempt)
    }

    async fn attempt_succeeded(&self, attempt: &Attempt) -> Result<(), AppError> {
        berth_store::login_failures::clear(self.db(), &attempt.account_key).await?;
        berth_store::login_failures::decrement(self.db(), &attempt.ip_key).await?;
        Ok(())
    }

    async fn count_attempt(&self, key: &str, max: i32) -> Result<(), AppError> {
        let window = self.settings().throttle.window_secs;
        let (count, window_start) =
            berth_store::login_failures::increment(self.db(), key, window).await?;
        if count > max {
            // This attempt is refused, so it does not count as a failure.
            berth_store::login_failures::decrement(self.db(), key).await?;
            let remaining = window_start.timestamp() + window - Utc::now().timestamp();
            return Err(AppError::TooManyRequests {
                retry_after_secs: remaining.max(1) as u64,
            });
        }
        Ok(())
    }
}

/// The counters one attempt was charged to.
struct Attempt {
    account_key: String,
    ip_key: String,
    ip: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
