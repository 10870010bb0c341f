//! Berth's application layer. Every operation the API offers is a method here that takes the
//! authenticated [`Principal`], checks authorization next to the data it protects, validates
//! input, and reads or writes the store — with no knowledge of HTTP. One error type,
//! [`AppError`], describes every way an operation can fail; the HTTP layer maps it once.
//!
//! The modules are grouped by what they are about: `authz` (every access decision, and the
//! proof values writes need), `auth` (how a credential becomes a principal), `tenancy` (users,
//! projects, members), `fleet` (instances, regions, the CA), `jobs` (the runner and one file per
//! job kind) and `background` (loops that are not requests); `audit`, `error`, `settings` and
//! `validate` serve them all. `docs/architecture.md` has the map.

mod audit;
mod auth;
mod authz;
mod background;
mod clock;
pub mod context;
mod error;
mod fleet;
mod jobs;
mod settings;
mod tenancy;
mod validate;

pub use auth::authenticate::Credential;
pub use auth::clients::CLI_CLIENT_ID;
pub use auth::device::{format_user_code, normalize_user_code, poll_decision};
pub use auth::keyring::Keyring;
pub use auth::login::ClientInfo;
pub use auth::oauth::BasicAuth;
pub use auth::tokens::{NewSession, TokenPair};
pub use authz::principal::Principal;
pub use background::spare_pool::SparePolicy;
pub use error::{AppError, AuthFailure};
pub use fleet::firewall::parse_cidr;
pub use fleet::instances::InstanceSettings;
pub use fleet::stats::StatsSettings;
pub use settings::{AuthSettings, MatchBy, OAuthSettings, ThrottleSettings, TrustedIssuer};
pub use tenancy::bootstrap::BootstrapOutcome;

use std::sync::Arc;

use berth_auth::password::PasswordHasher;
use berth_auth::seal::MasterKey;
use berth_store::{PgPool, StoreHealth};

/// The application: shared by every request handler and background task.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    db: PgPool,
    /// Whether the store answers: requests are refused at once while it does not, and the
    /// background loops wait for it.
    health: StoreHealth,
    settings: AuthSettings,
    hasher: PasswordHasher,
    keyring: Keyring,
    cache: auth::cache::CredentialCache,
    audit: audit::AuditLog,
    limiter: auth::ratelimit::RateLimiter,
    /// Cached discovery documents and keys of trusted external issuers.
    federation: auth::federation::Federation,
    /// "Now" for expiry decisions (shifted by tests in debug builds).
    clock: clock::Clock,
    /// Where instances run.
    engine: Arc<dyn berth_engine::Engine>,
    instance_settings: InstanceSettings,
    /// Signs every instance's server certificate.
    ca: berth_tls::CertificateAuthority,
    /// Wakes idle job runners when a job is enqueued.
    job_wakeup: tokio::sync::Notify,
    /// Set when Berth is stopping its instances: no more jobs or repairs start.
    stopping: std::sync::atomic::AtomicBool,
    /// Held shared by every job and spare in progress, so stopping can wait for them.
    engine_work: tokio::sync::RwLock<()>,
    /// The latest statistics of each running instance, for `/metrics`.
    gauges: fleet::stats::Gauges,
    /// Recent demand for spares and the keeper's work in progress.
    spare_pool: Arc<background::spare_pool::PoolState>,
}

impl App {
    /// Builds the app on a migrated store: loads (or creates) the signing keys and starts
    /// listening for revocations made by other replicas.
    pub async fn new(
        db: PgPool,
        health: StoreHealth,
        settings: AuthSettings,
        master_key: MasterKey,
        engine: Arc<dyn berth_engine::Engine>,
        instance_settings: InstanceSettings,
    ) -> Result<App, AppError> {
        let hasher = PasswordHasher::new(
            settings.password_hash,
            settings.hash_concurrency,
            settings.hash_queue_timeout,
        )
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let ca = fleet::ca::load_or_create(&db, &master_key).await?;
        let keyring = Keyring::load_or_create(&db, master_key).await?;
        let app = App {
            inner: Arc::new(Inner {
                audit: audit::AuditLog::start(db.clone(), health.clone()),
                db,
                health,
                settings,
                hasher,
                keyring,
                cache: auth::cache::CredentialCache::new(100_000),
                clock: clock::Clock::from_env(),
                limiter: auth::ratelimit::RateLimiter::new(),
                federation: auth::federation::Federation::new(auth::federation::Timing::default()),
                engine,
                instance_settings,
                ca,
                job_wakeup: tokio::sync::Notify::new(),
                stopping: std::sync::atomic::AtomicBool::new(false),
                engine_work: tokio::sync::RwLock::new(()),
                gauges: Default::default(),
                spare_pool: Default::default(),
            }),
        };
        app.spawn_revocation_listener();
        app.spawn_maintenance();
        Ok(app)
    }

    /// Starts the work that changes instances: interrupted jobs resume, runners claim jobs, and
    /// the supervisor adopts running instances and repairs dead ones.
    pub async fn start_instance_work(&self) -> Result<(), AppError> {
        self.start_job_runners().await?;
        self.start_backup_scheduler();
        self.start_stats_sampler();
        self.start_supervisor().await
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.inner
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn engine(&self) -> &Arc<dyn berth_engine::Engine> {
        &self.inner.engine
    }

    pub(crate) fn instance_settings(&self) -> &InstanceSettings {
        &self.inner.instance_settings
    }

    pub fn db(&self) -> &PgPool {
        &self.inner.db
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.inner.settings
    }

    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub fn store_health(&self) -> &StoreHealth {
        &self.inner.health
    }

    /// Is the store reachable? (As last seen by its probe and supervisor: answers at once.)
    pub fn ready(&self) -> bool {
        self.inner.health.is_up()
    }

    /// Fails at once, with [`AppError::Unavailable`], while the store is down: a request that
    /// needs it would otherwise wait for the pool's acquire timeout to learn the same.
    pub fn require_store(&self) -> Result<(), AppError> {
        if self.inner.health.is_up() {
            Ok(())
        } else {
            Err(AppError::store_unavailable())
        }
    }

    /// Records a failed store call of background work: a connection error marks the store
    /// down (so the loops wait for it instead of retrying into it). True if it was one.
    pub(crate) fn store_failed(&self, e: &sqlx::Error) -> bool {
        self.inner.health.report(e)
    }
}

/// A page whose `next`/`previous` the HTTP layer turns into URLs.
pub fn page<T>(count: i64, limit: i64, offset: i64, results: Vec<T>) -> berth_types::Page<T> {
    // Saturating: an offset near i64::MAX is valid input and must not overflow (it did: 500).
    let end = offset.saturating_add(limit);
    let next = (end < count).then(|| format!("limit={limit}&offset={end}"));
    let previous =
        (offset > 0).then(|| format!("limit={limit}&offset={}", (offset - limit).max(0)));
    berth_types::Page {
        count,
        next,
        previous,
        results,
    }
}
