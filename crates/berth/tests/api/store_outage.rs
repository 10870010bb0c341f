//! Berth's own PostgreSQL dying under load (issue 7, part 2): Berth notices, restarts it, refuses
//! requests at once (503 with `Retry-After`) while it is away, reports not-ready without
//! reporting dead, and serves again by itself with every committed row still there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

/// A request must be answered well within this even while the store is away (it used to take
/// the 10 s pool timeout). A behaviour bound, not a benchmark.
const ANSWER_BOUND: Duration = Duration::from_secs(5);
/// How long Berth may take to bring its store back.
const RECOVERY_BOUND: Duration = Duration::from_secs(60);

/// One answer of the load.
#[derive(Debug, Clone)]
struct Answer {
    what: &'static str,
    /// 0 when no HTTP answer came at all.
    status: u16,
    retry_after: Option<String>,
    error: Value,
    took: Duration,
}

async fn timed(what: &'static str, rb: reqwest::RequestBuilder) -> (Answer, Value) {
    let started = Instant::now();
    let (status, retry_after, body) = match rb.send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, retry_after, body)
        }
        Err(e) => (0, None, json!({ "transport_error": e.to_string() })),
    };
    let answer = Answer {
        what,
        status,
        retry_after,
        error: body["error"].clone(),
        took: started.elapsed(),
    };
    (answer, body)
}

