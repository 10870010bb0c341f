//! How many spares to keep: as many as creates asked for recently, within a floor and a
//! ceiling, never more than the memory budget allows, and none while the host is short of
//! memory. Pure arithmetic over what the keeper observes, so it is tested without a server.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The configured bounds of the pool (per installed version).
#[derive(Debug, Clone)]
pub struct SparePolicy {
    /// Spares kept even when nobody creates (0 turns the pool off).
    pub floor: usize,
    /// Spares kept at most, however busy creates are.
    pub ceiling: usize,
    /// The memory sizes of all spares together stay within this (bytes): each spare counts
    /// at its memory size, what it may use once it is claimed.
    pub memory_budget: u64,
    /// While the host has less memory available than this (bytes), the pool gives its spares
    /// back and makes none: running instances come first.
    pub memory_reserve: u64,
    /// Creates within this window make the pool's demand.
    pub demand_window: Duration,
    /// Spares made at once (each copies a template and starts a server) once creates pause
    /// (fewer meanwhile: see [`refill_parallel`]), so refilling does not slow the creates down.
    pub refill_parallel: usize,
    /// Stopped copies of the template kept on disk (per version) for creates that find no
    /// spare: they cost disk only, and are kept under memory pressure too.
    pub copies: usize,
}

impl SparePolicy {
    /// The pool's size for `demand` recent creates, spares of `spare_bytes` each, with
    /// `available` bytes of memory free on the host (None: unknown, assume plenty).
    pub fn target(&self, demand: usize, spare_bytes: u64, available: Option<u64>) -> usize {
        if self.floor == 0 || available.is_some_and(|a| a < self.memory_reserve) {
            return 0;
        }
        let affordable = usize::try_from(self.memory_budget / spare_bytes.max(1)).unwrap_or(0);
        demand
            .clamp(self.floor, self.ceiling.max(self.floor))
            .min(affordable)
    }
}

/// What the keeper knows between its rounds: recent creates, spares being made, and a way to
/// wake it at once.
#[derive(Default)]
pub(crate) struct PoolState {
    /// When each recent create that a spare could have served was made.
    creates: Mutex<VecDeque<Instant>>,
    /// When the last create of any kind was made.
    last_create: Mutex<Option<Instant>>,
    /// Spares being made or backed up, or template copies made, right now.
    busy: AtomicUsize,
    /// Create requests being answered right now (a claim included).
    creating: AtomicUsize,
    /// Versions whose template copies are all there (until a create or a spare takes one).
    copies_full: Mutex<std::collections::HashSet<u32>>,
    pub wake: tokio::sync::Notify,
}

impl PoolState {
    /// A create was made (`counts`: one a spare could serve). It may have taken a template
    /// copy.
    pub fn record_create(&self, now: Instant, counts: bool) {
        if counts {
            self.creates
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(now);
        }
        *self.last_create.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
        self.copies_taken();
        self.wake.notify_one();
    }

    /// A template copy may have been used: count them again.
    pub fn copies_taken(&self) {
        self.copies_full
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn copies_are_full(&self, major: u32) -> bool {
        self.copies_full
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&major)
    }

    pub fn set_copies_full(&self, major: u32) {
        self.copies_full
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(major);
    }

    /// Creates within `window` before `now`; older ones are forgotten.
    pub fn demand(&self, now: Instant, window: Duration) -> usize {
        let mut creates = self.creates.lock().unwrap_or_else(|e| e.into_inner());
        while creates
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > window)
        {
            creates.pop_front();
        }
        creates.len()
    }

    /// How long since the last create (None: none since Berth started).
    pub fn quiet_for(&self, now: Instant) -> Option<Duration> {
        let last = self.last_create.lock().unwrap_or_else(|e| e.into_inner());
        last.map(|t| now.saturating_duration_since(t))
    }

    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::SeqCst)
    }

    pub fn creating(&self) -> usize {
        self.creating.load(Ordering::SeqCst)
    }

    /// Counts one piece of work until the returned guard is dropped (also on a panic), and
    /// wakes the keeper then.
    pub fn start_work(self: &std::sync::Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone(), Counter::Work)
    }

    /// Counts one create request until the returned guard is dropped.
    pub fn start_create(self: &std::sync::Arc<Self>) -> Busy {
        self.creating.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone(), Counter::Creates)
    }
}

enum Counter {
    Work,
    Creates,
}

/// One piece of work or create request, counted until dropped.
pub(crate) struct Busy(std::sync::Arc<PoolState>, Counter);

