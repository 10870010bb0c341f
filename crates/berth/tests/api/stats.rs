//! Statistics over time and logs of instances (issue 10), against a server of their own that
//! samples every second: series that follow what a real instance does (a held connection, rows
//! written, its size), every error branch of both routes, another tenant's 404, the labelled
//! gauges on `/metrics` that vanish with the instance, the parsed log (an error caused with
//! psql, paged with the cursor without loss or repeats, no host path), `berth instances stats`
//! and `logs --follow`, and then, moving the server's clock, downsampling past a day and
//! expiry past the retention. One test, because moving the clock would disturb any other.

use std::io::Read;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backups::{ca_file, create_body, make, psql};
use crate::cli::{berth, berth_ok, login_by_device};
use crate::common::*;

static STATS: OnceLock<Result<Server, String>> = OnceLock::new();

fn stats_server() -> &'static Server {
    static_server(&STATS, "stats", || {
        format!("{}\n[stats]\ninterval_seconds = 1\n", base_config())
    })
}

fn series<'a>(stats: &'a Value, metric: &str) -> &'a Vec<Value> {
    stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} in {stats}"))["points"]
        .as_array()
        .unwrap()
}

fn max_of(stats: &Value, metric: &str) -> Option<f64> {
    series(stats, metric)
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .reduce(f64::max)
}

fn ago(secs: i64) -> String {
    rfc3339(now_unix() - secs)
}

async fn get(api: &Api, token: &str, path: &str) -> Resp {
    send(api.get(path).bearer_auth(token)).await
}

/// Every entry of the log from `since` on, page by page with the cursor.
async fn all_pages(api: &Api, token: &str, id: &str, since: &str, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut path = format!("/api/v1/instances/{id}/logs?since={since}&limit={limit}");
    loop {
        let r = get(api, token, &path).await;
        r.expect(200);
        assert!(r.json["previous"].is_null());
        let results = r.json["results"].as_array().unwrap();
        assert!(results.len() <= limit as usize);
        out.extend(results.iter().cloned());
        match r.json["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&api.url("/api/v1/instances/")), "{next}");
                path = next.strip_prefix(&api.url("")).unwrap().to_owned();
            }
            None => return out,
        }
    }
}

