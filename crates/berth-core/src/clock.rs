//! "Now", for every decision about expiry: access tokens (JWT `exp`), sessions, refresh tokens
//! and their grace period, token families, device codes, user tokens, API keys and clients, and
//! the credential cache; and, as a monotonic [`App::instant_now`], the spare pool's demand
//! window and idle time. Everything reads these, so a test can move time forward instead of
//! sleeping.
//!
//! Production builds always use the system clock. Builds with debug assertions (the ones
//! `cargo test` runs) also honour the environment variable `BERTH_TEST_CLOCK_FILE`: the path of
//! a file holding a whole number of seconds added to the system clock (absent or empty: 0). The
//! test rewrites it to advance time; it is read at every call, so the change takes effect at
//! once. A release build does not contain this code at all.

use chrono::{DateTime, Utc};

use crate::App;

/// Where "now" comes from.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clock {
    /// A file with an offset in seconds (debug builds only, for tests).
    #[cfg(debug_assertions)]
    offset_file: Option<std::path::PathBuf>,
    /// The largest offset [`Clock::instant`] has used (debug builds only).
    #[cfg(debug_assertions)]
    highest_offset: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    /// The system clock, or in a debug build the one `BERTH_TEST_CLOCK_FILE` shifts.
    pub(crate) fn from_env() -> Clock {
        #[cfg(debug_assertions)]
        let offset_file: Option<std::path::PathBuf> =
            std::env::var_os("BERTH_TEST_CLOCK_FILE").map(Into::into);
        #[cfg(debug_assertions)]
        if let Some(path) = &offset_file {
            tracing::warn!(path = %path.display(), "test clock: expiry follows the offset in this file");
        }
        Clock {
            #[cfg(debug_assertions)]
            offset_file,
            #[cfg(debug_assertions)]
            highest_offset: Default::default(),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.offset_secs())
    }

    /// A monotonic "now" for durations measured inside Berth (how long since the last create),
    /// moved forward by the same offset: by the largest offset seen so far, so that it never
    /// goes back when a test sets the clock back (a negative offset counts as none).
    pub(crate) fn instant(&self) -> std::time::Instant {
        let offset = self.offset_secs().max(0);
        #[cfg(debug_assertions)]
        let offset = self
            .highest_offset
            .fetch_max(offset, std::sync::atomic::Ordering::Relaxed)
            .max(offset);
        let now = std::time::Instant::now();
        now.checked_add(std::time::Duration::from_secs(offset.unsigned_abs()))
            .unwrap_or(now)
    }

    #[cfg(debug_assertions)]
    fn offset_secs(&self) -> i64 {
        let Some(path) = &self.offset_file else {
            return 0;
        };
        // A missing or half-written file reads as no offset; the test writes it atomically.
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    #[cfg(not(debug_assertions))]
    fn offset_secs(&self) -> i64 {
        0
    }
}

impl App {
    /// The current time, for every expiry decision (see [`Clock`]).
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// A monotonic "now" (see [`Clock::instant`]).
    pub(crate) fn instant_now(&self) -> std::time::Instant {
        self.inner.clock.instant()
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn the_offset_file_moves_now_forward() {
        let path = std::env::temp_dir().join(format!("berth-clock-test-{}", std::process::id()));
        let clock = Clock {
            offset_file: Some(path.clone()),
            ..Clock::default()
        };
        // No file yet: no offset.
        assert_eq!(clock.offset_secs(), 0);
        std::fs::write(&path, "3600\n").unwrap();
        assert_eq!(clock.offset_secs(), 3600);
        assert!((clock.now() - Utc::now()).num_seconds() >= 3599);
        let ahead = std::time::Instant::now() + std::time::Duration::from_secs(3599);
        assert!(clock.instant() >= ahead);
        // Not a number: no offset, rather than a failure; the monotonic now stays ahead.
        std::fs::write(&path, "soon").unwrap();
        assert_eq!(clock.offset_secs(), 0);
        assert!(
            clock.instant() >= ahead,
            "the monotonic now never goes back"
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(Clock::default().offset_secs(), 0);
    }
}
