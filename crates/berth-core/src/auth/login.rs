//! Checking a username and password, with throttling of failures per account and per client
//! address. The answer never reveals whether the account exists, and an unknown account costs
//! the same hashing work as a wrong password.
//!
//! Throttling is exact under races without charging anyone for a correct password: before a
//! password is checked the attempt reserves a slot against the account's and the address's
//! limits (`berth_store::credentials::login_failures`), and only a *verified* wrong password becomes a
//! failure. While failures plus checks in flight fill a limit, further attempts cannot be told
//! apart from a lockout yet, so they get a short 429 (`Retry-After` of about the time the checks
//! in flight take) rather than the lockout's window; once the failures alone fill it, the
//! account or address is locked out until its window ends.

use std::net::IpAddr;

use berth_store::credentials::login_failures::{self as store, Limit, Outcome, Reservation};
use berth_store::identity::users::UserRow;
use chrono::Utc;
use uuid::Uuid;

use crate::audit::Event;
use crate::{App, AppError};

/// Where a request came from, for throttling and the audit trail.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

/// The longest `Retry-After` given while the outcome of checks in flight is unknown.
const MAX_PENDING_RETRY_SECS: u64 = 5;

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
            berth_store::identity::users::find_by_login(self.db(), login).await?
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
        let mut attempt = self.begin_attempt(account_key).await?;
        let verified = self
            .inner
            .hasher
            .verify(user.as_ref().map(|u| u.password_hash.as_str()), password)
            .await;
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                attempt.finish(Outcome::Abandoned).await?;
                return Err(e.into());
            }
        };
        match user {
            Some(user) if verified.matches && !user.disabled => {
                let key = attempt.account_key.clone();
                attempt.finish(Outcome::Succeeded { clear: &key }).await?;
                // A busy pool skips the upgrade of an old hash; the next sign-in does it.
                let new_hash = match verified.needs_rehash {
                    true => self.inner.hasher.hash(password).await.ok(),
                    false => None,
                };
                berth_store::identity::users::record_login(self.db(), user.id, new_hash.as_deref())
                    .await?;
                self.inner.cache.forget_user(user.id);
                tracing::info!(user = %user.username, ip = %attempt.ip, "sign-in succeeded");
                self.audit(Event::new("auth.login.succeeded").user(user.id, &user.username))
                    .await;
                Ok(user)
            }
            // A disabled account counts its attempts as failures whatever the password, so the
            // counter cannot tell whether a guess was right.
            _ => {
                attempt.finish(Outcome::Failed).await?;
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
        let mut attempt = self.begin_attempt(format!("user:{}", user.id)).await?;
        let verified = match self
            .inner
            .hasher
            .verify(Some(&user.password_hash), password)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                attempt.finish(Outcome::Abandoned).await?;
                return Err(e.into());
            }
        };
        let key = attempt.account_key.clone();
        if verified.matches {
            attempt.finish(Outcome::Succeeded { clear: &key }).await?;
        } else {
            attempt.finish(Outcome::Failed).await?;
        }
        Ok(verified.matches)
    }

    /// Reserves a check of one attempt against the account's and the address's limits *before*
    /// the password is checked, so concurrent guesses cannot slip past the limits.
    async fn begin_attempt(&self, account_key: String) -> Result<Attempt, AppError> {
        let ip = crate::context::current_client()
            .map_or_else(|| "unknown".to_owned(), |c| c.ip.to_string());
        let ip_key = format!("ip:{ip}");
        let t = self.settings().throttle;
        let id = Uuid::now_v7();
        // Longer than any check can take (queue wait included), so a live check never loses
        // its slot; short enough that a crashed Berth's slots come back soon.
        let hold = self.settings().hash_queue_timeout.as_secs() as i64 + 30;
        let limits = [
            Limit {
                key: &account_key,
                max: t.max_failures_per_account,
            },
            Limit {
                key: &ip_key,
                max: t.max_failures_per_ip,
            },
        ];
        match store::reserve(self.db(), id, &limits, t.window_secs, hold).await? {
            Reservation::Reserved => Ok(Attempt {
                app: self.clone(),
                id,
                account_key,
                ip,
                done: false,
            }),
            Reservation::LockedOut { until } => Err(AppError::TooManyRequests {
                retry_after_secs: (until - Utc::now()).num_seconds().max(1) as u64,
            }),
            Reservation::Pending => Err(AppError::TooManyRequests {
                retry_after_secs: self
                    .inner
                    .hasher
                    .drain_estimate_secs()
                    .clamp(1, MAX_PENDING_RETRY_SECS),
            }),
        }
    }
}

/// One attempt's reservations. Dropped unfinished (the request was cancelled mid-check), it
/// releases them without counting anything: the caller never saw the answer.
struct Attempt {
    app: App,
    id: Uuid,
    account_key: String,
    ip: String,
    done: bool,
}

impl Attempt {
    /// Records the outcome. A check that outlived its reservation is not answered (503), since
    /// another attempt may have been given its slot.
    async fn finish(&mut self, outcome: Outcome<'_>) -> Result<(), AppError> {
        self.done = true;
        let window = self.app.settings().throttle.window_secs;
        if store::finish(self.app.db(), self.id, 2, outcome, window).await? {
            Ok(())
        } else {
            Err(AppError::Busy {
                retry_after_secs: self.app.inner.hasher.drain_estimate_secs(),
            })
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let (db, id) = (self.app.db().clone(), self.id);
        let window = self.app.settings().throttle.window_secs;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store::finish(&db, id, 2, Outcome::Abandoned, window).await {
                    tracing::warn!(error = %e, "releasing a sign-in reservation failed; it expires");
                }
            });
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
