//! How an instance is doing, for its tenants: the statistics the sampler stored
//! (`background::stats`), served as series per step, the latest of them as Prometheus gauges,
//! and the instance's PostgreSQL log, a page at a time. Reading any of them needs
//! `instances:read` on the instance; another tenant's instance is not found.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use berth_engine::{LogCursor, LogRequest, LogStart};
use berth_types::{
    InstanceStats, LogPage, LogQuery, Permission, StatsPoint, StatsQuery, StatsSeries, METRICS,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{App, AppError, Principal};

/// `[stats]`: how often instances are sampled and how long the series are kept.
#[derive(Debug, Clone, Copy)]
pub struct StatsSettings {
    /// 0: no sampling.
    pub interval: Duration,
    pub retention_days: u32,
}

impl Default for StatsSettings {
    fn default() -> Self {
        StatsSettings {
            interval: Duration::from_secs(15),
            retention_days: 7,
        }
    }
}

/// At most this many points per series in one answer.
pub const MAX_POINTS: i64 = 1000;
/// The automatic step aims at about this many points.
const AUTO_POINTS: i64 = 120;
/// The longest step: a year.
const MAX_STEP: i64 = 366 * 24 * 3600;
pub const DEFAULT_LOG_LIMIT: i64 = 100;
pub const MAX_LOG_LIMIT: i64 = 1000;

/// Each instance's project and figures (in the order of `METRICS`).
pub(crate) type Figures = HashMap<Uuid, (Uuid, Vec<Option<f64>>)>;

/// The latest figures of each instance sampled in the last round, for `/metrics`.
#[derive(Default)]
pub(crate) struct Gauges {
    latest: std::sync::Mutex<Figures>,
}

impl Gauges {
    /// Replaces every instance's figures: instances not sampled this round disappear.
    pub(crate) fn replace(&self, now: Figures) {
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
}

fn parse_time(name: &str, text: &str) -> Result<DateTime<Utc>, AppError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            AppError::Validation(format!(
                "`{name}` must be an RFC 3339 time, such as 2025-01-01T00:00:00Z"
            ))
        })
}

/// The metrics asked for (indexes into `METRICS`), in the order asked, once each.
fn parse_metrics(text: Option<&str>) -> Result<Vec<usize>, AppError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok((0..METRICS.len()).collect());
    };
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let Some(i) = METRICS.iter().position(|m| m.name == name) else {
            let valid: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
            return Err(AppError::Validation(format!(
                "unknown metric `{}`; the metrics are: {}",
                name.chars().take(64).collect::<String>(),
                valid.join(", ")
            )));
        };
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

impl App {
    pub(crate) fn stats_settings(&self) -> StatsSettings {
        self.instance_settings().stats
    }

