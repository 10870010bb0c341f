//! Database instances (issue 4): real PostgreSQL clusters created, paused, resumed, resized,
//! repaired and deleted through the API, and reached with `psql` over verify-full TLS.

use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

/// Polls an instance until it has `status` (or panics with its last state after `within`).
pub(crate) async fn wait_status(
    api: &Api,
    token: &str,
    id: &str,
    status: &str,
    within: Duration,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let r = send(
            api.get(&format!("/api/v1/instances/{id}"))
                .bearer_auth(token),
        )
        .await;
        if r.status == 200 && r.json["status"] == status {
            return r.json.clone();
        }
        assert!(
            Instant::now() < deadline,
            "instance {id} never became {status}; last answer {} {}",
            r.status,
            r.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn wait_gone(api: &Api, token: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = send(
            api.get(&format!("/api/v1/instances/{id}"))
                .bearer_auth(token),
        )
        .await;
        if r.status == 404 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "instance {id} was never deleted: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn create_body(project: &str, name: &str) -> Value {
    json!({"name": name, "project_id": project, "engine": "postgres", "version": "15", "region": "local", "memory": "256MB"})
}

pub(crate) async fn ca_file(api: &Api, dir: &Path) -> PathBuf {
    let r = send(api.get("/api/v1/ca.pem")).await;
    r.expect(200);
    assert!(
        r.text.starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        r.text
    );
    let path = dir.join(format!("ca-{}.pem", unique("ca")));
    std::fs::write(&path, &r.text).unwrap();
    path
}

/// Runs one statement with psql over `url` (which carries sslmode=verify-full).
pub(crate) async fn psql(
    url: &str,
    ca: &Path,
    password: &str,
    sql: &str,
) -> Result<String, String> {
    let conn = format!("{url}&sslrootcert={}&connect_timeout=5", ca.display());
    let password = password.to_owned();
    let sql = sql.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("psql")
            .arg(&conn)
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", &sql])
            .env("PGPASSWORD", password)
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    })
    .await
    .unwrap()
}

/// The postmaster of instance `id`.
fn instance_postmaster_pid(data_dir: &Path, id: &str) -> Option<i32> {
    read_pid_file(
        &data_dir
            .join("instances")
            .join(id)
            .join("pgdata/postmaster.pid"),
    )
}

