//! `--wait`: polls an instance until it reaches the status an operation leads to, reporting
//! each status change with the time elapsed. Polls every 200 ms at first, backing off to 1 s,
//! and back to 200 ms after every change. The loop is separate from the network and the clock
//! (both are passed in) so that it can be tested.

use std::future::Future;
use std::time::Duration;

use berth_types::{InstanceStatus, JobState};
use serde_json::Value;

use super::http::HttpError;

const FIRST_INTERVAL: Duration = Duration::from_millis(200);
const MAX_INTERVAL: Duration = Duration::from_secs(1);

// Statuses are compared as the strings the server sent, so that one this client does not know
// (from a newer server) is simply waited through.
const INSTANCE_FAILURES: &[&str] = &[InstanceStatus::Failed.as_str()];
const INSTANCE_SETTLED: &[&str] = &[
    InstanceStatus::Running.as_str(),
    InstanceStatus::Paused.as_str(),
    InstanceStatus::Deleted.as_str(),
];
const JOB_TARGETS: &[&str] = &[JobState::Success.as_str()];
const JOB_FAILURES: &[&str] = &[JobState::Failure.as_str(), JobState::Error.as_str()];

/// What a wait is for: the statuses that end it well, those that end it badly, and those
/// that are settled but not what was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Goal<'a> {
    pub targets: &'a [&'a str],
    pub failures: &'a [&'a str],
    pub settled: &'a [&'a str],
}

impl<'a> Goal<'a> {
    /// An instance reaching one of `targets`; `failed` fails, and it may also settle as
    /// `running`, `paused` or `deleted` (gone).
    pub fn instance(targets: &'a [&'a str]) -> Goal<'a> {
        Goal {
            targets,
            failures: INSTANCE_FAILURES,
            settled: INSTANCE_SETTLED,
        }
    }

    /// A job finishing: `SUCCESS`, or `FAILURE`/`ERROR`.
    pub fn job() -> Goal<'static> {
        Goal {
            targets: JOB_TARGETS,
            failures: JOB_FAILURES,
            settled: &[],
        }
    }
}

/// What one poll saw. An instance that is gone (404) is seen as `deleted`.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub status: String,
    pub message: Option<String>,
    /// The instance as the API returned it (None once it is gone).
    pub raw: Option<Value>,
}

impl Observation {
    pub fn gone() -> Observation {
        Observation {
            status: InstanceStatus::Deleted.to_string(),
            message: None,
            raw: None,
        }
    }

    pub fn from_instance(raw: Value) -> Observation {
        Observation::from_fields(raw, "status", "status_message")
    }

    /// A job: its state, and its error (or else the step it is on).
    pub fn from_job(raw: Value) -> Observation {
        let mut o = Observation::from_fields(raw, "state", "error");
        if o.message.is_none() {
            let step = o
                .raw
                .as_ref()
                .and_then(|r| r.get("step"))
                .and_then(Value::as_str);
            o.message = step.map(|s| format!("step {s}"));
        }
        o
    }

