//! The JWT signing keys: one current Ed25519 key signs, every published key verifies. Keys
//! live in the store with the private half sealed under the master key, so every replica
//! sharing the store (and the master key) signs and verifies alike.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use berth_auth::jwt::{SigningKey, VerifyingKey};
use berth_auth::seal::MasterKey;
use berth_store::PgPool;

use crate::AppError;

const ALGORITHM: &str = "EdDSA";
/// How often an unknown `kid` may trigger a reload (another replica may have rotated).
const RELOAD_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    db: PgPool,
    master: MasterKey,
    state: RwLock<State>,
    last_reload: Mutex<Instant>,
}

struct State {
    current: SigningKey,
    verifying: HashMap<String, VerifyingKey>,
}

impl Keyring {
    pub async fn load_or_create(db: &PgPool, master: MasterKey) -> Result<Keyring, AppError> {
        let state = load(db, &master).await?;
        Ok(Keyring {
            inner: Arc::new(Inner {
                db: db.clone(),
                master,
                state: RwLock::new(state),
                last_reload: Mutex::new(Instant::now()),
            }),
        })
    }

    pub fn sign<C: serde::Serialize>(&self, claims: &C) -> String {
        self.read().current.sign(claims)
    }

    /// The key named `kid`, reloading from the store (rate-limited) when it is not known here.
    pub async fn verifying_key(&self, kid: &str) -> Option<VerifyingKey> {
        if let Some(k) = self.read().verifying.get(kid) {
            return Some(k.clone());
        }
        {
            let mut last = self
                .inner
                .last_reload
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < RELOAD_INTERVAL {
                return None;
            }
            *last = Instant::now();
        }
        match load(&self.inner.db, &self.inner.master).await {
            Ok(state) => {
                let found = state.verifying.get(kid).cloned();
                *self.inner.state.write().unwrap_or_else(|e| e.into_inner()) = state;
                found
            }
            Err(e) => {
                tracing::warn!(error = %e, "reloading signing keys failed");
                None
            }
        }
    }

    /// Makes a new signing key current. The old ones stop signing now and stay published until
    /// `publish_for` has passed, so every token they signed can still be verified.
    pub(crate) async fn rotate(&self, publish_for: Duration) -> Result<String, AppError> {
        let db = &self.inner.db;
        let mut tx = db.begin().await?;
        berth_store::credentials::signing_keys::lock_table(&mut *tx).await?;
        let retire_at =
            chrono::Utc::now() + chrono::Duration::seconds(publish_for.as_secs() as i64);
        berth_store::credentials::signing_keys::retire_current(&mut *tx, retire_at).await?;
        tx.commit().await?;
        self.reload().await?;
        Ok(self.read().current.kid.clone())
    }

    /// Rotates if the current key is older than `max_age` (checked under the table lock, so
    /// only one replica rotates).
    pub(crate) async fn rotate_if_older(
        &self,
        max_age: Duration,
        publish_for: Duration,
    ) -> Result<Option<String>, AppError> {
        let created =
            berth_store::credentials::signing_keys::current_created_at(&self.inner.db).await?;
        let too_old = created.is_some_and(|c| {
            chrono::Utc::now() - c > chrono::Duration::seconds(max_age.as_secs() as i64)
        });
        if too_old {
            return self.rotate(publish_for).await.map(Some);
        }
        Ok(None)
    }

    /// Picks up keys created or retired by any replica.
    pub(crate) async fn reload(&self) -> Result<(), AppError> {
        let state = load(&self.inner.db, &self.inner.master).await?;
        *self.inner.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        Ok(())
    }

    pub fn current_kid(&self) -> String {
        self.read().current.kid.clone()
    }

    /// Seals a small secret under the master key, bound to `context`.
    pub(crate) fn seal(&self, plaintext: &[u8], context: &[u8]) -> Vec<u8> {
        self.inner.master.seal(plaintext, context)
    }

    pub(crate) fn open(
        &self,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, berth_auth::seal::SealError> {
        self.inner.master.open(sealed, context)
    }

    /// The JSON Web Key Set (RFC 7517) of every published key.
    pub fn jwks(&self) -> serde_json::Value {
        let state = self.read();
        let mut keys: Vec<_> = state.verifying.values().map(VerifyingKey::jwk).collect();
        keys.sort_by(|a, b| a["kid"].as_str().cmp(&b["kid"].as_str()));
        serde_json::json!({ "keys": keys })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Loads the published keys, creating the first one if there is none (serialised across
/// replicas by a table lock).
async fn load(db: &PgPool, master: &MasterKey) -> Result<State, AppError> {
    let mut tx = db.begin().await?;
    berth_store::credentials::signing_keys::lock_table(&mut *tx).await?;
    let mut rows =
        berth_store::credentials::signing_keys::published(&mut *tx, chrono::Utc::now()).await?;
    if !rows.iter().any(|r| r.retired_at.is_none()) {
        let seed = berth_auth::random_bytes::<32>();
        let public = SigningKey::from_seed(String::new(), seed)
            .verifying_key()
            .to_bytes();
        let kid = kid_for(&public);
        let sealed = master.seal(&seed, kid.as_bytes());
        berth_store::credentials::signing_keys::insert(&mut *tx, &kid, ALGORITHM, &public, &sealed)
            .await?;
        rows =
            berth_store::credentials::signing_keys::published(&mut *tx, chrono::Utc::now()).await?;
    }
    tx.commit().await?;

    let mut verifying = HashMap::new();
    for row in &rows {
        if let Some(k) = VerifyingKey::from_bytes(row.kid.clone(), &row.public_key) {
            verifying.insert(row.kid.clone(), k);
        }
    }
    let newest = rows
        .iter()
        .find(|r| r.retired_at.is_none())
        .ok_or_else(|| AppError::Internal("no signing key".into()))?;
    let seed = master.open(&newest.sealed_private_key, newest.kid.as_bytes()).map_err(|_| {
        AppError::Internal(format!(
            "signing key {} cannot be unsealed: this server has a different master key than the one that created it \
             (set BERTH_MASTER_KEY to the same value on every replica)",
            newest.kid
        ))
    })?;
    let seed: [u8; 32] = seed
        .try_into()
        .map_err(|_| AppError::Internal("sealed signing key has the wrong length".into()))?;
    Ok(State {
        current: SigningKey::from_seed(newest.kid.clone(), seed),
        verifying,
    })
}

/// A key id derived from the public key, so it is stable and unique without coordination.
fn kid_for(public: &[u8; 32]) -> String {
    let digest = berth_auth::sha256(public);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..12])
}