#[tokio::test]
async fn instance_lifecycle_over_verify_full_tls() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "inst").await;
    let project = &project.id.to_string();

    let regions = send(api.get("/api/v1/regions").bearer_auth(&token)).await;
    regions.expect(200);
    assert_eq!(regions.json[0]["id"], "local");
    assert!(regions.json[0]["versions"]
        .as_array()
        .unwrap()
        .contains(&json!("15")));
    assert!(regions.json[0]["memory_sizes"]
        .as_array()
        .unwrap()
        .contains(&json!("256MB")));

    let created = send(
        api.post_json("/api/v1/instances", &create_body(project, "lifecycle"))
            .bearer_auth(&token),
    )
    .await;
    created.expect(202);
    let c = &created.json;
    assert_eq!(c["status"], "creating");
    assert_eq!(c["username"], "app");
    let id = c["id"].as_str().unwrap().to_owned();
    let password = c["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 32, "{password}");
    let url = c["connection_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("postgresql://app@127.0.0.1:") && url.ends_with("sslmode=verify-full"),
        "{url}"
    );
    let job_id = c["job_id"].as_str().unwrap().to_owned();

    let running = wait_status(&api, &token, &id, "running", Duration::from_secs(60)).await;
    assert!(
        running.get("password").is_none(),
        "the password is shown only once"
    );
    let ca = ca_file(&api, &s.dir).await;
    assert_eq!(psql(&url, &ca, &password, "select 1").await.unwrap(), "1");
    assert!(psql(&url, &ca, "wrong password", "select 1").await.is_err());
    let plain = url.replace("sslmode=verify-full", "sslmode=disable");
    let err = psql(&plain, &ca, &password, "select 1").await.unwrap_err();
    assert!(
        err.contains("no pg_hba.conf entry") || err.contains("SSL"),
        "{err}"
    );
    psql(
        &url,
        &ca,
        &password,
        "create table kept (v text); insert into kept values ('survives')",
    )
    .await
    .unwrap();

    let job = send(
        api.get(&format!("/api/v1/jobs/{job_id}"))
            .bearer_auth(&token),
    )
    .await;
    job.expect(200);
    assert_eq!(job.json["type"], "create");
    assert_eq!(job.json["state"], "SUCCESS");
    assert_eq!(job.json["instance_id"], id.as_str());

    // Pause keeps the data and stops the server.
    let paused = send(
        api.post(&format!("/api/v1/instances/{id}/pause"))
            .bearer_auth(&token),
    )
    .await;
    paused.expect(202);
    assert_eq!(paused.json["instance"]["status"], "pausing");
    wait_status(&api, &token, &id, "paused", Duration::from_secs(60)).await;
    assert!(
        psql(&url, &ca, &password, "select 1").await.is_err(),
        "a paused instance accepts no connections"
    );
    assert!(instance_postmaster_pid(&s.data_dir(), &id).is_none_or(|p| !process_alive(p)));
    let again = send(
        api.post(&format!("/api/v1/instances/{id}/pause"))
            .bearer_auth(&token),
    )
    .await;
    again.expect_error(409, "conflict");

    send(
        api.post(&format!("/api/v1/instances/{id}/resume"))
            .bearer_auth(&token),
    )
    .await
    .expect(202);
    wait_status(&api, &token, &id, "running", Duration::from_secs(60)).await;
    assert_eq!(
        psql(&url, &ca, &password, "select v from kept")
            .await
            .unwrap(),
        "survives"
    );

    send(
        api.post(&format!("/api/v1/instances/{id}/restart"))
            .bearer_auth(&token),
    )
    .await
    .expect(202);
    wait_status(&api, &token, &id, "running", Duration::from_secs(60)).await;
    assert_eq!(
        psql(&url, &ca, &password, "select v from kept")
            .await
            .unwrap(),
        "survives"
    );

    // Resize restarts with the new memory class's settings.
    let resized = send(
        api.patch_json(
            &format!("/api/v1/instances/{id}"),
            &json!({"memory": "512MB"}),
        )
        .bearer_auth(&token),
    )
    .await;
    resized.expect(202);
    wait_status(&api, &token, &id, "running", Duration::from_secs(60)).await;
    assert_eq!(
        psql(&url, &ca, &password, "show shared_buffers")
            .await
            .unwrap(),
        "128MB"
    );
    let bad = send(
        api.patch_json(
            &format!("/api/v1/instances/{id}"),
            &json!({"memory": "3GB"}),
        )
        .bearer_auth(&token),
    )
    .await;
    bad.expect_error(400, "invalid_request");

    // Deletion protection, then delete: nothing is left behind.
    let protect = send(
        api.patch_json(
            &format!("/api/v1/instances/{id}"),
            &json!({"deletion_protection": true, "name": "renamed"}),
        )
        .bearer_auth(&token),
    )
    .await;
    protect.expect(200);
    assert_eq!(protect.json["name"], "renamed");
    send(
        api.delete(&format!("/api/v1/instances/{id}"))
            .bearer_auth(&token),
    )
    .await
    .expect_error(409, "conflict");
    send(
        api.patch_json(
            &format!("/api/v1/instances/{id}"),
            &json!({"deletion_protection": false}),
        )
        .bearer_auth(&token),
    )
    .await
    .expect(200);
    let pid = instance_postmaster_pid(&s.data_dir(), &id).expect("running instance has a pid file");
    let deleting = send(
        api.delete(&format!("/api/v1/instances/{id}"))
            .bearer_auth(&token),
    )
    .await;
    deleting.expect(202);
    assert_eq!(deleting.json["instance"]["status"], "destroying");
    wait_gone(&api, &token, &id).await;
    assert!(
        !s.data_dir().join("instances").join(&id).exists(),
        "the instance directory is removed"
    );
    assert!(!process_alive(pid), "the postmaster is gone");
    assert!(
        processes_mentioning(&id).is_empty(),
        "no process of the instance is left"
    );

    let jobs = send(
        api.get(&format!("/api/v1/jobs?instance_id={id}"))
            .bearer_auth(&token),
    )
    .await;
    jobs.expect(200);
    let types: Vec<&str> = jobs.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["type"].as_str().unwrap())
        .collect();
    for t in ["create", "pause", "resume", "restart", "resize", "delete"] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    // A cold create (no spare was ready) is followed by the instance's first backup.
    let backups = jobs.json["stats"]["type"]["backup"].as_i64().unwrap();
    assert!(backups <= 1, "{}", jobs.json);
    assert_eq!(jobs.json["count"], 6 + backups);
    assert_eq!(jobs.json["stats"]["state"]["SUCCESS"], 6 + backups);
    assert_eq!(jobs.json["stats"]["type"]["repair"], 0);
    assert_eq!(jobs.json["stats"]["region"]["local"], 6 + backups);
    assert_eq!(
        jobs.json["stats"]["site"]["local"],
        6 + backups,
        "the deprecated name stays"
    );
}