    /// `GET /api/v1/instances/{id}/stats`: the series asked for, one point per step.
    pub async fn instance_stats(
        &self,
        p: &Principal,
        instance: Uuid,
        q: &StatsQuery,
    ) -> Result<InstanceStats, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesRead)
            .await?
            .id();
        let metrics = parse_metrics(q.metric.as_deref())?;
        let to = match &q.to {
            Some(t) => parse_time("to", t)?,
            None => self.now(),
        };
        let from = match &q.from {
            Some(t) => parse_time("from", t)?,
            None => to - chrono::Duration::hours(1),
        };
        if from >= to {
            return Err(AppError::Validation("`from` must be before `to`".into()));
        }
        let interval = self.stats_settings().interval.as_secs().max(1) as i64;
        let span = (to - from).num_seconds().max(1);
        let step = match q.step {
            Some(s) if !(1..=MAX_STEP).contains(&s) => {
                return Err(AppError::Validation(format!(
                    "`step` must be 1 to {MAX_STEP} seconds"
                )))
            }
            Some(s) => s,
            None => ((span + AUTO_POINTS - 1) / AUTO_POINTS).max(interval),
        };
        // Steps start at multiples of the step, so consecutive queries line up.
        let start = from.timestamp() - from.timestamp().rem_euclid(step);
        let from = DateTime::from_timestamp(start, 0).unwrap_or(from);
        let points = ((to - from).num_seconds() + step - 1) / step;
        if points > MAX_POINTS {
            return Err(AppError::Validation(format!(
                "that is {points} points per series, at most {MAX_POINTS}: choose a larger `step` or a shorter range"
            )));
        }
        let buckets =
            berth_store::fleet::stats::series(self.db(), id, from, to, step, &metrics).await?;
        let mut series: Vec<StatsSeries> = metrics
            .iter()
            .map(|&m| StatsSeries {
                metric: METRICS[m].name.to_owned(),
                unit: METRICS[m].unit.to_owned(),
                aggregation: METRICS[m].aggregation,
                points: (0..points)
                    .map(|k| StatsPoint {
                        at: from + chrono::Duration::seconds(k * step),
                        value: None,
                    })
                    .collect(),
            })
            .collect();
        for b in buckets {
            let k = (b.at - from).num_seconds() / step;
            let Ok(k) = usize::try_from(k) else { continue };
            for (s, v) in series.iter_mut().zip(&b.values) {
                if let Some(point) = s.points.get_mut(k) {
                    point.value = v.filter(|x| x.is_finite());
                }
            }
        }
        Ok(InstanceStats {
            instance_id: id,
            from,
            to,
            step_seconds: step,
            interval_seconds: interval,
            series,
        })
    }

    /// `GET /api/v1/instances/{id}/logs`: a page of the instance's PostgreSQL log. `next` is
    /// the query of the following page (the HTTP layer makes it a URL).
    pub async fn instance_logs(
        &self,
        p: &Principal,
        instance: Uuid,
        q: &LogQuery,
    ) -> Result<LogPage, AppError> {
        let id = self
            .authorize_instance(p, instance, Permission::InstancesRead)
            .await?
            .id();
        let limit = q.limit.unwrap_or(DEFAULT_LOG_LIMIT);
        if !(1..=MAX_LOG_LIMIT).contains(&limit) {
            return Err(AppError::Validation(format!(
                "`limit` must be 1 to {MAX_LOG_LIMIT}"
            )));
        }
        let start = match (&q.since, &q.cursor) {
            (Some(_), Some(_)) => {
                return Err(AppError::Validation(
                    "give `since` or `cursor`, not both".into(),
                ))
            }
            (Some(t), None) => LogStart::Since(parse_time("since", t)?),
            (None, Some(c)) => LogStart::After(LogCursor::decode(c).ok_or_else(|| {
                AppError::Validation("`cursor` is not one this server gave out".into())
            })?),
            (None, None) => LogStart::Recent,
        };
        let req = LogRequest {
            start,
            limit: limit as usize,
        };
        let slice = self.engine().logs(id, &req).await?;
        let cursor = slice.cursor.encode();
        Ok(LogPage {
            count: slice.count as i64,
            next: slice.more.then(|| format!("cursor={cursor}&limit={limit}")),
            previous: None,
            results: slice.entries,
            cursor,
        })
    }

    /// The latest figures of every sampled instance as Prometheus gauges
    /// (`berth_instance_<metric>{instance, project}`), for `/metrics`.
    pub fn instance_metrics(&self) -> String {
        let latest = self
            .inner
            .gauges
            .latest
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut ids: Vec<&Uuid> = latest.keys().collect();
        ids.sort();
        let mut out = String::new();
        if ids.is_empty() {
            return out;
        }
        for (m, info) in METRICS.iter().enumerate() {
            let _ = writeln!(out, "# HELP berth_instance_{} {}", info.name, info.help);
            let _ = writeln!(out, "# TYPE berth_instance_{} gauge", info.name);
            for id in &ids {
                let (project, values) = &latest[*id];
                if let Some(v) = values.get(m).copied().flatten() {
                    let _ = writeln!(
                        out,
                        "berth_instance_{}{{instance=\"{id}\",project=\"{project}\"}} {v}",
                        info.name
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_are_checked_and_listed() {
        assert_eq!(parse_metrics(None).unwrap().len(), METRICS.len());
        assert_eq!(parse_metrics(Some(" ")).unwrap().len(), METRICS.len());
        assert_eq!(
            parse_metrics(Some("cache_hit_ratio, connections_total,cache_hit_ratio")).unwrap(),
            [8, 0]
        );
        let e = parse_metrics(Some("connections_total,nope")).unwrap_err();
        assert!(e.to_string().contains("`nope`"), "{e}");
        assert!(e.to_string().contains("wal_bytes_per_second"), "{e}");
    }
}