    fn from_fields(raw: Value, status: &str, message: &str) -> Observation {
        let text = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_owned);
        Observation {
            status: text(status).unwrap_or_else(|| "unknown".into()),
            message: text(message).filter(|m| !m.is_empty()),
            raw: Some(raw),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// One of the targets.
    Reached(Observation),
    /// `failed` (or a failed job): the message says why.
    Failed(Observation),
    /// Settled somewhere else (paused while waiting for running, or deleted meanwhile).
    Elsewhere(Observation),
    /// Still changing when the time ran out; the last observation, if any.
    TimedOut(Option<Observation>),
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Done,
    Failed,
    Elsewhere,
    Continue,
}

fn judge(goal: Goal<'_>, status: &str) -> Verdict {
    if goal.targets.contains(&status) {
        Verdict::Done
    } else if goal.failures.contains(&status) {
        Verdict::Failed
    } else if goal.settled.contains(&status) {
        Verdict::Elsewhere
    } else {
        // Transitional, or a status this client does not know: keep watching.
        Verdict::Continue
    }
}

/// The next pause between polls.
fn next_interval(current: Duration) -> Duration {
    (current.mul_f64(1.5)).min(MAX_INTERVAL)
}

/// Polls with `fetch` until the status is one of the goal's targets, a failure, another
/// settled status, or `timeout` passes. `report` hears about every change of status (and of status message).
/// Transient failures (the server unreachable or failing) are retried until the timeout; any
/// other error ends the wait.
pub async fn wait_for<F, Fut, S, SFut>(
    goal: Goal<'_>,
    timeout: Duration,
    elapsed: impl Fn() -> Duration,
    mut fetch: F,
    mut sleep: S,
    mut report: impl FnMut(Duration, &Observation),
) -> anyhow::Result<Outcome>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Observation>>,
    S: FnMut(Duration) -> SFut,
    SFut: Future<Output = ()>,
{
    let mut last: Option<Observation> = None;
    let mut interval = FIRST_INTERVAL;
    let mut warned = false;
    loop {
        match fetch().await {
            Ok(seen) => {
                warned = false;
                let changed = last
                    .as_ref()
                    .is_none_or(|l| l.status != seen.status || l.message != seen.message);
                if changed {
                    report(elapsed(), &seen);
                    interval = FIRST_INTERVAL;
                }
                match judge(goal, &seen.status) {
                    Verdict::Done => return Ok(Outcome::Reached(seen)),
                    Verdict::Failed => return Ok(Outcome::Failed(seen)),
                    Verdict::Elsewhere => return Ok(Outcome::Elsewhere(seen)),
                    Verdict::Continue => last = Some(seen),
                }
            }
            Err(e) if is_transient(&e) => {
                if !warned {
                    eprintln!("berth: warning: {e:#}; retrying");
                    warned = true;
                }
            }
            Err(e) => return Err(e),
        }
        let spent = elapsed();
        if spent >= timeout {
            return Ok(Outcome::TimedOut(last));
        }
        sleep(interval.min(timeout - spent)).await;
        interval = next_interval(interval);
    }
}

/// The server could not be reached or failed on its side: worth trying again.
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.downcast_ref::<HttpError>()
        .is_some_and(HttpError::is_transient)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use std::collections::VecDeque;
    use std::rc::Rc;

