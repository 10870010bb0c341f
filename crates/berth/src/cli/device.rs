//! Polling the token endpoint during the RFC 8628 device flow, as a schedule (pure arithmetic)
//! and a driver that takes the clock, the sleep and the poll as arguments, so both can be tested
//! without a server or real time.
//!
//! The rules: wait `interval` after the device-code response and after every poll response
//! (measured from when the response arrived, so a slow network never shortens the gap); each
//! `slow_down` adds 5 s to the interval for good (RFC 8628 §3.5); a 429 waits for its
//! `Retry-After`; an unreachable server or a 5xx doubles the interval (the RFC's recommended
//! backoff) and is given up after a few in a row; nothing is polled once the code has expired.

use std::time::{Duration, Instant};

/// RFC 8628 §3.2: the interval when the server names none.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// RFC 8628 §3.5: what each `slow_down` adds.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// Backoff on transport errors doubles the interval up to this.
pub const MAX_BACKOFF_INTERVAL: Duration = Duration::from_secs(60);
/// Consecutive transport errors tolerated before giving up.
pub const MAX_TRANSIENT_FAILURES: u32 = 5;

/// What one poll of the token endpoint said.
#[derive(Debug)]
pub enum Poll<T> {
    Granted(T),
    /// `authorization_pending`.
    Pending,
    /// `slow_down`.
    SlowDown,
    /// HTTP 429, with the `Retry-After` if there was one.
    RateLimited(Option<Duration>),
    /// Unreachable server or a 5xx: worth retrying, more slowly.
    Transient(anyhow::Error),
}

#[derive(Debug)]
pub struct Schedule {
    interval: Duration,
    deadline: Instant,
    transient_failures: u32,
}

