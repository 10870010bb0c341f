//! A short-lived cache of authenticated principals, keyed by the SHA-256 of the presented
//! credential, so a hot credential costs a hash lookup instead of a signature check and two
//! queries. Revocations evict entries at once (locally, and on other replicas through
//! LISTEN/NOTIFY); the TTL bounds staleness should a notification ever be missed.
//!
//! It also keeps a snapshot of each active user (their row and everything they hold), so
//! "who am I" needs no query either; changes to a user or their memberships drop it.
//!
//! A generation counter closes the race where a request loads a credential, a revocation
//! evicts, and the request then caches what it loaded before the revocation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::Principal;

pub(crate) const TTL: Duration = Duration::from_secs(30);

pub(crate) struct Entry {
    pub principal: Principal,
    valid_until: Instant,
    /// Unix seconds of the last `last_used_at` write (API keys only).
    pub last_touch: AtomicI64,
}

pub(crate) struct UserSnapshot {
    pub user: berth_types::User,
    pub capabilities: Vec<berth_types::Permission>,
    valid_until: Instant,
}

pub(crate) struct CredentialCache {
    map: RwLock<HashMap<[u8; 32], Arc<Entry>>>,
    /// OAuth clients by `client_id`, for the token endpoint.
    clients: RwLock<HashMap<String, (Arc<berth_store::credentials::clients::ClientRow>, Instant)>>,
    users: RwLock<HashMap<Uuid, Arc<UserSnapshot>>>,
    generation: AtomicU64,
    capacity: usize,
}

impl CredentialCache {
    pub fn new(capacity: usize) -> Self {
        CredentialCache {
            map: RwLock::new(HashMap::new()),
            users: RwLock::new(HashMap::new()),
            clients: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            capacity,
        }
    }

    /// The entry for a credential, unless it is stale or the credential has expired by
    /// `now_unix` (the app's clock: the TTL alone follows the monotonic clock).
    pub fn get(&self, key: &[u8; 32], now_unix: i64) -> Option<Arc<Entry>> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|e| e.valid_until > Instant::now())
            .filter(|e| {
                e.principal
                    .expires_at
                    .is_none_or(|exp| exp.timestamp() > now_unix)
            })
            .cloned()
    }

    /// Read before loading from the store; pass to [`Self::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn insert(
        &self,
        key: [u8; 32],
        principal: Principal,
        generation: u64,
        now_unix: i64,
    ) -> Arc<Entry> {
        // Never cache past the credential's own expiry.
        let ttl = principal
            .expires_at
            .map(|exp| {
                Duration::from_secs(
                    (exp.timestamp() - now_unix).clamp(0, TTL.as_secs() as i64) as u64
                )
            })
            .unwrap_or(TTL);
        let entry = Arc::new(Entry {
            principal,
            valid_until: Instant::now() + ttl,
            last_touch: AtomicI64::new(now_unix),
        });
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            if map.len() >= self.capacity {
                let now = Instant::now();
                map.retain(|_, e| e.valid_until > now);
                if map.len() >= self.capacity {
                    map.clear();
                }
            }
            map.insert(key, entry.clone());
        }
        entry
    }

    /// Drops every entry for this credential or user id.
    pub fn evict(&self, id: Uuid) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.retain(|_, e| {
            e.principal.credential_id != id
                && e.principal.user_id != id
                && e.principal.token_id != Some(id)
        });
        drop(map);
        self.forget_user(id);
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (c, _)| c.id != id && c.owner_id != Some(id));
    }

    pub fn client(
        &self,
        client_id: &str,
    ) -> Option<Arc<berth_store::credentials::clients::ClientRow>> {
        let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
        clients
            .get(client_id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(c, _)| c.clone())
    }

    pub fn insert_client(
        &self,
        row: berth_store::credentials::clients::ClientRow,
        generation: u64,
    ) -> Arc<berth_store::credentials::clients::ClientRow> {
        let row = Arc::new(row);
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            if clients.len() >= self.capacity {
                clients.clear();
            }
            clients.insert(row.client_id.clone(), (row.clone(), Instant::now() + TTL));
        }
        row
    }

    pub fn user(&self, id: Uuid) -> Option<Arc<UserSnapshot>> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users
            .get(&id)
            .filter(|u| u.valid_until > Instant::now())
            .cloned()
    }

    pub fn insert_user(
        &self,
        user: berth_types::User,
        capabilities: Vec<berth_types::Permission>,
        generation: u64,
    ) -> Arc<UserSnapshot> {
        let id = user.id;
        let snapshot = Arc::new(UserSnapshot {
            user,
            capabilities,
            valid_until: Instant::now() + TTL,
        });
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            if users.len() >= self.capacity {
                users.clear();
            }
            users.insert(id, snapshot.clone());
        }
        snapshot
    }

    /// Drops the snapshot of one user (their profile or memberships changed).
    pub fn forget_user(&self, id: Uuid) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        users.remove(&id);
    }
}

impl CredentialCache {
    /// Drops everything (after a possibly missed notification).
    pub fn clear(&self) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        map.clear();
        drop(map);
        self.users
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.clients
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
