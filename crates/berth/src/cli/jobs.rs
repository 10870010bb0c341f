//! `berth jobs list|get`: the operations that take time (create, pause, resume, restart,
//! resize, delete, repair), newest first, with counts by state and type. A job state this client
//! does not know (from a newer server) is shown as the server named it.

use std::collections::BTreeMap;

use berth_types::{Job, JobList, JobQuery};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::api::{explain, Api};
use super::instances;
use super::table::{self, fields, Format, Table};

#[derive(clap::Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first, with counts by state and type.
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one job: type, state, instance, step, attempts, error and timestamps.
    Get(GetArgs),
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// Only jobs of this type (create, pause, resume, restart, resize, delete, repair).
    #[arg(long = "type", value_name = "TYPE")]
    job_type: Option<String>,
    /// Only jobs in this state (pending, started, success, failure, error).
    #[arg(long)]
    state: Option<String>,
    /// Only jobs of this instance (name or ID; the ID also works once it is deleted).
    #[arg(long)]
    instance: Option<String>,
    /// The project to look --instance up in (ID or name), when several have the name.
    #[arg(short = 'p', long)]
    project: Option<String>,
    /// Only jobs created since this time (RFC 3339, or a duration ago such as 1h).
    #[arg(long, value_parser = parse_time)]
    since: Option<DateTime<Utc>>,
    /// Only jobs created before this time (RFC 3339, or a duration ago such as 1h).
    #[arg(long, value_parser = parse_time)]
    until: Option<DateTime<Utc>>,
    /// How many jobs to show (at most 500).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=500))]
    limit: u16,
    /// Output format: text for people, json for scripts (the API's JSON).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(clap::Args)]
pub struct GetArgs {
    /// The job's ID.
    id: Uuid,
    /// Output format: text for people, json for scripts (the API's JSON).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// RFC 3339, or a duration before now ("90m", "2h").
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let ago = table::parse_duration(s)
        .map_err(|_| format!("{s:?}: give an RFC 3339 time or a duration such as 1h"))?;
    Ok(Utc::now() - chrono::Duration::from_std(ago).map_err(|e| e.to_string())?)
}

/// The job's state as the server named it (also one this client does not know).
fn state_text(job: &Job, json: &Value) -> String {
    json.get("state")
        .and_then(Value::as_str)
        .unwrap_or(job.state.as_str())
        .to_owned()
}

pub async fn run(command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::List(args) => list(args).await,
        JobsCommand::Get(args) => get(args).await,
    }
}

/// How long a job took, or has been running (at `now`).
fn duration(job: &Job, now: DateTime<Utc>) -> Option<String> {
    let start = job.started_at?;
    let end = job.finished_at.unwrap_or(now);
    let d = (end - start).to_std().unwrap_or_default();
    let text = table::elapsed(d);
    Some(if job.finished_at.is_some() {
        text
    } else {
        format!("{text} so far")
    })
}