impl Schedule {
    /// `start` is when the device authorization response arrived.
    pub fn new(start: Instant, interval_secs: Option<u64>, expires_in_secs: u64) -> Schedule {
        let interval = match interval_secs {
            Some(s) => Duration::from_secs(s.max(1)),
            None => DEFAULT_INTERVAL,
        };
        Schedule {
            interval,
            deadline: start + Duration::from_secs(expires_in_secs),
            transient_failures: 0,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a poll at `at` could still succeed.
    pub fn open_at(&self, at: Instant) -> bool {
        at < self.deadline
    }

    /// How long to wait, from the arrival of `reply`, before the next poll; an error when it is
    /// time to give up. Not called for `Granted`.
    pub fn after<T>(&mut self, reply: Poll<T>) -> anyhow::Result<Duration> {
        if !matches!(reply, Poll::Transient(_)) {
            self.transient_failures = 0;
        }
        match reply {
            Poll::Granted(_) | Poll::Pending => Ok(self.interval),
            Poll::SlowDown => {
                self.interval += SLOW_DOWN_STEP;
                Ok(self.interval)
            }
            Poll::RateLimited(retry_after) => {
                Ok(retry_after.unwrap_or(SLOW_DOWN_STEP).max(self.interval))
            }
            Poll::Transient(e) => {
                self.transient_failures += 1;
                if self.transient_failures > MAX_TRANSIENT_FAILURES {
                    return Err(e.context(format!(
                        "giving up after {} failed attempts",
                        self.transient_failures
                    )));
                }
                self.interval = (self.interval * 2)
                    .min(MAX_BACKOFF_INTERVAL)
                    .max(self.interval);
                Ok(self.interval)
            }
        }
    }
}

/// Polls until the grant arrives, `poll` fails for good, or the code expires. The first poll
/// waits one interval, like every other.
pub async fn poll_until_granted<T>(
    mut schedule: Schedule,
    now: impl Fn() -> Instant,
    mut sleep: impl AsyncFnMut(Duration),
    mut poll: impl AsyncFnMut() -> anyhow::Result<Poll<T>>,
) -> anyhow::Result<T> {
    let mut wait = schedule.interval();
    loop {
        if !schedule.open_at(now() + wait) {
            anyhow::bail!(
                "the code expired before the sign-in was approved; run `berth login` again"
            );
        }
        sleep(wait).await;
        match poll().await? {
            Poll::Granted(t) => return Ok(t),
            reply => wait = schedule.after(reply)?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;

    #[test]
    fn slow_down_adds_five_seconds_for_good() {
        let start = Instant::now();
        let mut s = Schedule::new(start, Some(5), 900);
        assert_eq!(s.after(Poll::<()>::Pending).unwrap().as_secs(), 5);
        assert_eq!(s.after(Poll::<()>::SlowDown).unwrap().as_secs(), 10);
        assert_eq!(s.after(Poll::<()>::Pending).unwrap().as_secs(), 10);
        assert_eq!(s.after(Poll::<()>::SlowDown).unwrap().as_secs(), 15);
        assert_eq!(s.after(Poll::<()>::Pending).unwrap().as_secs(), 15);
    }

    #[test]
    fn defaults_and_floors() {
        let start = Instant::now();
        assert_eq!(Schedule::new(start, None, 900).interval(), DEFAULT_INTERVAL);
        assert_eq!(Schedule::new(start, Some(0), 900).interval().as_secs(), 1);
        let s = Schedule::new(start, Some(5), 900);
        assert!(s.open_at(start + Duration::from_secs(899)));
        assert!(!s.open_at(start + Duration::from_secs(900)));
    }

    #[test]
    fn rate_limits_wait_without_changing_the_interval() {
        let mut s = Schedule::new(Instant::now(), Some(5), 900);
        let wait = s.after(Poll::<()>::RateLimited(Some(Duration::from_secs(30))));
        assert_eq!(wait.unwrap().as_secs(), 30);
        let wait = s.after(Poll::<()>::RateLimited(Some(Duration::from_secs(1))));
        assert_eq!(wait.unwrap().as_secs(), 5);
        assert_eq!(s.interval().as_secs(), 5);
    }

    #[test]
    fn transport_errors_back_off_then_give_up() {
        let mut s = Schedule::new(Instant::now(), Some(5), 900);
        let waits: Vec<u64> = (0..MAX_TRANSIENT_FAILURES)
            .map(|_| {
                s.after(Poll::<()>::Transient(anyhow::anyhow!("refused")))
                    .unwrap()
                    .as_secs()
            })
            .collect();
        assert_eq!(waits, [10, 20, 40, 60, 60]);
        // A success in between resets the count, not the slower interval.
        assert_eq!(s.after(Poll::<()>::Pending).unwrap().as_secs(), 60);
        for _ in 0..MAX_TRANSIENT_FAILURES {
            s.after(Poll::<()>::Transient(anyhow::anyhow!("refused")))
                .unwrap();
        }
        let err = s
            .after(Poll::<()>::Transient(anyhow::anyhow!("refused")))
            .unwrap_err();
        assert!(format!("{err:#}").contains("refused"));
    }

    /// Runs the driver against a fake clock and scripted replies; returns the result and the
    /// seconds (since start) at which each poll was sent.
    fn drive(
        interval: Option<u64>,
        expires_in: u64,
        latency: Duration,
        replies: Vec<Poll<&'static str>>,
    ) -> (anyhow::Result<&'static str>, Vec<u64>) {
        let start = Instant::now();
        let clock = Cell::new(start);
        let sent = RefCell::new(Vec::new());
        let replies = RefCell::new(VecDeque::from(replies));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result = runtime.block_on(poll_until_granted(
            Schedule::new(start, interval, expires_in),
            || clock.get(),
            async |d| clock.set(clock.get() + d),
            async || {
                sent.borrow_mut().push((clock.get() - start).as_secs());
                clock.set(clock.get() + latency);
                Ok(replies
                    .borrow_mut()
                    .pop_front()
                    .expect("polled more often than scripted"))
            },
        ));
        (result, sent.into_inner())
    }

    #[test]
    fn driver_waits_the_interval_from_each_response() {
        let (result, sent) = drive(
            Some(5),
            900,
            Duration::from_secs(1),
            vec![
                Poll::Pending,
                Poll::SlowDown,
                Poll::Pending,
                Poll::Granted("tokens"),
            ],
        );
        assert_eq!(result.unwrap(), "tokens");
        // 5; reply at 6 → +5 = 11; reply at 12, slow_down → +10 = 22; reply at 23 → +10 = 33.
        assert_eq!(sent, [5, 11, 22, 33]);
    }

    #[test]
    fn driver_stops_at_expiry_without_polling_late() {
        let (result, sent) = drive(
            Some(5),
            12,
            Duration::ZERO,
            vec![Poll::Pending, Poll::Pending, Poll::Pending],
        );
        assert!(format!("{:#}", result.unwrap_err()).contains("expired"));
        assert_eq!(sent, [5, 10]);
    }

    #[test]
    fn driver_stops_on_a_fatal_reply() {
        let start = Instant::now();
        let clock = Cell::new(start);
        let polls = Cell::new(0);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let result: anyhow::Result<()> = runtime.block_on(poll_until_granted(
            Schedule::new(start, Some(5), 900),
            || clock.get(),
            async |d| clock.set(clock.get() + d),
            async || {
                polls.set(polls.get() + 1);
                if polls.get() == 2 {
                    anyhow::bail!("access_denied")
                }
                Ok(Poll::Pending)
            },
        ));
        assert!(result.unwrap_err().to_string().contains("access_denied"));
        assert_eq!(polls.get(), 2);
    }
}
