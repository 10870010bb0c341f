//! Password hashing with argon2id on a bounded pool of blocking threads.
//!
//! Each hash costs tens of milliseconds of CPU and ~19 MiB of memory, so hashing never runs on
//! the async workers and at most `concurrency` hashes run at once: a login storm queues here
//! instead of starving every other request of CPU. Unknown users are verified against a dummy
//! hash so they cost the same time as a wrong password.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordVerifier, Version};
use tokio::sync::Semaphore;

use crate::random_bytes;

/// argon2id cost parameters. The default is OWASP's recommendation (m=19 MiB, t=2, p=1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        HashParams {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("password hashing is overloaded; try again shortly")]
    Busy,
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub matches: bool,
    /// The stored hash used other parameters than today's: store a fresh one.
    pub needs_rehash: bool,
}

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    queue_timeout: Duration,
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    /// `concurrency` bounds simultaneous hashes; `queue_timeout` bounds how long a request waits
    /// for a slot before it is told to retry.
    pub fn new(
        params: HashParams,
        concurrency: usize,
        queue_timeout: Duration,
    ) -> Result<Self, PasswordError> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| PasswordError::Params(e.to_string()))?;
        let dummy_hash = hash_blocking(&params, &random_bytes::<32>());
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_timeout,
            dummy_hash: Arc::new(dummy_hash),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.as_bytes().to_vec();
        self.run(move || hash_blocking(&params, &password)).await
    }

    /// Checks `password` against `stored`; with no stored hash (unknown user) the work is the
    /// same and the answer is "no".
    pub async fn verify(
        &self,
        stored: Option<&str>,
        password: &str,
    ) -> Result<Verified, PasswordError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or(&self.dummy_hash).to_owned();
        let params = self.params.clone();
        let password = password.as_bytes().to_vec();
        self.run(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return Verified {
                    matches: false,
                    needs_rehash: false,
                };
            };
            let matches = argon2(&params).verify_password(&password, &parsed).is_ok() && known;
            let needs_rehash = matches && !uses_params(&parsed, &params);
            Verified {
                matches,
                needs_rehash,
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordError::Busy)?
            .map_err(|_| PasswordError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| PasswordError::Busy)
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &[u8]) -> String {
    use argon2::PasswordHasher as _;
    let salt = SaltString::encode_b64(&random_bytes::<16>()).expect("16-byte salt is valid");
    argon2(params)
        .hash_password(password, &salt)
        .expect("argon2 with validated parameters cannot fail")
        .to_string()
}

fn uses_params(hash: &PasswordHash<'_>, params: &Params) -> bool {
    hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13.into())
        && Params::try_from(hash).is_ok_and(|p| {
            p.m_cost() == params.m_cost()
                && p.t_cost() == params.t_cost()
                && p.p_cost() == params.p_cost()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap(memory_kib: u32) -> PasswordHasher {
        PasswordHasher::new(
            HashParams {
                memory_kib,
                iterations: 1,
                parallelism: 1,
            },
            2,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn verifies_and_flags_old_parameters() {
        let old = cheap(1024);
        let hash = old.hash("correct horse").await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert_eq!(
            old.verify(Some(&hash), "correct horse").await.unwrap(),
            Verified {
                matches: true,
                needs_rehash: false
            }
        );
        assert!(!old.verify(Some(&hash), "wrong").await.unwrap().matches);
        let new = cheap(2048);
        assert_eq!(
            new.verify(Some(&hash), "correct horse").await.unwrap(),
            Verified {
                matches: true,
                needs_rehash: true
            }
        );
    }

    #[tokio::test]
    async fn unknown_user_never_matches() {
        let h = cheap(1024);
        assert!(!h.verify(None, "anything").await.unwrap().matches);
        assert!(
            !h.verify(Some("not a hash"), "anything")
                .await
                .unwrap()
                .matches
        );
    }
}
