//! Whether the store answers right now: one flag shared by everything that uses the store, so
//! that while it is down requests are refused at once (503 with `Retry-After`) instead of each
//! waiting for the pool's acquire timeout, and background loops wait instead of spinning.
//!
//! A probe on a connection of its own (not the pool's, so a busy pool never reads as a dead
//! store) runs `SELECT 1` every second and flips the flag both ways; while the store is down
//! it reconnects with a short backoff. The supervisor of Berth's own PostgreSQL flips it down
//! as soon as the postmaster exits, and callers that see a connection error report it. The
//! flag is exported as the gauge `berth_store_up`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{watch, Notify};

/// What a client is told to wait (`Retry-After`) while the store is down: about the time a
/// restart of Berth's own PostgreSQL takes, and the probe's longest pause.
pub const RETRY_AFTER_SECS: u64 = 2;

/// Between probes while the store answers.
const UP_INTERVAL: Duration = Duration::from_secs(1);
/// Between probes while it does not: doubling from the first to the last.
const DOWN_FIRST: Duration = Duration::from_millis(250);
const DOWN_MAX: Duration = Duration::from_secs(2);
/// A probe (connecting included) that takes longer than this counts as unanswered. A store
/// that refuses or drops connections is down at once; one that does not answer only after
/// [`SILENT_PROBES`] probes in a row, so a slow moment of a busy machine is not an outage.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const SILENT_PROBES: u32 = 2;

/// The shared flag. Cheap to clone; every clone is the same flag.
#[derive(Clone)]
pub struct StoreHealth {
    inner: Arc<Inner>,
}

struct Inner {
    up: watch::Sender<bool>,
    /// Asks the probe to look now (after a restart, or when someone saw an error).
    probe_now: Notify,
}

impl StoreHealth {
    /// A flag that says "up": it is made once the store has answered at start-up.
    pub fn new_up() -> StoreHealth {
        metrics::gauge!("berth_store_up").set(1.0);
        StoreHealth {
            inner: Arc::new(Inner {
                up: watch::channel(true).0,
                probe_now: Notify::new(),
            }),
        }
    }

    pub fn is_up(&self) -> bool {
        *self.inner.up.borrow()
    }

    /// Records that the store stopped answering (logged once per outage).
    pub fn mark_down(&self, reason: &str) {
        if self
            .inner
            .up
            .send_if_modified(|up| std::mem::replace(up, false))
        {
            metrics::gauge!("berth_store_up").set(0.0);
            tracing::error!(
                reason,
                "the store is unavailable: requests that need it get 503 until it answers again"
            );
            self.inner.probe_now.notify_one();
        }
    }

    /// Records that the store answers again (logged once per outage).
    pub fn mark_up(&self) {
        if self
            .inner
            .up
            .send_if_modified(|up| !std::mem::replace(up, true))
        {
            metrics::gauge!("berth_store_up").set(1.0);
            tracing::warn!("the store answers again");
        }
    }

    /// Marks the store down when `err` says the connection to it failed; true if it did.
    pub fn report(&self, err: &sqlx::Error) -> bool {
        let lost = is_connection_error(err);
        if lost {
            self.mark_down(&err.to_string());
        }
        lost
    }

    /// Asks the probe to check the store now rather than at its next tick.
    pub fn probe_soon(&self) {
        self.inner.probe_now.notify_one();
    }

    /// Waits until the store is up (returns at once when it is).
    pub async fn wait_up(&self) {
        let mut rx = self.inner.up.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|up| *up).await;
    }

    /// Like [`Self::wait_up`], for at most `limit`; true if the store is up.
    pub async fn wait_up_for(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.wait_up()).await.is_ok()
    }

    /// Starts the probe for the store at `options`. It runs until the returned guard is
    /// dropped (so a store stopped at shutdown is not reported as an outage).
    #[must_use = "the probe stops when this is dropped"]
    pub fn spawn_probe(&self, options: PgConnectOptions) -> Probe {
        let health = self.clone();
        Probe(tokio::spawn(async move { health.probe(options).await }))
    }

    async fn probe(&self, options: PgConnectOptions) {
        let mut conn: Option<PgConnection> = None;
        let mut down_delay = DOWN_FIRST;
        let mut silent = 0;
        loop {
            let probed = tokio::time::timeout(PROBE_TIMEOUT, probe_once(&options, &mut conn));
            let (failure, timed_out) = match probed.await {
                Ok(Ok(())) => (None, false),
                Ok(Err(e)) => (Some(e.to_string()), false),
                Err(_) => (
                    Some(format!(
                        "{} health probe(s) in a row got no answer within {PROBE_TIMEOUT:?}",
                        silent + 1
                    )),
                    true,
                ),
            };
            silent = if timed_out { silent + 1 } else { 0 };
            let delay = match failure {
                None => {
                    self.mark_up();
                    down_delay = DOWN_FIRST;
                    UP_INTERVAL
                }
                // One probe without an answer: look again soon before calling it an outage.
                Some(_) if timed_out && silent < SILENT_PROBES => {
                    conn = None;
                    DOWN_FIRST
                }
                Some(reason) => {
                    conn = None;
                    self.mark_down(&reason);
                    let delay = down_delay;
                    down_delay = (down_delay * 2).min(DOWN_MAX);
                    delay
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.inner.probe_now.notified() => {}
            }
        }
    }
}

/// The running probe; dropping it stops it.
pub struct Probe(tokio::task::JoinHandle<()>);

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn probe_once(
    options: &PgConnectOptions,
    conn: &mut Option<PgConnection>,
) -> Result<(), sqlx::Error> {
    if conn.is_none() {
        *conn = Some(options.connect().await?);
    }
    let c = conn.as_mut().expect("connected above");
    c.ping().await
}

/// Whether `err` means the store could not be reached or went away (rather than that one
/// statement failed): I/O errors, and the SQLSTATEs of a server that is shutting down,
/// crashed, still recovering, or unreachable (class 08, 57P01–57P03). A pool timeout is not
/// one: it means every connection is busy, and a busy pool must never read as a dead store
/// (the probe, on its own connection, sees a store that is really away).
pub fn is_connection_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn flips_both_ways_and_wakes_waiters() {
        let h = StoreHealth::new_up();
        assert!(h.is_up());
        assert!(h.wait_up_for(Duration::from_millis(1)).await);
        h.mark_down("test");
        assert!(!h.is_up());
        assert!(!h.wait_up_for(Duration::from_millis(10)).await);
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.wait_up().await })
        };
        h.mark_up();
        waiter.await.unwrap();
        assert!(h.is_up());
    }

    #[test]
    fn tells_connection_errors_from_statement_errors() {
        assert!(!is_connection_error(&sqlx::Error::PoolTimedOut));
        assert!(is_connection_error(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused
        ))));
        assert!(!is_connection_error(&sqlx::Error::RowNotFound));
        assert!(!is_connection_error(&sqlx::Error::PoolClosed));
    }
}