fn when(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// One line per error at most, so that the table stays a table.
fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > max {
        let cut: String = line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

/// `json` is the list's `results` as the server sent them.
fn list_table(jobs: &[Job], json: &Value, now: DateTime<Utc>) -> Table {
    let mut t = Table::new(&[
        "ID", "TYPE", "STATE", "INSTANCE", "STEP", "CREATED", "DURATION", "ERROR",
    ]);
    for (n, j) in jobs.iter().enumerate() {
        t.row(vec![
            j.id.to_string(),
            j.job_type.to_string(),
            state_text(j, &json[n]),
            j.instance_id.map(|i| i.to_string()).unwrap_or_default(),
            j.step.clone().unwrap_or_default(),
            when(Some(j.created_at)).unwrap_or_default(),
            duration(j, now).unwrap_or_default(),
            j.error.as_deref().map(|e| short(e, 60)).unwrap_or_default(),
        ]);
    }
    t
}

/// "Showing 3 of 12 jobs. By state: SUCCESS 10, FAILURE 2. By type: create 7, …" (zero counts
/// left out).
fn summary(shown: usize, list: &JobList) -> String {
    let counts = |m: &BTreeMap<String, i64>| {
        let mut v: Vec<(&String, &i64)> = m.iter().filter(|(_, n)| **n > 0).collect();
        // Most common first; ties by name.
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let noun = if list.count == 1 { "job" } else { "jobs" };
    let mut text = format!("Showing {shown} of {} {noun}.", list.count);
    let states = counts(&list.stats.state);
    if !states.is_empty() {
        text.push_str(&format!(" By state: {states}."));
    }
    let types = counts(&list.stats.job_type);
    if !types.is_empty() {
        text.push_str(&format!(" By type: {types}."));
    }
    text
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let instance_id = match &args.instance {
        // An ID is used as is: the jobs of a deleted instance stay listed.
        Some(i) => Some(match Uuid::parse_str(i) {
            Ok(id) => id,
            Err(_) => {
                instances::resolve(&api, i, args.project.as_deref())
                    .await?
                    .value
                    .id
            }
        }),
        None => None,
    };
    let query = JobQuery {
        job_type: args.job_type.as_ref().map(|t| t.to_ascii_lowercase()),
        state: args.state.as_ref().map(|s| s.to_ascii_uppercase()),
        instance_id,
        // To the second, as given ("1h" ago is not more precise than that).
        since: args.since.map(|t| t.trunc_subsecs(0)),
        until: args.until.map(|t| t.trunc_subsecs(0)),
        limit: Some(i64::from(args.limit)),
        offset: None,
    };
    let answer = api
        .berth()
        .await?
        .list_jobs_raw(&query)
        .await
        .map_err(explain)?;
    match args.output {
        Format::Json => out!("{}", table::json(&answer.json)?)?,
        Format::Text => {
            let list = &answer.value;
            if list.results.is_empty() {
                out!("No jobs.")?;
            } else {
                let results = &answer.json["results"];
                out!(
                    "{}",
                    list_table(&list.results, results, Utc::now()).render()
                )?;
                out!("{}", summary(list.results.len(), list))?;
            }
        }
    }
    Ok(())
}

/// `json` is the job as the server sent it.
fn describe(job: &Job, json: &Value, instance: Option<String>, now: DateTime<Utc>) -> String {
    fields(&[
        ("ID", Some(job.id.to_string())),
        ("Type", Some(job.job_type.to_string())),
        ("State", Some(state_text(job, json))),
        ("Instance", instance),
        ("Project", job.project_id.map(|p| p.to_string())),
        ("Site", Some(job.region.clone()).filter(|s| !s.is_empty())),
        ("Step", job.step.clone()),
        ("Attempts", Some(job.attempts.to_string())),
        ("Error", job.error.clone()),
        ("Created", when(Some(job.created_at))),
        ("Started", when(job.started_at)),
        ("Finished", when(job.finished_at)),
        (
            "Deadline",
            when(job.deadline_at).filter(|_| job.finished_at.is_none()),
        ),
        ("Duration", duration(job, now)),
    ])
}

async fn get(args: GetArgs) -> anyhow::Result<()> {
    let api = Api::connect().await?;
    let berth = api.berth().await?;
    let answer = berth.get_job_raw(args.id).await.map_err(explain)?;
    match args.output {
        Format::Json => out!("{}", table::json(&answer.json)?)?,
        Format::Text => {
            let job = &answer.value;
            // The instance's name when it still exists; just the ID otherwise.
            let instance = match job.instance_id {
                Some(id) => Some(match berth.get_instance(id).await {
                    Ok(i) => format!("{} ({id})", i.name),
                    Err(_) => format!("{id} (deleted)"),
                }),
                None => None,
            };
            out!("{}", describe(job, &answer.json, instance, Utc::now()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A list as typed and as sent.
    fn sample() -> (JobList, Value) {
        let json = json!({
            "count": 3,
            "next": null,
            "previous": null,
            "results": [
                {"id": "00000000-0000-0000-0000-0000000000a3", "type": "pause", "state": "STARTED", "instance_id": "00000000-0000-0000-0000-0000000000b1",
                 "region": "local", "site": "local", "step": "stop", "attempts": 1,
                 "created_at": "2030-01-01T00:00:10Z", "started_at": "2030-01-01T00:00:10Z"},
                {"id": "00000000-0000-0000-0000-0000000000a2", "type": "create", "state": "FAILURE", "instance_id": "00000000-0000-0000-0000-0000000000b2",
                 "region": "local", "site": "local", "step": "provision", "attempts": 1,
                 "error": "initdb failed\nlong details",
                 "created_at": "2030-01-01T00:00:05Z", "started_at": "2030-01-01T00:00:05Z",
                 "finished_at": "2030-01-01T00:00:06.5Z", "future_field": true},
                {"id": "00000000-0000-0000-0000-0000000000a1", "type": "create", "state": "SUCCESS", "instance_id": "00000000-0000-0000-0000-0000000000b1",
                 "region": "local", "site": "local", "attempts": 1, "created_at": "2030-01-01T00:00:00Z"}
            ],
            "stats": {
                "type": {"create": 2, "pause": 1, "delete": 0},
                "state": {"PENDING": 0, "STARTED": 1, "SUCCESS": 1, "FAILURE": 1, "ERROR": 0},
                "created": {"2030-01-01": 3},
                "region": {"local": 3}, "site": {"local": 3}
            }
        });
        (serde_json::from_value(json.clone()).unwrap(), json)
    }

    #[test]
    fn a_newer_servers_job_state_is_shown_as_named() {
        let (_, mut json) = sample();
        json["results"][0]["state"] = json!("CANCELLING");
        let list: JobList = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(list.results[0].state, berth_types::JobState::Unknown);
        let text = list_table(&list.results, &json["results"], t("2030-01-01T00:00:12Z")).render();
        assert!(
            text.lines().nth(1).unwrap().contains(" CANCELLING "),
            "{text}"
        );
    }

    #[test]
    fn table_and_summary() {
        let (list, json) = sample();
        let now = t("2030-01-01T00:00:12Z");
        let text = list_table(&list.results, &json["results"], now).render();
        let lines: Vec<&str> = text.lines().collect();
        let header: Vec<&str> = lines[0].split_whitespace().collect();
        assert_eq!(
            header,
            ["ID", "TYPE", "STATE", "INSTANCE", "STEP", "CREATED", "DURATION", "ERROR"],
            "{text}"
        );
        assert!(
            lines[1].starts_with("00000000-0000-0000-0000-0000000000a3  pause   STARTED  "),
            "{text}"
        );
        assert!(lines[1].contains("2.0s so far"), "{text}");
        assert!(
            lines[2].contains("1.5s") && lines[2].ends_with("initdb failed"),
            "{text}"
        );
        // Not started: no duration; no error; no step.
        assert!(lines[3].ends_with("-            -"), "{text}");

        assert_eq!(
            summary(3, &list),
            "Showing 3 of 3 jobs. By state: FAILURE 1, STARTED 1, SUCCESS 1. \
             By type: create 2, pause 1."
        );
        let empty = JobList {
            count: 0,
            next: None,
            previous: None,
            results: vec![],
            stats: Default::default(),
        };
        assert_eq!(summary(0, &empty), "Showing 0 of 0 jobs.");
    }

    #[test]
    fn job_details() {
        let (mut list, json) = sample();
        let job = list.results.remove(1);
        let text = describe(
            &job,
            &json["results"][1],
            Some("db2 (i2)".into()),
            t("2030-01-01T00:01:00Z"),
        );
        assert!(text.contains("Instance:  db2 (i2)"), "{text}");
        assert!(
            text.contains("Error:     initdb failed\nlong details"),
            "{text}"
        );
        assert!(text.contains("Duration:  1.5s"), "{text}");
        assert!(!text.contains("Deadline"), "{text}");
    }

    #[test]
    fn times_are_rfc3339_or_ago() {
        assert_eq!(
            parse_time("2030-01-01T00:00:00+02:00").unwrap(),
            t("2029-12-31T22:00:00Z")
        );
        let hour_ago = parse_time("1h").unwrap();
        let diff = Utc::now() - hour_ago;
        assert!((3599..=3601).contains(&diff.num_seconds()), "{diff}");
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn long_errors_are_cut() {
        assert_eq!(short("abcdef", 4), "abc…");
        assert_eq!(short("ab\ncd", 4), "ab");
    }
}
