//! Password hashing with argon2id on a bounded pool of blocking threads.
//!
//! Each hash costs tens of milliseconds of CPU and ~19 MiB of memory, so hashing never runs on
//! the async workers and at most `concurrency` hashes run at once: a login storm queues here
//! instead of starving every other request of CPU. Unknown users are verified against a dummy
//! hash so they cost the same time as a wrong password.
//!
//! The argon2 working memory is kept in at most `concurrency` reusable buffers instead of being
//! allocated per hash: allocator arenas of many blocking threads otherwise keep every buffer a
//! burst ever touched (hundreds of MB that are never returned). A request that waits longer
//! than the queue timeout gets [`PasswordError::Busy`] with an estimate of when the queue drains.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
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
    #[error("password hashing is overloaded; retry in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
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
    concurrency: usize,
    queue_timeout: Duration,
    dummy_hash: Arc<String>,
    /// Working memory of finished hashes, reused by the next (never more than `concurrency`).
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Hashes waiting or running, and a moving average of how long one takes (µs).
    queued: Arc<AtomicUsize>,
    mean_micros: Arc<AtomicU64>,
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
        let mut blocks = Vec::new();
        let dummy_hash = hash_blocking(&params, &random_bytes::<32>(), &mut blocks);
        let concurrency = concurrency.max(1);
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            queue_timeout,
            dummy_hash: Arc::new(dummy_hash),
            buffers: Arc::new(Mutex::new(vec![blocks])),
            queued: Arc::new(AtomicUsize::new(0)),
            mean_micros: Arc::new(AtomicU64::new(50_000)),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let params = self.params.clone();
        let password = password.as_bytes().to_vec();
        self.run(move |blocks| hash_blocking(&params, &password, blocks))
            .await
    }

    /// About how long until the hashes queued now are done, in whole seconds (at least 1): an
    /// honest `Retry-After` for a caller turned away while they run.
    pub fn drain_estimate_secs(&self) -> u64 {
        let queued = self.queued.load(Ordering::Relaxed) as u64;
        let mean = self.mean_micros.load(Ordering::Relaxed);
        (queued * mean / self.concurrency as u64)
            .div_ceil(1_000_000)
            .max(1)
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
        self.run(move |blocks| {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return Verified {
                    matches: false,
                    needs_rehash: false,
                };
            };
            let matches = verify_blocking(&parsed, &password, blocks) && known;
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
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let queued = QueuedGuard::new(&self.queued);
        // Never more than one queue timeout: by then this request's slot would have come.
        let busy = || PasswordError::Busy {
            retry_after_secs: self
                .drain_estimate_secs()
                .min(self.queue_timeout.as_secs().max(1)),
        };
        let permit = tokio::time::timeout(self.queue_timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let buffers = self.buffers.clone();
        let mean = self.mean_micros.clone();
        let keep = self.params.block_count();
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut blocks = buffers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop()
                .unwrap_or_default();
            let started = Instant::now();
            let out = work(&mut blocks);
            let took = started.elapsed().as_micros().min(u64::MAX as u128) as u64;
            // A moving average (1/8 weight) is enough for a Retry-After estimate.
            let old = mean.load(Ordering::Relaxed);
            mean.store(old - old / 8 + took / 8, Ordering::Relaxed);
            // A buffer grown for an old hash with more memory is not kept.
            if blocks.len() <= keep {
                buffers
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(blocks);
            }
            out
        })
        .await
        .map_err(|_| busy());
        drop(queued);
        result
    }
}

/// Counts a hash as queued for as long as its request waits or runs (also when it is dropped).
struct QueuedGuard(Arc<AtomicUsize>);

impl QueuedGuard {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        QueuedGuard(counter.clone())
    }
}

impl Drop for QueuedGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `blocks` resized to what `params` needs (the contents are overwritten by argon2).
fn memory<'b>(blocks: &'b mut Vec<Block>, params: &Params) -> &'b mut [Block] {
    let n = params.block_count();
    if blocks.len() < n {
        blocks.resize(n, Block::default());
    }
    &mut blocks[..n]
}

fn hash_blocking(params: &Params, password: &[u8], blocks: &mut Vec<Block>) -> String {
    let salt_bytes = random_bytes::<16>();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16-byte salt is valid");
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt_bytes, &mut out, memory(blocks, params))
        .expect("argon2 with validated parameters cannot fail");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params.try_into().expect("validated parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("32-byte output is valid")),
    }
    .to_string()
}

/// Recomputes `hash` (whatever its algorithm and parameters) for `password` in `blocks` and
/// compares in constant time.
fn verify_blocking(hash: &PasswordHash<'_>, password: &[u8], blocks: &mut Vec<Block>) -> bool {
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if argon2
        .hash_password_into_with_memory(password, salt, &mut out, memory(blocks, &params))
        .is_err()
    {
        return false;
    }
    Output::new(&out).is_ok_and(|computed| computed == expected)
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

    /// Hashes made by the stock argon2 API verify here, and the other way round.
    #[tokio::test]
    async fn agrees_with_the_stock_argon2_api() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let h = cheap(1024);
        let params = Params::new(1024, 1, 1, None).unwrap();
        let stock = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = stock.hash_password(b"pw pw pw", &salt).unwrap().to_string();
        assert!(h.verify(Some(&theirs), "pw pw pw").await.unwrap().matches);
        assert!(!h.verify(Some(&theirs), "pw pw px").await.unwrap().matches);
        let ours = h.hash("pw pw pw").await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(stock.verify_password(b"pw pw pw", &parsed).is_ok());
        // An argon2i hash (other algorithm) verifies too.
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        );
        let old = argon2i
            .hash_password(b"pw pw pw", &salt)
            .unwrap()
            .to_string();
        let v = h.verify(Some(&old), "pw pw pw").await.unwrap();
        assert!(v.matches && v.needs_rehash);
    }

    /// However many hashes run, no more working buffers than `concurrency` are kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn keeps_at_most_one_buffer_per_slot() {
        let h = cheap(1024);
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..16 {
            let h = h.clone();
            set.spawn(async move { h.hash("some password").await.unwrap() });
        }
        while set.join_next().await.is_some() {}
        assert!(h.buffers.lock().unwrap().len() <= 2);
        assert_eq!(h.queued.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_with_a_short_retry() {
        let h = PasswordHasher::new(
            HashParams {
                memory_kib: 1024,
                iterations: 1,
                parallelism: 1,
            },
            1,
            Duration::ZERO,
        )
        .unwrap();
        let held = h.permits.clone().acquire_owned().await.unwrap();
        match h.hash("some password").await {
            Err(PasswordError::Busy { retry_after_secs }) => {
                assert!((1..=5).contains(&retry_after_secs), "{retry_after_secs}")
            }
            other => panic!("{other:?}"),
        }
        drop(held);
        assert!(h.hash("some password").await.is_ok());
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