    fn seen(status: &str, message: Option<&str>) -> anyhow::Result<Observation> {
        Ok(Observation::from_instance(serde_json::json!({
            "status": status,
            "status_message": message,
        })))
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Runs the loop over scripted answers with a fake clock; returns the outcome, the reports
    /// (elapsed ms, status) and the pauses taken.
    fn run(
        targets: &[&str],
        timeout: Duration,
        script: Vec<anyhow::Result<Observation>>,
    ) -> (anyhow::Result<Outcome>, Vec<(u128, String)>, Vec<Duration>) {
        let now = Rc::new(Cell::new(Duration::ZERO));
        let script = Rc::new(RefCell::new(VecDeque::from(script)));
        let sleeps = Rc::new(RefCell::new(Vec::new()));
        let mut reports = Vec::new();
        let outcome = block_on(wait_for(
            Goal::instance(targets),
            timeout,
            {
                let now = now.clone();
                move || now.get()
            },
            || {
                let next = script
                    .borrow_mut()
                    .pop_front()
                    .unwrap_or_else(|| seen("creating", None));
                async move { next }
            },
            |d| {
                now.set(now.get() + d);
                sleeps.borrow_mut().push(d);
                async {}
            },
            |at, o| reports.push((at.as_millis(), o.status.clone())),
        ));
        let sleeps = sleeps.borrow().clone();
        (outcome, reports, sleeps)
    }

    #[test]
    fn reports_changes_and_stops_at_the_target() {
        let (outcome, reports, sleeps) = run(
            &["running"],
            Duration::from_secs(300),
            vec![
                seen("creating", None),
                seen("creating", None),
                seen("creating", None),
                seen("running", None),
            ],
        );
        match outcome.unwrap() {
            Outcome::Reached(o) => assert_eq!(o.status, "running"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            reports,
            [
                (0, "creating".to_owned()),
                (200 + 300 + 450, "running".to_owned())
            ]
        );
        assert_eq!(
            sleeps,
            [200, 300, 450].map(Duration::from_millis).to_vec(),
            "backs off by 1.5x"
        );
    }

    #[test]
    fn backoff_is_capped_and_resets_on_change() {
        let mut script: Vec<_> = (0..8).map(|_| seen("creating", None)).collect();
        script.push(seen("repairing", None));
        script.push(seen("repairing", None));
        script.push(seen("running", None));
        let (outcome, _, sleeps) = run(&["running"], Duration::from_secs(300), script);
        assert!(matches!(outcome.unwrap(), Outcome::Reached(_)));
        assert_eq!(*sleeps.iter().max().unwrap(), MAX_INTERVAL);
        // After the change to repairing the pause starts again at 200 ms.
        assert_eq!(sleeps[8], FIRST_INTERVAL);
    }

    #[test]
    fn failure_carries_the_status_message() {
        let (outcome, reports, _) = run(
            &["running"],
            Duration::from_secs(300),
            vec![
                seen("creating", None),
                seen("failed", Some("create failed: no port; delete it")),
            ],
        );
        match outcome.unwrap() {
            Outcome::Failed(o) => {
                assert_eq!(
                    o.message.as_deref(),
                    Some("create failed: no port; delete it")
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(reports.len(), 2);
    }

    #[test]
    fn settling_elsewhere_ends_the_wait() {
        let (outcome, _, _) = run(
            &["paused"],
            Duration::from_secs(300),
            vec![seen("pausing", None), seen("running", None)],
        );
        assert!(matches!(outcome.unwrap(), Outcome::Elsewhere(o) if o.status == "running"));

        // Gone while waiting for running.
        let (outcome, _, _) = run(
            &["running"],
            Duration::from_secs(300),
            vec![seen("creating", None), Ok(Observation::gone())],
        );
        assert!(matches!(outcome.unwrap(), Outcome::Elsewhere(o) if o.status == "deleted"));

        // Gone is the goal of a delete.
        let (outcome, reports, _) = run(
            &["deleted"],
            Duration::from_secs(300),
            vec![seen("destroying", None), Ok(Observation::gone())],
        );
        assert!(matches!(outcome.unwrap(), Outcome::Reached(o) if o.raw.is_none()));
        assert_eq!(reports[1].1, "deleted");
    }

    #[test]
    fn times_out_with_the_last_status() {
        let (outcome, _, sleeps) = run(&["running"], Duration::from_secs(3), vec![]);
        match outcome.unwrap() {
            Outcome::TimedOut(Some(o)) => assert_eq!(o.status, "creating"),
            other => panic!("{other:?}"),
        }
        // Never sleeps past the deadline.
        assert_eq!(sleeps.iter().sum::<Duration>(), Duration::from_secs(3));
    }

    #[test]
    fn transient_errors_are_retried_and_others_are_not() {
        let transient = || -> anyhow::Result<Observation> {
            Err(anyhow::Error::new(HttpError::Unexpected {
                url: "u".into(),
                status: reqwest::StatusCode::BAD_GATEWAY,
                detail: "bad gateway".into(),
            }))
        };
        let (outcome, reports, _) = run(
            &["running"],
            Duration::from_secs(300),
            vec![
                seen("creating", None),
                transient(),
                transient(),
                seen("running", None),
            ],
        );
        assert!(matches!(outcome.unwrap(), Outcome::Reached(_)));
        assert_eq!(reports.len(), 2);

        let (outcome, _, _) = run(
            &["running"],
            Duration::from_secs(300),
            vec![Err(anyhow::anyhow!("403 not allowed"))],
        );
        assert!(outcome.is_err());
    }

    #[test]
    fn message_changes_are_reported() {
        let (_, reports, _) = run(
            &["running"],
            Duration::from_secs(300),
            vec![
                seen("creating", None),
                seen("creating", Some("waiting for a port")),
                seen("running", None),
            ],
        );
        assert_eq!(reports.len(), 3);
    }

    #[test]
    fn verdicts() {
        let i = Goal::instance;
        assert_eq!(judge(i(&["running", "paused"]), "paused"), Verdict::Done);
        assert_eq!(judge(i(&["running"]), "failed"), Verdict::Failed);
        assert_eq!(judge(i(&["running"]), "restarting"), Verdict::Continue);
        assert_eq!(judge(i(&["running"]), "some-new-status"), Verdict::Continue);
        assert_eq!(judge(i(&["deleted"]), "running"), Verdict::Elsewhere);
        assert_eq!(judge(Goal::job(), "STARTED"), Verdict::Continue);
        assert_eq!(judge(Goal::job(), "SUCCESS"), Verdict::Done);
        assert_eq!(judge(Goal::job(), "ERROR"), Verdict::Failed);
    }

    #[test]
    fn job_observations_show_the_error_or_the_step() {
        let o = Observation::from_job(serde_json::json!({"state": "STARTED", "step": "stop"}));
        assert_eq!(
            (o.status.as_str(), o.message.as_deref()),
            ("STARTED", Some("step stop"))
        );
        let o = Observation::from_job(
            serde_json::json!({"state": "FAILURE", "step": "stop", "error": "timed out"}),
        );
        assert_eq!(o.message.as_deref(), Some("timed out"));
    }
}
