//! Backups over time and through crashes (issue 9), on a server of its own with a test clock
//! and one spare: a spare's instance is restorable from its first second; the scheduler takes
//! the policy's full backup when the clock passes its time; count retention removes what it
//! should and never what a kept backup needs (a restore from a kept incremental backup works);
//! Berth killed in the middle of a backup and of a restore finishes both after its restart,
//! with no tool process, staging directory or half-made row left; a deleted instance's backups
//! go once its retention has run out.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::backups::{
    ca_file, completed_backups, create_body, make, post_when_free, psql, wait_job, wait_status,
};
use crate::common::*;

/// Our backup and restore commands (and only those) log each file they copy.
const TOOL_MARK: &str = "--log-level-console=detail";

async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    within: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every kept backup's base is kept too.
fn assert_bases_kept(backups: &[Value]) {
    for b in backups {
        if let Some(base) = b["depends_on"].as_str() {
            assert!(
                backups.iter().any(|x| x["id"] == base),
                "backup {} lost its base {base}: {backups:?}",
                b["id"]
            );
        }
        if b["type"] != "full" {
            assert!(b["depends_on"].is_string(), "{b}");
        }
    }
}

async fn backup_now(api: &Api, token: &str, id: &str, kind: &str) -> Value {
    let r = post_when_free(
        api,
        token,
        &format!("/api/v1/instances/{id}/backups"),
        &json!({ "type": kind }),
    )
    .await;
    r.expect(202);
    let job = wait_job(api, token, r.json["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "SUCCESS", "{job}");
    r.json["backup"].clone()
}

/// Polls a job until it is in `step` (with the tool reporting progress when `copying`).
async fn wait_step(api: &Api, token: &str, job: &str, step: &str, copying: bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = send(api.get(&format!("/api/v1/jobs/{job}")).bearer_auth(token)).await;
        r.expect(200);
        if r.json["step"] == step && (!copying || !processes_mentioning(TOOL_MARK).is_empty()) {
            return;
        }
        assert!(
            Instant::now() < deadline && r.json["state"] != "SUCCESS",
            "job {job} never got to {step}: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn schedules_retention_and_crashes_in_the_middle() {
    let config = base_config().replace("spares = 0", "spares = 1");
    let dir = Dedicated::new_dir("backup-ops", &config);
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    let project = create_project(&api, &token, "backup-ops")
        .await
        .id
        .to_string();
    let ca = ca_file(&api).await;

    // A spare comes with its first backup: its instance is restorable at once.
    let repo = d.server.data_dir().join("backups/repository/backup");
    // (A backup is complete once the stanza's backup.info lists it.)
    wait_for("a spare with its backup", Duration::from_secs(90), || {
        let repo = repo.clone();
        async move {
            std::fs::read_dir(&repo)
                .into_iter()
                .flatten()
                .flatten()
                .any(|stanza| {
                    std::fs::read_to_string(stanza.path().join("backup.info"))
                        .is_ok_and(|info| info.lines().any(|l| l.contains("F={")))
                })
        }
    })
    .await;
    // Marked ready just after.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = make(&api, &token, create_body(&project, "scheduled")).await;
    // (Recorded beside the create.)
    wait_for(
        "the spare's backup to be the instance's",
        Duration::from_secs(10),
        || async { !completed_backups(&api, &token, &a.id).await.is_empty() },
    )
    .await;
    let jobs = send(
        api.get(&format!("/api/v1/jobs?instance_id={}&type=backup", a.id))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(jobs.json["count"], 0, "no backup was needed: {}", jobs.json);
    let first = completed_backups(&api, &token, &a.id).await;
    assert_eq!(
        first.len(),
        1,
        "the spare's backup is the instance's: {first:?}"
    );
    assert_eq!(first[0]["trigger"], "initial");
    // Restorable once the backup is consistent: within a second of its end.
    wait_for("a restore window", Duration::from_secs(5), || async {
        let w = send(
            api.get(&format!("/api/v1/instances/{}/restore-window", a.id))
                .bearer_auth(&token),
        )
        .await;
        w.json["earliest"].is_string() && w.json["continuous"] == true
    })
    .await;
    psql(
        &a.url,
        &ca,
        &a.password,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1)",
    )
    .await
    .unwrap();

    // The policy's full backup, two minutes from now, taken once the clock passes it.
    let at = chrono::Utc::now() + chrono::Duration::minutes(2);
    let policy = json!({"enabled": true, "full_backup_time": at.format("%H:%M").to_string(),
        "full_backup_days": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        "differential_every_hours": null, "retention_days": null, "retention_full_backups": 2});
    send(
        api.put_json(
            &format!("/api/v1/instances/{}/backup-policy", a.id),
            &policy,
        )
        .bearer_auth(&token),
    )
    .await
    .expect(200);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        completed_backups(&api, &token, &a.id).await.len(),
        1,
        "not before its time"
    );
    d.server.advance_clock(180);
    wait_for(
        "the scheduled full backup",
        Duration::from_secs(90),
        || async {
            completed_backups(&api, &token, &a.id)
                .await
                .iter()
                .any(|b| b["trigger"] == "scheduled" && b["type"] == "full")
        },
    )
    .await;
    // Back to the system clock: the store records backups on it, so with the clock still ahead
    // the backups taken below (in the two minutes before the slot, on the system clock) would
    // not count as the slot's.
    d.server.advance_clock(-180);
    let scheduled = completed_backups(&api, &token, &a.id).await;
    let scheduled_full = scheduled
        .iter()
        .find(|b| b["trigger"] == "scheduled")
        .unwrap()["id"]
        .clone();

    // Count retention (2 full backups): an incremental on the scheduled one, then a third full
    // backup expires only the oldest full one.
    psql(&a.url, &ca, &a.password, "INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    let incr = backup_now(&api, &token, &a.id, "incr").await;
    psql(&a.url, &ca, &a.password, "INSERT INTO t VALUES (3)")
        .await
        .unwrap();
    backup_now(&api, &token, &a.id, "full").await;
    let kept = completed_backups(&api, &token, &a.id).await;
    assert_bases_kept(&kept);
    assert!(
        kept.iter().all(|b| b["trigger"] != "initial"),
        "the oldest full went: {kept:?}"
    );
    let kept_incr = kept
        .iter()
        .find(|b| b["id"] == incr["id"])
        .expect("the incremental stays");
    assert_eq!(kept_incr["depends_on"], scheduled_full);
    let mut body = create_body(&project, "from-incr");
    body["source"] = json!({"instance_id": a.id, "backup_id": incr["id"]});
    let from_incr = make(&api, &token, body).await;
    assert_eq!(
        psql(
            &from_incr.url,
            &ca,
            &from_incr.password,
            "SELECT string_agg(x::text, ',' ORDER BY x) FROM t"
        )
        .await
        .unwrap(),
        "1,2"
    );
    // One more full backup: the scheduled one goes, and the incremental based on it with it.
    backup_now(&api, &token, &a.id, "full").await;
    let kept = completed_backups(&api, &token, &a.id).await;
    assert_bases_kept(&kept);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(kept
        .iter()
        .all(|b| b["type"] == "full" && b["id"] != scheduled_full));

    // Killed in the middle of a backup: the tool dies with Berth; the job runs again.
    psql(
        &a.url,
        &ca,
        &a.password,
        "CREATE TABLE big AS SELECT g, md5(g::text) AS m FROM generate_series(1, 1500000) g",
    )
    .await
    .unwrap();
    let r = post_when_free(
        &api,
        &token,
        &format!("/api/v1/instances/{}/backups", a.id),
        &json!({}),
    )
    .await;
    r.expect(202);
    let job = r.json["job_id"].as_str().unwrap().to_owned();
    let interrupted = r.json["backup"]["id"].clone();
    wait_step(&api, &token, &job, "backup", true).await;
    d.stop_with(libc::SIGKILL);
    wait_for(
        "the backup tool to die with Berth",
        Duration::from_secs(10),
        || async { processes_mentioning(TOOL_MARK).is_empty() },
    )
    .await;
    d.restart(ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    assert_eq!(wait_job(&api, &token, &job).await["state"], "SUCCESS");
    let all = send(
        api.get(&format!("/api/v1/instances/{}/backups", a.id))
            .bearer_auth(&token),
    )
    .await;
    all.expect(200);
    let rows = all.json["results"].as_array().unwrap();
    assert!(rows.iter().all(|b| b["status"] == "completed"), "{rows:?}");
    assert_eq!(
        rows.iter().filter(|b| b["id"] == interrupted).count(),
        1,
        "{rows:?}"
    );
    assert_bases_kept(rows);

    // Killed in the middle of a restore: it finishes after the restart, nothing half-made.
    let mut body = create_body(&project, "crash-restore");
    body["source"] = json!({"instance_id": a.id});
    let r = send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    let (clone_id, clone_password) = (
        r.json["id"].as_str().unwrap().to_owned(),
        r.json["password"].as_str().unwrap().to_owned(),
    );
    wait_step(
        &api,
        &token,
        r.json["job_id"].as_str().unwrap(),
        "restore",
        true,
    )
    .await;
    d.stop_with(libc::SIGKILL);
    wait_for(
        "the restore tool to die with Berth",
        Duration::from_secs(10),
        || async { processes_mentioning(TOOL_MARK).is_empty() },
    )
    .await;
    d.restart(ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    let clone = wait_status(&api, &token, &clone_id, "running", Duration::from_secs(180)).await;
    let url = clone["connection_url"].as_str().unwrap();
    assert_eq!(
        psql(url, &ca, &clone_password, "SELECT count(*) FROM big")
            .await
            .unwrap(),
        "1500000"
    );
    let clone_dir = d.server.data_dir().join("instances").join(&clone_id);
    assert!(!clone_dir.join(".pgdata.restore").exists());

    // Deleted: kept for the retention (30 days for a count policy), then removed.
    let r = send(
        api.delete(&format!("/api/v1/instances/{}", a.id))
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    let listed = send(
        api.get(&format!(
            "/api/v1/projects/{project}/backups?instance_id={}",
            a.id
        ))
        .bearer_auth(&token),
    )
    .await;
    assert!(
        listed.json["count"].as_i64().unwrap() >= 2,
        "{}",
        listed.json
    );
    d.server.advance_clock(31 * 86_400);
    let token = admin_token(&api).await;
    wait_for(
        "the deleted instance's backups to go",
        Duration::from_secs(60),
        || async {
            let r = send(
                api.get(&format!(
                    "/api/v1/projects/{project}/backups?instance_id={}",
                    a.id
                ))
                .bearer_auth(&token),
            )
            .await;
            r.json["count"] == 0
        },
    )
    .await;
    send(
        api.get(&format!("/api/v1/instances/{}/backups", a.id))
            .bearer_auth(&token),
    )
    .await
    .expect(404);
    assert!(
        !repo.join(&a.id).exists(),
        "its stanza is gone from the repository"
    );
    // The clone and the restore from the incremental backup keep theirs.
    assert!(
        !completed_backups(&api, &token, &clone_id).await.is_empty()
            || repo.join(&clone_id).exists()
    );
    let _ = from_incr;
    d.terminate_cleanly("after the backup operations").await;
    d.remove_dir();
}

/// A repository the config names must exist: Berth does not start (and leaves nothing
/// running) rather than write backups somewhere else.
#[tokio::test]
async fn a_configured_repository_that_does_not_exist_stops_the_start() {
    let config = format!(
        "{}\n[backups]\nrepository = \"/nonexistent/berth-repository\"\n",
        base_config()
    );
    let dir = Dedicated::new_dir("backup-repo-missing", &config);
    let log = dir.join("berth.log");
    let mut child = spawn_berth(&dir, free_port(), ADMIN_PASSWORD, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "berth started anyway");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("[backups] repository /nonexistent/berth-repository does not exist"),
        "{text}"
    );
    assert!(system_postgres_processes(&dir.join("data")).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