#[tokio::test]
async fn killed_postmaster_is_repaired_with_data_intact() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "repair").await;
    let created = send(
        api.post_json(
            "/api/v1/instances",
            &create_body(&project.id.to_string(), "repaired"),
        )
        .bearer_auth(&token),
    )
    .await;
    created.expect(202);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let password = created.json["password"].as_str().unwrap().to_owned();
    let url = created.json["connection_url"].as_str().unwrap().to_owned();
    wait_status(&api, &token, &id, "running", Duration::from_secs(60)).await;
    let ca = ca_file(&api, &s.dir).await;
    psql(
        &url,
        &ca,
        &password,
        "create table t (v int); insert into t values (7)",
    )
    .await
    .unwrap();

    let pid = instance_postmaster_pid(&s.data_dir(), &id).unwrap();
    send_signal(pid as u32, libc::SIGKILL);
    // The supervisor notices, records a repair job, and brings the server back.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs = send(
            api.get(&format!("/api/v1/jobs?instance_id={id}&type=repair"))
                .bearer_auth(&token),
        )
        .await;
        let done = jobs.json["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|j| j["state"] == "SUCCESS"));
        if done {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no successful repair job: {}",
            jobs.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_status(&api, &token, &id, "running", Duration::from_secs(30)).await;
    assert_ne!(
        instance_postmaster_pid(&s.data_dir(), &id),
        Some(pid),
        "a new postmaster runs"
    );
    assert_eq!(
        psql(&url, &ca, &password, "select v from t").await.unwrap(),
        "7"
    );
    send(
        api.delete(&format!("/api/v1/instances/{id}"))
            .bearer_auth(&token),
    )
    .await
    .expect(202);
    wait_gone(&api, &token, &id).await;
}

#[tokio::test]
async fn another_projects_instances_and_jobs_are_not_found() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, owner, project) = create_member(&api, &admin, "tenant-a").await;
    let (_, other, other_project) = create_member(&api, &admin, "tenant-b").await;
    let project = &project.id.to_string();
    let created = send(
        api.post_json("/api/v1/instances", &create_body(project, "private"))
            .bearer_auth(&owner),
    )
    .await;
    created.expect(202);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let job = created.json["job_id"].as_str().unwrap().to_owned();
    wait_status(&api, &owner, &id, "running", Duration::from_secs(60)).await;

    for (method, path, body) in [
        ("GET", format!("/api/v1/instances/{id}"), None),
        (
            "PATCH",
            format!("/api/v1/instances/{id}"),
            Some(json!({"name": "stolen"})),
        ),
        ("DELETE", format!("/api/v1/instances/{id}"), None),
        ("POST", format!("/api/v1/instances/{id}/pause"), None),
        ("POST", format!("/api/v1/instances/{id}/resume"), None),
        ("POST", format!("/api/v1/instances/{id}/restart"), None),
        ("GET", format!("/api/v1/jobs/{job}"), None),
    ] {
        let rb = api
            .request(method.parse().unwrap(), &path)
            .bearer_auth(&other);
        let rb = match body {
            Some(b) => rb.json(&b),
            None => rb,
        };
        send(rb).await.expect_error(404, "not_found");
    }
    let list = send(api.get("/api/v1/instances").bearer_auth(&other)).await;
    list.expect(200);
    assert!(!list.text.contains(&id));
    let jobs = send(api.get("/api/v1/jobs").bearer_auth(&other)).await;
    jobs.expect(200);
    assert!(!jobs.text.contains(&id));
    send(
        api.get(&format!("/api/v1/instances?project_id={project}"))
            .bearer_auth(&other),
    )
    .await
    .expect_error(404, "not_found");
    // Creating in someone else's project is the same 404.
    send(
        api.post_json("/api/v1/instances", &create_body(project, "intruder"))
            .bearer_auth(&other),
    )
    .await
    .expect_error(404, "not_found");
    // The other tenant's own list is unaffected.
    let mine = send(
        api.get(&format!(
            "/api/v1/instances?project_id={}",
            &other_project.id.to_string()
        ))
        .bearer_auth(&other),
    )
    .await;
    mine.expect(200);
    assert_eq!(mine.json["count"], 0);
    let counted = send(
        api.get(&format!("/api/v1/projects/{project}"))
            .bearer_auth(&owner),
    )
    .await;
    counted.expect(200);
    assert_eq!(counted.json["instance_count"], 1);
    // A project with instances cannot be deleted.
    send(
        api.delete(&format!("/api/v1/projects/{project}"))
            .bearer_auth(&owner),
    )
    .await
    .expect_error(409, "conflict");

    send(
        api.delete(&format!("/api/v1/instances/{id}"))
            .bearer_auth(&owner),
    )
    .await
    .expect(202);
    wait_gone(&api, &owner, &id).await;
}

