//! The statistics sampler: every `[stats] interval_seconds` it samples each running instance
//! through the engine (a few at a time), turns the cumulative counters into per-second rates
//! by comparing with the previous sample kept in memory (none after a Berth restart or a reset
//! of the counters: those rates are null), writes the round in one statement, and publishes the
//! figures as `/metrics` gauges. Database sizes are read every [`SIZE_EVERY`] (summing them
//! stats every file of the databases) and carried forward in between. Every
//! [`MAINTAIN_EVERY`] it downsamples and expires old rows (`berth_store::fleet::stats`).
//! Timestamps follow [`App::now`], so tests move the clock to age the series.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::Sample;
use berth_store::fleet::stats::{Round, DOWNSAMPLE_SECS};
use berth_types::{DesiredState, InstanceStatus, METRICS};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::jobs::instance_spec;
use crate::{App, AppError};

/// Instances sampled at once.
const CONCURRENCY: usize = 16;
/// Database sizes are read about this often (and at an instance's first sample): summing them
/// costs some thirty times the rest of a sample, and sizes change slowly.
const SIZE_EVERY: Duration = Duration::from_secs(300);
const MAINTAIN_EVERY: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// Raw samples older than this become 5-minute averages.
const RAW_FOR: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// What the sampler remembers of an instance between rounds.
struct Previous {
    sample: Sample,
    size: Option<i64>,
}

/// A sample's figures in the order of `METRICS`, given the one before it.
fn figures(prev: Option<&Sample>, cur: &Sample, size: Option<i64>) -> Vec<Option<f64>> {
    let seconds = prev
        .and_then(|p| (cur.at - p.at).num_microseconds())
        .map(|us| us as f64 / 1e6)
        .filter(|s| *s > 0.0);
    // A counter that went down was reset: no rate for this interval.
    let delta = |f: fn(&Sample) -> i64| -> Option<i64> {
        let d = f(cur) - f(prev?);
        (d >= 0).then_some(d)
    };
    let rate = |f: fn(&Sample) -> i64| -> Option<f64> { Some(delta(f)? as f64 / seconds?) };
    let hit = delta(|s| s.blocks_hit);
    let read = delta(|s| s.blocks_read);
    let ratio = match (hit, read, seconds) {
        (Some(h), Some(r), Some(_)) if h + r > 0 => Some(h as f64 / (h + r) as f64),
        _ => None,
    };
    let values = [
        Some(cur.connections_total as f64),
        Some(cur.connections_active as f64),
        Some(cur.connections_idle_in_transaction as f64),
        Some(cur.max_connections as f64),
        rate(|s| s.commits),
        rate(|s| s.rollbacks),
        rate(|s| s.rows_read),
        rate(|s| s.rows_written),
        ratio,
        size.map(|b| b as f64),
        rate(|s| s.wal_bytes),
        cur.replication_lag_seconds.map(|l| l.max(0.0)),
    ];
    debug_assert_eq!(values.len(), METRICS.len());
    values.to_vec()
}

/// `t` rounded down to a multiple of `secs`.
fn align_down(t: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(secs), 0).unwrap_or(t)
}