#[tokio::test]
async fn statistics_and_logs_of_a_running_instance() {
    let s = stats_server();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (user, token, project) = create_member(&api, &admin, "stats").await;
    let (_, stranger, _) = create_member(&api, &admin, "stats-stranger").await;
    let project = project.id.to_string();
    let ca = ca_file(&api).await;
    let name = unique("st");
    let inst = make(&api, &token, create_body(&project, &name)).await;
    let id = inst.id.clone();
    let base = format!("/api/v1/instances/{id}");

    // A connection held open, rows written, an error logged.
    let held = {
        let (url, ca, pw) = (inst.url.clone(), ca.clone(), inst.password.clone());
        tokio::spawn(async move { psql(&url, &ca, &pw, "SELECT pg_sleep(6)").await })
    };
    psql(
        &inst.url,
        &ca,
        &inst.password,
        "CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 20000)",
    )
    .await
    .unwrap();
    let err = psql(&inst.url, &ca, &inst.password, "SELECT 1/0")
        .await
        .unwrap_err();
    assert!(err.contains("division by zero"), "{err}");

    // The series show them within a few samples.
    let metrics = "connections_total,rows_written_per_second,database_size_bytes,commits_per_second,connections_max";
    let deadline = Instant::now() + Duration::from_secs(40);
    let stats = loop {
        let r = get(
            &api,
            &token,
            &format!("{base}/stats?metric={metrics}&from={}&step=1", ago(120)),
        )
        .await;
        r.expect(200);
        let ok = max_of(&r.json, "connections_total").is_some_and(|c| c >= 1.0)
            && max_of(&r.json, "rows_written_per_second").is_some_and(|w| w > 0.0)
            && max_of(&r.json, "database_size_bytes").is_some_and(|b| b > 1e6);
        if ok {
            break r.json.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the series never showed the work: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    held.await.unwrap().unwrap();
    assert_eq!(stats["instance_id"], id);
    assert_eq!(stats["step_seconds"], 1);
    assert_eq!(stats["interval_seconds"], 1);
    let names: Vec<&str> = stats["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["metric"].as_str().unwrap())
        .collect();
    assert_eq!(names, metrics.split(',').collect::<Vec<_>>());
    // The 256MB class's max_connections.
    assert_eq!(max_of(&stats, "connections_max"), Some(25.0));
    assert_eq!(series(&stats, "connections_max").len(), 120);
    assert_eq!(
        stats["series"][3]["aggregation"], "avg",
        "commits are averaged"
    );
    assert_eq!(stats["series"][4]["aggregation"], "max");

    // Defaults: every metric over the last hour, in 30-second steps.
    let r = get(&api, &token, &format!("{base}/stats")).await;
    r.expect(200);
    assert_eq!(r.json["series"].as_array().unwrap().len(), 12);
    assert_eq!(r.json["step_seconds"], 30);
    let points = series(&r.json, "cache_hit_ratio");
    assert!((120..=121).contains(&points.len()), "{}", points.len());
    assert!(points
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .all(|v| (0.0..=1.0).contains(&v)));

    // Every error branch: 400 with a message that says what is wrong.
    for (query, says) in [
        ("metric=nope", "connections_total, connections_active"),
        ("metric=connections_total,DROP%20TABLE", "unknown metric"),
        ("from=yesterday", "RFC 3339"),
        ("to=2025-13-01T00:00:00Z", "RFC 3339"),
        (
            "from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z",
            "before",
        ),
        (
            "from=2025-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
            "before",
        ),
        ("step=0", "`step`"),
        ("step=-5", "`step`"),
        ("step=99999999999", "`step`"),
        ("step=abc", "step"),
        (
            "from=2025-01-01T00:00:00Z&to=2025-01-02T00:00:00Z&step=1",
            "points",
        ),
        ("bogus=1", "bogus"),
    ] {
        let r = get(&api, &token, &format!("{base}/stats?{query}")).await;
        r.expect_error(400, "invalid_request");
        assert!(
            r.json["message"].as_str().unwrap().contains(says),
            "{query}: {}",
            r.json
        );
    }
    for (query, says) in [
        ("limit=0", "`limit`"),
        ("limit=1001", "`limit`"),
        ("limit=x", "limit"),
        ("cursor=garbage", "`cursor`"),
        ("cursor=1-x", "`cursor`"),
        ("since=now", "RFC 3339"),
        ("since=2025-01-01T00:00:00Z&cursor=0-0", "not both"),
    ] {
        let r = get(&api, &token, &format!("{base}/logs?{query}")).await;
        r.expect_error(400, "invalid_request");
        assert!(
            r.json["message"].as_str().unwrap().contains(says),
            "{query}: {}",
            r.json
        );
    }

    // Another tenant's instance, and no instance: 404 on both routes.
    for path in [format!("{base}/stats"), format!("{base}/logs")] {
        get(&api, &stranger, &path)
            .await
            .expect_error(404, "not_found");
        let none = path.replace(&id, "01890000-0000-7000-8000-000000000000");
        get(&api, &token, &none)
            .await
            .expect_error(404, "not_found");
    }

    // `/metrics`: the latest figures, labelled with the instance and its project.
    let labels = format!("{{instance=\"{id}\",project=\"{project}\"}}");
    let m = send(api.get("/metrics")).await;
    m.expect(200);
    for gauge in [
        "berth_instance_connections_total",
        "berth_instance_connections_max",
        "berth_instance_database_size_bytes",
        "berth_instance_wal_bytes_per_second",
    ] {
        assert!(
            m.text.contains(&format!("{gauge}{labels} ")),
            "{gauge}:\n{}",
            m.text
        );
    }
    assert!(m
        .text
        .contains("# TYPE berth_instance_cache_hit_ratio gauge"));

    // The log: the error, parsed and with its statement, and no host path anywhere.
    let r = get(&api, &token, &format!("{base}/logs?limit=1000")).await;
    r.expect(200);
    let entries = r.json["results"].as_array().unwrap().clone();
    assert_eq!(r.json["count"].as_i64().unwrap() as usize, entries.len());
    assert!(r.json["next"].is_null());
    let error = entries
        .iter()
        .find(|e| e["message"] == "division by zero")
        .unwrap_or_else(|| panic!("no division by zero in {entries:#?}"));
    assert_eq!(error["severity"], "ERROR");
    assert_eq!(error["statement"], "SELECT 1/0");
    assert!(error["pid"].as_i64().unwrap() > 0);
    let text = r.text.clone();
    for hidden in [s.dir.display().to_string(), "/tmp/berth-".to_owned()] {
        assert!(!text.contains(&hidden), "{hidden} in {text}");
    }
    assert!(
        entries.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("<socket>") || m.contains("<instances>"))),
        "the startup lines name the socket, redacted"
    );
    let times: Vec<&str> = entries
        .iter()
        .map(|e| e["time"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_by_key(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap());
    assert_eq!(times, sorted, "oldest first");

    // Pages of 3 from the first entry on add up to the whole, without loss or repeats; the
    // last cursor then returns exactly what is logged afterwards.
    let first = entries[0]["time"].as_str().unwrap().to_owned();
    let paged = all_pages(&api, &token, &id, &first, 3).await;
    let whole = all_pages(&api, &token, &id, &first, 1000).await;
    assert!(paged.len() >= entries.len());
    assert_eq!(paged, whole);
    let r = get(
        &api,
        &token,
        &format!("{base}/logs?since={first}&limit=1000"),
    )
    .await;
    let cursor = r.json["cursor"].as_str().unwrap().to_owned();
    psql(&inst.url, &ca, &inst.password, "SELECT 1/0 AS after_cursor")
        .await
        .unwrap_err();
    let deadline = Instant::now() + Duration::from_secs(10);
    let fresh = loop {
        let r = get(&api, &token, &format!("{base}/logs?cursor={cursor}")).await;
        r.expect(200);
        let got = r.json["results"].as_array().unwrap().clone();
        if got
            .iter()
            .any(|e| e["statement"] == "SELECT 1/0 AS after_cursor")
        {
            break got;
        }
        assert!(Instant::now() < deadline, "{}", r.json);
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        fresh.iter().all(|e| !whole.contains(e)),
        "the cursor repeated entries: {fresh:#?}"
    );

    // The CLI: a table of recent figures, the log, and --follow until interrupted.
    let dir = temp_dir("cli-stats").join("berth");
    login_by_device(&api, s, &dir, &user).await;
    let table = berth_ok(&dir, &["instances", "stats", &name, "--range", "10m"]).await;
    assert!(
        table.contains("METRIC") && table.contains("connections_total") && table.contains("TREND"),
        "{table}"
    );
    let json = berth_ok(
        &dir,
        &[
            "instances",
            "stats",
            &name,
            "--metric",
            "connections_max",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(json.contains("\"connections_max\""), "{json}");
    let log = berth_ok(&dir, &["instances", "logs", &name, "--limit", "1000"]).await;
    assert!(log.contains("ERROR   division by zero"), "{log}");
    assert!(log.contains("STATEMENT: SELECT 1/0"), "{log}");
    let mut follow = berth(&dir)
        .args(["instances", "logs", &name, "--follow", "--limit", "5"])
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    psql(&inst.url, &ca, &inst.password, "SELECT 1/0 AS followed")
        .await
        .unwrap_err();
    tokio::time::sleep(Duration::from_secs(3)).await;
    send_signal(follow.id(), libc::SIGINT);
    // Bounded: a --follow that ignores Ctrl-C fails the test instead of hanging it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = follow.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = follow.kill();
            panic!("berth instances logs --follow did not stop on SIGINT");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut out = String::new();
    follow
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(status.success(), "{status:?}: {out}");
    assert!(out.contains("SELECT 1/0 AS followed"), "{out}");
    assert_eq!(
        out.matches("SELECT 1/0 AS followed").count(),
        1,
        "once: {out}"
    );

    // A day and more later, the samples are 5-minute averages; past the retention, gone.
    let t0 = now_unix();
    s.advance_clock(2 * 24 * 3600);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let token = token_of(&api, &user).await;
    let old = format!(
        "{base}/stats?metric=connections_max&from={}&to={}&step=60",
        rfc3339(t0 - 600),
        rfc3339(t0 + 60)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(&api, &token, &old).await;
        r.expect(200);
        let kept: Vec<i64> = series(&r.json, "connections_max")
            .iter()
            .filter(|p| p["value"].as_f64() == Some(25.0))
            .map(|p| {
                chrono::DateTime::parse_from_rfc3339(p["at"].as_str().unwrap())
                    .unwrap()
                    .timestamp()
            })
            .collect();
        if !kept.is_empty() && kept.iter().all(|t| t % 300 == 0) {
            break;
        }
        assert!(Instant::now() < deadline, "never downsampled: {}", r.json);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    s.advance_clock(6 * 24 * 3600);
    let token = token_of(&api, &user).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = get(&api, &token, &old).await;
        r.expect(200);
        if max_of(&r.json, "connections_max").is_none() {
            break;
        }
        assert!(Instant::now() < deadline, "never expired: {}", r.json);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Deleted: its gauges leave `/metrics`, its routes are 404.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = send(api.delete(&base).bearer_auth(&token)).await;
        if r.status == 202 {
            break;
        }
        assert!(
            r.status == 409 && Instant::now() < deadline,
            "{} {}",
            r.status,
            r.json
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while send(api.get("/metrics")).await.text.contains(&id) {
        assert!(Instant::now() < deadline, "the gauges of {id} stayed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&api, &token, &format!("{base}/stats")).await.status != 404 {
        assert!(Instant::now() < deadline, "stats of a deleted instance");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    get(&api, &token, &format!("{base}/logs"))
        .await
        .expect_error(404, "not_found");
}