#[tokio::test]
async fn malformed_and_duplicate_creates_get_clear_4xx() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "malformed").await;
    let project = &project.id.to_string();
    let base = create_body(project, "valid-name");
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases: Vec<(Value, u16, &str)> = vec![
        (with("region", json!("mars")), 400, "unknown region"),
        (with("memory", json!("3GB")), 400, "unknown memory size"),
        (with("engine", json!("mysql")), 400, "unknown engine"),
        (with("version", json!("9")), 400, "version"),
        (with("storage", json!("1PB")), 400, "storage"),
        (with("name", json!("x".repeat(5000))), 400, "name must be"),
        (with("name", json!("")), 400, "name must be"),
        (with("name", json!("bad name!")), 400, "name must be"),
        (with("surprise", json!(1)), 400, "unknown field"),
        (json!({"name": "incomplete"}), 400, "missing field"),
        (with("memory", json!(256)), 400, "invalid type"),
    ];
    for (body, status, needle) in cases {
        let r = send(
            api.post_json("/api/v1/instances", &body)
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert!(
            r.json["message"].as_str().unwrap_or("").contains(needle),
            "{body}: {}",
            r.json
        );
        assert!(r.json["request_id"].is_string());
    }
    let first = send(
        api.post_json("/api/v1/instances", &create_body(project, "twin"))
            .bearer_auth(&token),
    )
    .await;
    first.expect(202);
    let dup = send(
        api.post_json("/api/v1/instances", &create_body(project, "twin"))
            .bearer_auth(&token),
    )
    .await;
    dup.expect_error(409, "conflict");
    assert!(dup.json["message"].as_str().unwrap().contains("twin"));
    // A viewer of the project may look but not create.
    let viewer = create_user(&api, &admin, "viewer").await;
    send(
        api.put_json(
            &format!("/api/v1/projects/{project}/members/{}", viewer.id),
            &json!({"role": "viewer"}),
        )
        .bearer_auth(&token),
    )
    .await
    .expect(200);
    let viewer_token = token_of(&api, &viewer).await;
    send(
        api.post_json("/api/v1/instances", &create_body(project, "by-viewer"))
            .bearer_auth(&viewer_token),
    )
    .await
    .expect_error(403, "forbidden");
    let seen = send(
        api.get(&format!(
            "/api/v1/instances/{}",
            first.json["id"].as_str().unwrap()
        ))
        .bearer_auth(&viewer_token),
    )
    .await;
    seen.expect(200);
    let id = first.json["id"].as_str().unwrap();
    wait_status(&api, &token, id, "running", Duration::from_secs(60)).await;
    send(
        api.delete(&format!("/api/v1/instances/{id}"))
            .bearer_auth(&token),
    )
    .await
    .expect(202);
    wait_gone(&api, &token, id).await;
}