impl Drop for Busy {
    fn drop(&mut self) {
        let counter = match self.1 {
            Counter::Work => &self.0.busy,
            Counter::Creates => &self.0.creating,
        };
        counter.fetch_sub(1, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

/// How many spares may be made at once: one per core (`policy.refill_parallel`) once creates
/// have paused (`calm`); during a burst (several creates being answered) none while the pool
/// has any — the cores are the creates', and a spare made now would be ready only after the
/// burst — and one at a time once it is empty, so sustained concurrency does not starve it;
/// one at a time while creates come one after another and the pool is down to less than half
/// its `target`.
pub(crate) fn refill_parallel(
    policy: &SparePolicy,
    calm: bool,
    creating: usize,
    have: usize,
    target: usize,
) -> usize {
    let burst = creating > 1;
    match (calm, burst, have * 2 < target) {
        (true, _, _) => policy.refill_parallel,
        (false, true, _) => usize::from(have == 0 && target > 0),
        (false, false, low) => usize::from(low),
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (None where there is no such file).
pub(crate) fn memory_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&text)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn policy() -> SparePolicy {
        SparePolicy {
            floor: 2,
            ceiling: 10,
            memory_budget: 4096 * MB,
            memory_reserve: 512 * MB,
            demand_window: Duration::from_secs(300),
            refill_parallel: 2,
            copies: 10,
        }
    }

    #[test]
    fn the_pool_follows_demand_within_its_bounds() {
        let p = policy();
        assert_eq!(p.target(0, 256 * MB, None), 2, "the floor when idle");
        assert_eq!(p.target(7, 256 * MB, None), 7);
        assert_eq!(p.target(50, 256 * MB, None), 10, "never above the ceiling");
    }

    #[test]
    fn the_memory_budget_caps_the_pool() {
        let p = SparePolicy {
            memory_budget: 1024 * MB,
            ..policy()
        };
        assert_eq!(p.target(50, 256 * MB, None), 4);
        assert_eq!(p.target(50, 2048 * MB, None), 0, "not even one fits");
    }

    #[test]
    fn memory_pressure_empties_the_pool() {
        let p = policy();
        assert_eq!(p.target(50, 256 * MB, Some(100 * MB)), 0);
        assert_eq!(p.target(50, 256 * MB, Some(8192 * MB)), 10);
    }

    #[test]
    fn a_floor_of_zero_turns_the_pool_off() {
        let p = SparePolicy {
            floor: 0,
            ..policy()
        };
        assert_eq!(p.target(50, 256 * MB, None), 0);
    }

    #[test]
    fn demand_forgets_creates_older_than_the_window() {
        let s = PoolState::default();
        let t0 = Instant::now();
        for i in 0..3 {
            s.record_create(t0 + Duration::from_secs(i), true);
        }
        s.record_create(t0 + Duration::from_secs(3), false);
        let window = Duration::from_secs(10);
        assert_eq!(s.demand(t0 + Duration::from_secs(5), window), 3);
        // (At 11.5 s only the create of 2 s is within 10 s.)
        assert_eq!(s.demand(t0 + Duration::from_millis(11_500), window), 1);
        assert_eq!(s.demand(t0 + Duration::from_secs(60), window), 0);
        assert_eq!(
            s.quiet_for(t0 + Duration::from_secs(60)),
            Some(Duration::from_secs(57)),
            "any create counts as activity"
        );
    }

    #[test]
    fn refilling_yields_to_bursts_and_keeps_up_with_sequences() {
        let p = policy();
        assert_eq!(refill_parallel(&p, true, 0, 0, 10), 2, "calm: one per core");
        assert_eq!(refill_parallel(&p, false, 5, 3, 10), 0, "a burst: none");
        assert_eq!(
            refill_parallel(&p, false, 5, 0, 10),
            1,
            "a burst, pool empty"
        );
        assert_eq!(refill_parallel(&p, false, 5, 0, 0), 0, "no pool wanted");
        assert_eq!(
            refill_parallel(&p, false, 1, 4, 10),
            1,
            "a sequence, low pool"
        );
        assert_eq!(
            refill_parallel(&p, false, 1, 6, 10),
            0,
            "a sequence, pool above half"
        );
        assert_eq!(refill_parallel(&p, false, 0, 6, 10), 0);
    }

    #[test]
    fn busy_work_is_counted_until_its_guard_drops() {
        let s = std::sync::Arc::new(PoolState::default());
        let a = s.start_work();
        let b = s.start_work();
        assert_eq!(s.busy(), 2);
        drop(a);
        assert_eq!(s.busy(), 1);
        let c = s.start_create();
        assert_eq!((s.busy(), s.creating()), (1, 1));
        drop(b);
        assert_eq!(s.busy(), 0);
        drop(c);
        assert_eq!(s.creating(), 0);
    }

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(parse_mem_available(text), Some(2048 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
    }
}