impl App {
    /// Starts the sampler (unless `[stats] interval_seconds` is 0).
    pub(crate) fn start_stats_sampler(&self) {
        let interval = self.stats_settings().interval;
        if interval.is_zero() {
            return;
        }
        let app = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut previous: HashMap<Uuid, Previous> = HashMap::new();
            let mut round = 0u64;
            let mut maintained: Option<DateTime<Utc>> = None;
            loop {
                tick.tick().await;
                if app.is_stopping() {
                    return;
                }
                if !app.store_health().is_up() {
                    continue;
                }
                if let Err(e) = app.sample_round(round, &mut previous).await {
                    tracing::warn!(error = %e, "sampling instances failed");
                }
                round += 1;
                let now = app.now();
                if maintained.is_none_or(|t| now - t >= MAINTAIN_EVERY) {
                    match app.maintain_stats(now).await {
                        Ok(()) => maintained = Some(now),
                        Err(e) => tracing::warn!(error = %e, "maintaining statistics failed"),
                    }
                }
            }
        });
    }

    /// One round: samples every running instance, stores the figures, publishes the gauges.
    async fn sample_round(
        &self,
        round: u64,
        previous: &mut HashMap<Uuid, Previous>,
    ) -> Result<(), AppError> {
        let region = &self.instance_settings().region;
        let rows = berth_store::fleet::instances::all_live(self.db(), region).await?;
        let interval = self.stats_settings().interval.as_secs().max(1);
        let size_every = (SIZE_EVERY.as_secs() / interval).max(1);
        let limit = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut samples = tokio::task::JoinSet::new();
        for row in rows.into_iter().filter(|r| {
            r.status == InstanceStatus::Running && r.desired_state == DesiredState::Running
        }) {
            let Ok(spec) = instance_spec(&row) else {
                continue;
            };
            let with_size = round.is_multiple_of(size_every)
                || previous.get(&row.id).is_none_or(|p| p.size.is_none());
            let (engine, limit) = (self.engine().clone(), limit.clone());
            samples.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let sample = engine.sample(&spec, with_size).await;
                (row.id, row.project_id, sample)
            });
        }
        let at = self.now();
        let mut next: HashMap<Uuid, Previous> = HashMap::new();
        let mut gauges = HashMap::new();
        let mut round = Round {
            at,
            instances: Vec::new(),
            values: vec![Vec::new(); METRICS.len()],
        };
        while let Some(done) = samples.join_next().await {
            let Ok((id, project, sample)) = done else {
                continue;
            };
            let sample = match sample {
                Ok(s) => s,
                // Stopped meanwhile, or busy: no point this round.
                Err(e) => {
                    tracing::debug!(instance = %id, error = %e, "sampling an instance failed");
                    continue;
                }
            };
            let before = previous.remove(&id);
            let size = sample
                .database_size_bytes
                .or(before.as_ref().and_then(|p| p.size));
            let values = figures(before.as_ref().map(|p| &p.sample), &sample, size);
            round.instances.push(id);
            for (column, v) in round.values.iter_mut().zip(&values) {
                column.push(*v);
            }
            gauges.insert(id, (project, values));
            next.insert(id, Previous { sample, size });
        }
        *previous = next;
        self.inner.gauges.replace(gauges);
        berth_store::fleet::stats::insert_round(self.db(), &round).await?;
        Ok(())
    }

    /// Downsamples raw rows older than a day, removes rows past the retention and those of
    /// deleted instances.
    async fn maintain_stats(&self, now: DateTime<Utc>) -> Result<(), AppError> {
        let days = i64::from(self.stats_settings().retention_days);
        let done = berth_store::fleet::stats::maintain(
            self.db(),
            align_down(now - RAW_FOR, DOWNSAMPLE_SECS),
            now - chrono::TimeDelta::days(days),
        )
        .await?;
        tracing::debug!(
            downsampled = done.downsampled,
            expired = done.expired,
            "maintained statistics"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_secs: i64, commits: i64, hit: i64, read: i64, wal: i64) -> Sample {
        Sample {
            at: DateTime::from_timestamp(at_secs, 0).unwrap(),
            connections_total: 3,
            connections_active: 1,
            connections_idle_in_transaction: 0,
            max_connections: 100,
            commits,
            rollbacks: 0,
            rows_read: 0,
            rows_written: 0,
            blocks_hit: hit,
            blocks_read: read,
            wal_bytes: wal,
            database_size_bytes: None,
            replication_lag_seconds: None,
        }
    }

    #[test]
    fn rates_come_from_two_samples_and_resets_give_none() {
        let a = sample(100, 10, 90, 10, 1000);
        let b = sample(110, 60, 180, 20, 6000);
        let first = figures(None, &a, Some(5));
        assert_eq!(first[0], Some(3.0));
        assert_eq!(first[4], None, "no rate from a first sample");
        assert_eq!(first[8], None);
        assert_eq!(first[9], Some(5.0));
        let f = figures(Some(&a), &b, None);
        assert_eq!(f[4], Some(5.0));
        assert_eq!(f[8], Some(0.9));
        assert_eq!(f[10], Some(500.0));
        assert_eq!(f[11], None);
        // Counters reset (pg_stat_reset): no rate, not a negative one.
        let reset = sample(120, 2, 1, 0, 7000);
        let f = figures(Some(&b), &reset, None);
        assert_eq!(f[4], None);
        assert_eq!(f[8], None);
        assert_eq!(f[10], Some(100.0));
        // The same moment twice: no division by zero.
        assert_eq!(figures(Some(&a), &a, None)[4], None);
        assert_eq!(
            align_down(DateTime::from_timestamp(1_000_123, 0).unwrap(), 300).timestamp(),
            1_000_200 - 300
        );
    }
}
