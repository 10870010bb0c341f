//! `berth instances stats NAME` (recent figures: the latest value, the average and the peak of
//! each statistic, with a sparkline of the range) and `berth instances logs NAME [--follow]`
//! (the PostgreSQL log; following polls with the answer's cursor, so no entry is lost or shown
//! twice, until Ctrl-C).

use std::time::Duration;

use anyhow::{bail, Context};
use berth_types::{LogEntry, LogQuery, StatsQuery};
use chrono::{SecondsFormat, Utc};

use super::api::{explain, Api};
use super::instances;
use super::table::{self, Format, Table};

/// Points of the sparkline.
const POINTS: i64 = 30;
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

#[derive(clap::Args)]
pub struct StatsArgs {
    /// Instance name or ID.
    instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// How far back: 15m, 1h, 24h.
    #[arg(long, default_value = "1h", value_parser = table::parse_duration)]
    range: Duration,
    /// Only these metrics (comma-separated; the server lists the valid names).
    #[arg(long)]
    metric: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct LogsArgs {
    /// Instance name or ID.
    instance: String,
    /// The project to look the name up in (ID or name), when several have it.
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// From this moment: an RFC 3339 time, or how long ago (10m, 2h). Default: the latest
    /// entries.
    #[arg(long)]
    since: Option<String>,
    /// Entries per request (1–1000).
    #[arg(long, default_value_t = 100)]
    limit: i64,
    /// Keep printing new entries as they are logged, until Ctrl-C.
    #[arg(short = 'f', long)]
    follow: bool,
    /// One JSON object per entry.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// ▁▂▃▄▅▆▇█ scaled from the smallest to the largest value; a space where there is none.
fn sparkline(values: &[Option<f64>]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let (lo, hi) = known
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(_) if hi <= lo => BARS[0],
            Some(v) => BARS[(((v - lo) / (hi - lo)) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

/// A figure for people: a few significant digits, sizes in kB/MB/GB.
fn human(v: Option<f64>, unit: &str) -> String {
    let Some(v) = v else {
        return String::new();
    };
    if unit.starts_with("bytes") {
        let suffix = unit.strip_prefix("bytes").unwrap_or("");
        let mut x = v;
        for prefix in ["B", "kB", "MB", "GB", "TB"] {
            if x.abs() < 1000.0 || prefix == "TB" {
                return format!("{x:.1} {prefix}{suffix}");
            }
            x /= 1000.0;
        }
    }
    if unit == "ratio" {
        return format!("{:.1}%", v * 100.0);
    }
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

pub async fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let id = instances::resolve(&api, &args.instance, args.project.as_deref())
        .await?
        .value
        .id;
    let to = Utc::now();
    let span = chrono::Duration::from_std(args.range)?;
    let step = (span.num_seconds() / POINTS).max(1);
    let q = StatsQuery {
        metric: args.metric,
        from: Some((to - span).to_rfc3339_opts(SecondsFormat::Secs, true)),
        to: Some(to.to_rfc3339_opts(SecondsFormat::Secs, true)),
        step: Some(step),
    };
    let stats = api
        .berth()
        .await?
        .instance_stats(id, &q)
        .await
        .map_err(explain)?;
    if args.output == Format::Json {
        return out!("{}", table::json(&serde_json::to_value(&stats)?)?);
    }
    let mut t = Table::new(&["METRIC", "LAST", "AVG", "MAX", "TREND"]);
    for s in &stats.series {
        let values: Vec<Option<f64>> = s.points.iter().map(|p| p.value).collect();
        let known: Vec<f64> = values.iter().flatten().copied().collect();
        let avg = (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64);
        let max = known.iter().copied().reduce(f64::max);
        t.row(vec![
            s.metric.clone(),
            human(known.last().copied(), &s.unit),
            human(avg, &s.unit),
            human(max, &s.unit),
            sparkline(&values),
        ]);
    }
    out!(
        "Last {} in steps of {} s (sampled every {} s):\n{}",
        humantime(args.range),
        stats.step_seconds,
        stats.interval_seconds,
        t.render()
    )
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn since(text: &str) -> anyhow::Result<String> {
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return Ok(text.to_owned());
    }
    match table::parse_duration(text) {
        Ok(ago) => Ok((Utc::now() - chrono::Duration::from_std(ago)?)
            .to_rfc3339_opts(SecondsFormat::Millis, true)),
        Err(_) => bail!("--since {text:?}: give an RFC 3339 time or how long ago (10m, 2h)"),
    }
}

fn print_entry(e: &LogEntry, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        return out!("{}", serde_json::to_string(e)?);
    }
    let time = e.time.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut text = format!("{time} {:<7} {}", e.severity, e.message);
    for (name, value) in [
        ("DETAIL", &e.detail),
        ("HINT", &e.hint),
        ("CONTEXT", &e.context),
        ("STATEMENT", &e.statement),
    ] {
        if let Some(v) = value {
            text.push_str(&format!("\n    {name}: {v}"));
        }
    }
    out!("{text}")
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<()> {
    if !(1..=1000).contains(&args.limit) {
        bail!("--limit must be 1 to 1000");
    }
    let api = Api::connect().await?;
    let id = instances::resolve(&api, &args.instance, args.project.as_deref())
        .await?
        .value
        .id;
    let berth = api.berth().await?;
    let mut q = LogQuery {
        since: args.since.as_deref().map(since).transpose()?,
        cursor: None,
        limit: Some(args.limit),
    };
    // One listener for the whole follow, made before the first request: a Ctrl-C that comes
    // while a request is under way is kept for the next wait instead of being lost (a
    // `ctrl_c()` made per wait missed those, and --follow then never ended).
    let mut interrupt = if args.follow {
        Some(
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("listening for Ctrl-C")?,
        )
    } else {
        None
    };
    loop {
        let page = match interrupt.as_mut() {
            Some(stop) => tokio::select! {
                _ = stop.recv() => return Ok(()),
                page = berth.instance_logs(id, &q) => page,
            },
            None => berth.instance_logs(id, &q).await,
        }
        .map_err(explain)?;
        for e in &page.results {
            print_entry(e, args.output)?;
        }
        q = LogQuery {
            since: None,
            cursor: Some(page.cursor.clone()),
            limit: Some(args.limit),
        };
        if page.next.is_some() {
            // More is there already: read it at once (with --since, every page of it).
            if args.follow || args.since.is_some() {
                continue;
            }
            return Ok(());
        }
        let Some(stop) = interrupt.as_mut() else {
            return Ok(());
        };
        tokio::select! {
            _ = stop.recv() => return Ok(()),
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_and_figures_read_well() {
        assert_eq!(sparkline(&[Some(0.0), None, Some(7.0), Some(3.5)]), "▁ █▅");
        assert_eq!(sparkline(&[Some(2.0), Some(2.0)]), "▁▁");
        assert_eq!(human(Some(1_500_000.0), "bytes"), "1.5 MB");
        assert_eq!(human(Some(2048.0), "bytes/s"), "2.0 kB/s");
        assert_eq!(human(Some(0.995), "ratio"), "99.5%");
        assert_eq!(human(Some(3.0), "connections"), "3");
        assert_eq!(human(None, "connections"), "");
        assert!(since("10m").is_ok() && since("2025-01-01T00:00:00Z").is_ok());
        assert!(since("yesterday").is_err());
    }
}