#[tokio::test]
async fn idempotency_key_returns_the_original_create() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "idem").await;
    let body = create_body(&project.id.to_string(), "once");
    let key = unique("key");
    let first = send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token)
            .header("Idempotency-Key", &key),
    )
    .await;
    first.expect(202);
    let retry = send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token)
            .header("Idempotency-Key", &key),
    )
    .await;
    retry.expect(202);
    assert_eq!(retry.json["id"], first.json["id"]);
    assert_eq!(retry.json["password"], first.json["password"]);
    let mut other = body.clone();
    other["name"] = json!("different");
    send(
        api.post_json("/api/v1/instances", &other)
            .bearer_auth(&token)
            .header("Idempotency-Key", &key),
    )
    .await
    .expect_error(409, "conflict");
    let list = send(
        api.get(&format!(
            "/api/v1/instances?project_id={}",
            &project.id.to_string()
        ))
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(list.json["count"], 1, "one instance, not two");
    let id = first.json["id"].as_str().unwrap();
    wait_status(&api, &token, id, "running", Duration::from_secs(60)).await;
    send(
        api.delete(&format!("/api/v1/instances/{id}"))
            .bearer_auth(&token),
    )
    .await
    .expect(202);
    wait_gone(&api, &token, id).await;
}

/// Berth killed in the middle of creates comes back consistent; spares are claimed.
#[tokio::test]
async fn killed_berth_finishes_interrupted_creates_and_spares_are_claimed() {
    let config = format!("{}\n", base_config()).replace("spares = 0", "spares = 1");
    let dir = Dedicated::new_dir("instances-crash", &config);
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let admin = admin_token(&api).await;
    let project = create_project(&api, &admin, "crash").await;
    let project = project.id.to_string();
    let mut created = Vec::new();
    for n in 0..3 {
        let r = send(
            api.post_json(
                "/api/v1/instances",
                &create_body(&project, &format!("crash-{n}")),
            )
            .bearer_auth(&admin),
        )
        .await;
        r.expect(202);
        created.push((
            r.json["id"].as_str().unwrap().to_owned(),
            r.json["password"].as_str().unwrap().to_owned(),
            r.json["connection_url"].as_str().unwrap().to_owned(),
        ));
    }
    // Killed mid-flight: jobs are pending or started, maybe a cluster half copied.
    d.stop_with(libc::SIGKILL);
    d.restart(ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let admin = admin_token(&api).await;
    let ca = ca_file(&api, &d.server.dir).await;
    for (id, password, url) in &created {
        let row = wait_status(&api, &admin, id, "running", Duration::from_secs(90)).await;
        assert!(row["status_message"].is_null());
        assert_eq!(psql(url, &ca, password, "select 1").await.unwrap(), "1");
    }
    // (First backups of the cold-created ones may be under way: they run beside.)
    let stuck = send(
        api.get("/api/v1/jobs?state=STARTED&type=create")
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(stuck.json["count"], 0, "{}", stuck.json);

    // With a spare ready, a create claims it: the cluster already runs, so it is ready fast.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !d.server.log_text().is_empty() && Instant::now() < deadline {
        let spares: Vec<_> = std::fs::read_dir(d.server.data_dir().join("instances"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                !created
                    .iter()
                    .any(|(id, _, _)| e.file_name().to_string_lossy() == id.as_str())
            })
            .collect();
        if !spares.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spare = send(
        api.post_json("/api/v1/instances", &create_body(&project, "from-spare"))
            .bearer_auth(&admin),
    )
    .await;
    spare.expect(202);
    let id = spare.json["id"].as_str().unwrap();
    wait_status(&api, &admin, id, "running", Duration::from_secs(30)).await;
    let url = spare.json["connection_url"].as_str().unwrap();
    assert_eq!(
        psql(
            url,
            &ca,
            spare.json["password"].as_str().unwrap(),
            "select current_user"
        )
        .await
        .unwrap(),
        "app"
    );

    // Every instance is stopped with Berth (stop_on_shutdown) and nothing is left running.
    assert!(d.terminate().success());
    assert!(
        processes_mentioning(&d.server.data_dir().join("instances").display().to_string())
            .is_empty()
    );
    d.remove_dir();
}