async fn status_of(api: &Api, path: &str) -> u16 {
    match api.get(path).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

#[tokio::test]
async fn a_killed_system_postgres_is_restarted_and_requests_fail_fast_meanwhile() {
    let dir = Dedicated::new_dir("store-outage", &base_config());
    let mut server = Dedicated::start(&dir, ADMIN_PASSWORD);
    let data = server.server.data_dir();
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let (user, token, first) = create_member(&api, &admin, "outage").await;
    let mut committed = vec![first.id.to_string()];
    for _ in 0..3 {
        let p = create_project(&api, &token, "outage").await;
        committed.push(p.id.to_string());
    }

    // Light concurrent load: two readers and a writer, each one request at a time.
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Arc<Mutex<Vec<Answer>>> = Arc::default();
    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut load = tokio::task::JoinSet::new();
    for n in 0..3 {
        let (api, token) = (api.clone(), token.clone());
        let (stop, answers, created) = (stop.clone(), answers.clone(), created.clone());
        load.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let answer = if n < 2 {
                    timed(
                        "list",
                        api.get("/api/v1/projects?limit=5").bearer_auth(&token),
                    )
                    .await
                    .0
                } else {
                    let (answer, body) = timed(
                        "create",
                        api.post_json("/api/v1/projects", &json!({ "name": unique("load") }))
                            .bearer_auth(&token),
                    )
                    .await;
                    if answer.status == 201 {
                        created
                            .lock()
                            .unwrap()
                            .push(body["id"].as_str().unwrap().to_owned());
                    }
                    answer
                };
                answers.lock().unwrap().push(answer);
                tokio::time::sleep(Duration::from_millis(if n < 2 { 20 } else { 100 })).await;
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while answers.lock().unwrap().len() < 10 {
        assert!(Instant::now() < deadline, "the load got no answers");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // kill -9 the system postmaster (checked to be it).
    let pg = postmaster_pid(&data).expect("postmaster.pid");
    assert!(
        system_postgres_processes(&data).contains(&pg),
        "pid {pg} is not the system PostgreSQL"
    );
    let killed_at = Instant::now();
    send_signal(pg as u32, libc::SIGKILL);

    // Not ready (but alive) while it is away...
    let mut saw_not_ready = false;
    while killed_at.elapsed() < Duration::from_secs(10) {
        if status_of(&api, "/readyz").await == 503 {
            saw_not_ready = true;
            // The load's requests may all be waiting on a store that comes back quickly:
            // send one now, while the store is known to be away (it may just be back: then
            // it is a 200, which the checks below accept too).
            let (now, _) = timed(
                "list",
                api.get("/api/v1/projects?limit=5").bearer_auth(&token),
            )
            .await;
            answers.lock().unwrap().push(now);
            assert_eq!(
                status_of(&api, "/healthz").await,
                200,
                "liveness must not follow the store"
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and ready again by itself.
    let mut ready_again = false;
    while killed_at.elapsed() < RECOVERY_BOUND {
        if status_of(&api, "/readyz").await == 200 {
            ready_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The load succeeds again: wait for a success of each kind after readiness came back.
    let seen = answers.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ready_again && Instant::now() < deadline {
        let after: Vec<Answer> = answers.lock().unwrap()[seen..].to_vec();
        if after.iter().any(|a| a.what == "list" && a.status == 200)
            && after.iter().any(|a| a.what == "create" && a.status == 201)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    while load.join_next().await.is_some() {}
    let answers = answers.lock().unwrap().clone();
    let log = server.server.log_text();
    assert!(
        saw_not_ready,
        "/readyz never answered 503 after the kill; log:\n{log}"
    );
    assert!(
        ready_again,
        "/readyz not 200 again within {RECOVERY_BOUND:?} of the kill; log:\n{log}"
    );

    // A refused request is not an error line of its own: the outage is logged once, where it
    // starts, so a long outage under load does not flood the log.
    let refused_lines = log
        .lines()
        .filter(|l| l.contains("request failed") && l.contains("503"))
        .count();
    assert_eq!(refused_lines, 0, "503s logged one by one; log:\n{log}");
    assert!(
        log.contains("the store is unavailable"),
        "the outage itself is logged; log:\n{log}"
    );

    // Shown when the test fails (captured otherwise).
    eprintln!(
        "{} answers, {} refused, slowest {:?}, ready again {:?} after the kill",
        answers.len(),
        answers.iter().filter(|a| a.status == 503).count(),
        answers.iter().map(|a| a.took).max(),
        killed_at.elapsed()
    );
    // Every answer came fast, and was a success or a 503 that says when to come back.
    let slow: Vec<&Answer> = answers.iter().filter(|a| a.took >= ANSWER_BOUND).collect();
    assert!(
        slow.is_empty(),
        "answers slower than {ANSWER_BOUND:?}: {slow:#?}"
    );
    let unexpected: Vec<&Answer> = answers
        .iter()
        .filter(|a| {
            !matches!(
                (a.what, a.status),
                ("list", 200) | ("create", 201) | (_, 503)
            )
        })
        .collect();
    assert!(unexpected.is_empty(), "unexpected answers: {unexpected:#?}");
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    assert!(
        !refused.is_empty(),
        "no request was refused while the store was away"
    );
    for a in &refused {
        assert_eq!(a.error, "unavailable", "{a:#?}");
        let secs: u64 = a
            .retry_after
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("503 without a Retry-After in seconds: {a:#?}"));
        assert!((1..=60).contains(&secs), "{a:#?}");
    }
    let last = answers.iter().rev().find(|a| a.what == "list").unwrap();
    assert_eq!(
        last.status, 200,
        "the load did not succeed again: {last:#?}"
    );

    // A new postmaster, and every row committed before and during the outage is there.
    let new_pg = postmaster_pid(&data).expect("postmaster.pid after the restart");
    assert_ne!(new_pg, pg);
    assert!(system_postgres_processes(&data).contains(&new_pg));
    committed.extend(created.lock().unwrap().iter().cloned());
    let r = send(api.get("/api/v1/projects?limit=500").bearer_auth(&token)).await;
    r.expect(200);
    let listed = ids(&r.json);
    let lost: Vec<&String> = committed.iter().filter(|id| !listed.contains(id)).collect();
    assert!(lost.is_empty(), "committed projects lost: {lost:?}");

    // The restart is visible in the metrics and the log.
    let metrics = send(api.get("/metrics")).await.text;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("berth_store_restarts_total") && l.ends_with(" 1")),
        "no restart counted:\n{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("berth_store_up") && l.ends_with(" 1")),
        "store not reported up:\n{metrics}"
    );
    assert!(
        log.contains("the system PostgreSQL exited unexpectedly"),
        "the death is not logged:\n{log}"
    );

    // A postmaster Berth adopted (after Berth itself was SIGKILLed) is not its child: it is
    // recognised by pid and start time, and restarted just the same when it dies.
    server.stop_with(libc::SIGKILL);
    server.restart(ADMIN_PASSWORD);
    assert!(
        server
            .server
            .log_text()
            .contains("adopting running postmaster"),
        "the postmaster was not adopted:\n{}",
        server.server.log_text()
    );
    let adopted = postmaster_pid(&data).expect("postmaster.pid");
    assert_eq!(adopted, new_pg);
    send_signal(adopted as u32, libc::SIGKILL);
    let api = Api::new(&server.server);
    let killed_at = Instant::now();
    loop {
        let pid = postmaster_pid(&data);
        if pid.is_some_and(|p| p != adopted && process_alive(p))
            && status_of(&api, "/readyz").await == 200
        {
            break;
        }
        assert!(
            killed_at.elapsed() < RECOVERY_BOUND,
            "the adopted PostgreSQL was not restarted; log:\n{}",
            server.server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The restart is on another port, so tokens of another issuer: sign in again.
    let token = token_of(&api, &user).await;
    let r = send(api.get("/api/v1/projects?limit=500").bearer_auth(&token)).await;
    r.expect(200);
    let listed = ids(&r.json);
    assert!(committed.iter().all(|id| listed.contains(id)));

    // The restarted PostgreSQL does not outlive berth.
    server.terminate_cleanly("after the restart").await;
    server.remove_dir();
}

/// With `--database-url` Berth restarts nothing, but rides out the outage the same way: fast
/// 503s, not ready, and back by itself once the store is. The external store here is another
/// Berth's own PostgreSQL, killed while that Berth is stopped (SIGSTOP, so it cannot restart
/// it before the outage is seen) and restarted by it once it continues.
#[tokio::test]
async fn an_external_store_that_goes_away_is_waited_for_not_restarted() {
    let owner_dir = Dedicated::new_dir("outage-store", &base_config());
    let owner = Dedicated::start(&owner_dir, ADMIN_PASSWORD);
    let store_data = owner.server.data_dir();
    // Line 5 of postmaster.pid: the socket directory.
    let socket_dir = std::fs::read_to_string(store_data.join("system-pg/postmaster.pid"))
        .unwrap()
        .lines()
        .nth(4)
        .unwrap()
        .trim()
        .to_owned();
    let config = format!(
        "database_url = \"postgres:///berth?host={socket_dir}&user=postgres\"\n{}",
        base_config()
    );
    let dir = Dedicated::new_dir("outage-external", &config);
    // Replicas of one store share its master key.
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::copy(
        store_data.join("master.key"),
        dir.join("data").join("master.key"),
    )
    .unwrap();
    let mut server = Dedicated::start(&dir, ADMIN_PASSWORD);
    assert!(!server.server.data_dir().join("system-pg").exists());
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let (_user, token, project) = create_member(&api, &admin, "external").await;

    let pg = postmaster_pid(&store_data).expect("postmaster.pid");
    send_signal(owner.pid(), libc::SIGSTOP);
    send_signal(pg as u32, libc::SIGKILL);
    let killed_at = Instant::now();
    let mut refused = None;
    while refused.is_none() && killed_at.elapsed() < Duration::from_secs(20) {
        let (a, _) = timed("list", api.get("/api/v1/projects").bearer_auth(&token)).await;
        assert!(a.took < ANSWER_BOUND, "{a:#?}");
        assert!(matches!(a.status, 200 | 503), "{a:#?}");
        if a.status == 503 {
            refused = Some(a);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    send_signal(owner.pid(), libc::SIGCONT);
    let refused = refused.unwrap_or_else(|| {
        panic!(
            "no request refused after the store was killed; log:\n{}",
            server.server.log_text()
        )
    });
    assert_eq!(refused.error, "unavailable");
    assert!(refused.retry_after.is_some(), "{refused:#?}");
    assert_eq!(status_of(&api, "/healthz").await, 200);

    let mut back = false;
    while killed_at.elapsed() < RECOVERY_BOUND {
        let (a, _) = timed("list", api.get("/api/v1/projects").bearer_auth(&token)).await;
        assert!(a.took < ANSWER_BOUND, "{a:#?}");
        if a.status == 200 && status_of(&api, "/readyz").await == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        back,
        "not serving again within {RECOVERY_BOUND:?}; log:\n{}",
        server.server.log_text()
    );
    let r = send(api.get("/api/v1/projects").bearer_auth(&token)).await;
    assert_eq!(ids(&r.json), vec![project.id.to_string()]);
    let metrics = send(api.get("/metrics")).await.text;
    assert!(
        !metrics
            .lines()
            .any(|l| l.starts_with("berth_store_restarts_total")),
        "an external store is not Berth's to restart:\n{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("berth_store_up") && l.ends_with(" 1")),
        "{metrics}"
    );

    assert!(server.terminate().success());
    server.remove_dir();
    owner.remove_dir();
}

/// A restart that fails is retried (with a growing pause) until it works; requests keep
/// failing fast meanwhile.
#[tokio::test]
async fn a_failed_restart_is_retried_until_the_store_can_start() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Dedicated::new_dir("outage-retry", &base_config());
    let server = Dedicated::start(&dir, ADMIN_PASSWORD);
    let data = server.server.data_dir();
    let pgdata = data.join("system-pg");
    let api = Api::new(&server.server);
    let admin = admin_token(&api).await;
    let (_user, token, project) = create_member(&api, &admin, "retry").await;

    // The PostgreSQL user cannot enter its data directory: every start fails until it can.
    let mode = std::fs::metadata(&pgdata).unwrap().permissions().mode();
    std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(0o000)).unwrap();
    let pg = postmaster_pid(&data).expect("postmaster.pid");
    send_signal(pg as u32, libc::SIGKILL);
    let killed_at = Instant::now();
    let failures = || async {
        send(api.get("/metrics"))
            .await
            .text
            .lines()
            .find_map(|l| l.strip_prefix("berth_store_restart_failures_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    while failures().await < 2.0 {
        assert!(
            killed_at.elapsed() < RECOVERY_BOUND,
            "no failed restarts counted; log:\n{}",
            server.server.log_text()
        );
        let (a, _) = timed("list", api.get("/api/v1/projects").bearer_auth(&token)).await;
        assert!(a.took < ANSWER_BOUND, "{a:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (a, _) = timed("list", api.get("/api/v1/projects").bearer_auth(&token)).await;
    assert_eq!(a.status, 503, "{a:#?}");
    assert!(a.took < ANSWER_BOUND && a.retry_after.is_some(), "{a:#?}");
    assert_eq!(status_of(&api, "/readyz").await, 503);
    assert!(server
        .server
        .log_text()
        .contains("restarting the system PostgreSQL failed"));

    // Fixed: the next attempt starts it.
    std::fs::set_permissions(&pgdata, std::fs::Permissions::from_mode(mode)).unwrap();
    let fixed_at = Instant::now();
    while status_of(&api, "/readyz").await != 200 {
        assert!(
            fixed_at.elapsed() < RECOVERY_BOUND,
            "not ready again; log:\n{}",
            server.server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = send(api.get("/api/v1/projects").bearer_auth(&token)).await;
    r.expect(200);
    assert_eq!(ids(&r.json), vec![project.id.to_string()]);
    server.remove_dir();
}
