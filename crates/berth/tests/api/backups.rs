//! Backups and recovery (issue 9), with real PostgreSQL and real pgBackRest: rows written, a
//! moment noted, more rows and a dropped table; a point-in-time restore yields exactly what was
//! committed by then; a restore from a backup, a clone, a deleted instance brought back, a
//! moment outside the window refused, dependent backups protected, policies validated, and
//! another project's member shut out of every backup route.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;
pub(crate) use crate::instances::{create_body, psql};

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
            Instant::now() < deadline && r.json["status"] != "failed",
            "instance {id} never became {status}; last answer {} {}",
            r.status,
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn wait_job(api: &Api, token: &str, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = send(api.get(&format!("/api/v1/jobs/{job}")).bearer_auth(token)).await;
        r.expect(200);
        if !matches!(r.json["state"].as_str(), Some("PENDING" | "STARTED")) {
            return r.json.clone();
        }
        assert!(
            Instant::now() < deadline,
            "job {job} never ended: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts until the instance is not busy (its first backup may be running).
pub(crate) async fn post_when_free(api: &Api, token: &str, path: &str, body: &Value) -> Resp {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = send(api.post_json(path, body).bearer_auth(token)).await;
        if r.status == 409
            && r.json["message"]
                .as_str()
                .is_some_and(|m| m.contains("busy") || m.contains("under way"))
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        return r;
    }
}

pub(crate) async fn ca_file(api: &Api) -> PathBuf {
    let r = send(api.get("/api/v1/ca.pem")).await;
    r.expect(200);
    let path = std::env::temp_dir().join(format!("{}.pem", unique("backup-ca")));
    std::fs::write(&path, &r.text).unwrap();
    path
}

/// An instance created and running, with its password and connection URL.
pub(crate) struct Made {
    pub id: String,
    pub password: String,
    pub url: String,
    pub body: Value,
}

pub(crate) async fn make(api: &Api, token: &str, body: Value) -> Made {
    let r = send(api.post_json("/api/v1/instances", &body).bearer_auth(token)).await;
    r.expect(202);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let made = wait_status(api, token, &id, "running", Duration::from_secs(180)).await;
    Made {
        id,
        password: r.json["password"].as_str().unwrap().to_owned(),
        url: made["connection_url"].as_str().unwrap().to_owned(),
        body: made,
    }
}

pub(crate) async fn completed_backups(api: &Api, token: &str, id: &str) -> Vec<Value> {
    let r = send(
        api.get(&format!("/api/v1/instances/{id}/backups?status=completed"))
            .bearer_auth(token),
    )
    .await;
    r.expect(200);
    r.json["results"].as_array().unwrap().clone()
}

#[tokio::test]
async fn point_in_time_restore_clone_and_a_deleted_instance_brought_back() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "pitr").await;
    let project = project.id.to_string();
    let ca = ca_file(&api).await;
    let src = make(&api, &token, create_body(&project, "source")).await;

    // Its first backup comes with it (from the spare) or right after (a cold create).
    let deadline = Instant::now() + Duration::from_secs(120);
    while completed_backups(&api, &token, &src.id).await.is_empty() {
        assert!(Instant::now() < deadline, "no first backup");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let first = completed_backups(&api, &token, &src.id).await;
    assert_eq!(first[0]["trigger"], "initial", "{first:?}");
    assert_eq!(first[0]["type"], "full");
    assert!(first[0]["size"].as_i64().unwrap() > 0);
    assert!(first[0]["label"].as_str().unwrap().ends_with('F'));

    psql(
        &src.url,
        &ca,
        &src.password,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2)",
    )
    .await
    .unwrap();
    // A full backup on demand, then more rows, a noted moment, more, and a dropped table.
    let r = post_when_free(
        &api,
        &token,
        &format!("/api/v1/instances/{}/backups", src.id),
        &json!({}),
    )
    .await;
    r.expect(202);
    assert!(
        ["pending", "running"].contains(&r.json["backup"]["status"].as_str().unwrap()),
        "{}",
        r.json
    );
    assert_eq!(r.json["backup"]["trigger"], "manual");
    let backup_id = r.json["backup"]["id"].as_str().unwrap().to_owned();
    let job = wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "SUCCESS", "{job}");
    assert_eq!(job["type"], "backup");
    let b = send(
        api.get(&format!("/api/v1/instances/{}/backups/{backup_id}", src.id))
            .bearer_auth(&token),
    )
    .await;
    b.expect(200);
    assert_eq!(b.json["status"], "completed", "{}", b.json);
    for field in [
        "started_at",
        "finished_at",
        "wal_start",
        "wal_stop",
        "lsn_start",
        "lsn_stop",
        "restorable_from",
        "restorable_until",
    ] {
        assert!(!b.json[field].is_null(), "{field}: {}", b.json);
    }
    // The instance went on running.
    wait_status(&api, &token, &src.id, "running", Duration::from_secs(5)).await;

    psql(&src.url, &ca, &src.password, "INSERT INTO t VALUES (3)")
        .await
        .unwrap();
    let noted = psql(
        &src.url,
        &ca,
        &src.password,
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    )
    .await
    .unwrap();
    psql(
        &src.url,
        &ca,
        &src.password,
        "INSERT INTO t VALUES (4); DROP TABLE t",
    )
    .await
    .unwrap();

    let window = send(
        api.get(&format!("/api/v1/instances/{}/restore-window", src.id))
            .bearer_auth(&token),
    )
    .await;
    window.expect(200);
    assert_eq!(window.json["continuous"], true, "{}", window.json);
    let earliest = window.json["earliest"].as_str().unwrap().to_owned();
    assert!(earliest.as_str() < noted.as_str(), "{earliest} {noted}");

    // Outside the window: refused up front, naming the window.
    let mut outside = create_body(&project, "too-early");
    outside["source"] = json!({"instance_id": src.id, "point_in_time": "2001-01-01T00:00:00Z"});
    let r = send(
        api.post_json("/api/v1/instances", &outside)
            .bearer_auth(&token),
    )
    .await;
    r.expect_error(400, "invalid_request");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("restore window"),
        "{}",
        r.json
    );
    outside["source"]["point_in_time"] = json!("2999-01-01T00:00:00Z");
    send(
        api.post_json("/api/v1/instances", &outside)
            .bearer_auth(&token),
    )
    .await
    .expect(400);
    // Both a backup and a moment, a wrong version, an unknown source: clear 4xx.
    outside["source"] =
        json!({"instance_id": src.id, "point_in_time": noted, "backup_id": backup_id});
    send(
        api.post_json("/api/v1/instances", &outside)
            .bearer_auth(&token),
    )
    .await
    .expect(400);
    outside["source"] = json!({"instance_id": src.id});
    outside["version"] = json!("14");
    send(
        api.post_json("/api/v1/instances", &outside)
            .bearer_auth(&token),
    )
    .await
    .expect(400);
    outside["version"] = json!("15");
    outside["source"] = json!({"instance_id": uuid::Uuid::now_v7()});
    send(
        api.post_json("/api/v1/instances", &outside)
            .bearer_auth(&token),
    )
    .await
    .expect(404);

    // To the noted moment: exactly the rows committed by then, and the table.
    let mut body = create_body(&project, "at-noted");
    body["source"] = json!({"instance_id": src.id, "point_in_time": noted});
    let r = send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    assert_eq!(r.json["current_job"]["type"], "restore");
    let pitr_id = r.json["id"].as_str().unwrap().to_owned();
    let pitr_password = r.json["password"].as_str().unwrap().to_owned();
    assert_ne!(pitr_password, src.password);
    let pitr = wait_status(&api, &token, &pitr_id, "running", Duration::from_secs(180)).await;
    let url = pitr["connection_url"].as_str().unwrap();
    assert_eq!(
        psql(
            url,
            &ca,
            &pitr_password,
            "SELECT string_agg(x::text, ',' ORDER BY x) FROM t"
        )
        .await
        .unwrap(),
        "1,2,3"
    );
    let from = &pitr["restored_from"];
    assert_eq!(from["instance_id"], src.id.as_str());
    assert!(
        from["recovered_to_time"]
            .as_str()
            .is_some_and(|t| t <= noted.as_str()),
        "{from}"
    );
    assert!(from["recovered_to_lsn"].is_string(), "{from}");
    // The old password is not the new instance's.
    assert!(psql(url, &ca, &src.password, "SELECT 1").await.is_err());

    // From the on-demand backup: the rows it held.
    let mut body = create_body(&project, "from-backup");
    body["source"] = json!({"instance_id": src.id, "backup_id": backup_id});
    let restored = make(&api, &token, body).await;
    assert_eq!(
        psql(
            &restored.url,
            &ca,
            &restored.password,
            "SELECT string_agg(x::text, ',' ORDER BY x) FROM t"
        )
        .await
        .unwrap(),
        "1,2"
    );
    assert_eq!(
        restored.body["restored_from"]["backup_id"],
        backup_id.as_str()
    );

    // A clone: the latest state (the table is gone, a new one is there).
    psql(
        &src.url,
        &ca,
        &src.password,
        "CREATE TABLE after (y text); INSERT INTO after VALUES ('latest')",
    )
    .await
    .unwrap();
    let mut body = create_body(&project, "clone");
    body["source"] = json!({"instance_id": src.id});
    let clone = make(&api, &token, body).await;
    assert_eq!(
        psql(&clone.url, &ca, &clone.password, "SELECT y FROM after")
            .await
            .unwrap(),
        "latest"
    );
    assert!(psql(&clone.url, &ca, &clone.password, "SELECT 1 FROM t")
        .await
        .is_err());

    // Deleted: its backups stay listable through the project, and it can be brought back.
    psql(
        &src.url,
        &ca,
        &src.password,
        "INSERT INTO after VALUES ('last words')",
    )
    .await
    .unwrap();
    let r = send(
        api.delete(&format!("/api/v1/instances/{}", src.id))
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    send(
        api.get(&format!("/api/v1/instances/{}", src.id))
            .bearer_auth(&token),
    )
    .await
    .expect(404);
    let listed = send(
        api.get(&format!(
            "/api/v1/projects/{project}/backups?instance_id={}",
            src.id
        ))
        .bearer_auth(&token),
    )
    .await;
    listed.expect(200);
    assert!(
        listed.json["count"].as_i64().unwrap() >= 2,
        "{}",
        listed.json
    );
    assert_eq!(listed.json["results"][0]["instance_deleted"], true);
    let window = send(
        api.get(&format!("/api/v1/instances/{}/restore-window", src.id))
            .bearer_auth(&token),
    )
    .await;
    window.expect(200);
    assert_eq!(window.json["continuous"], false, "{}", window.json);
    // Two at once (each prefetches the archive into a queue of its own).
    let mut body = create_body(&project, "revived");
    body["source"] = json!({"instance_id": src.id});
    let mut twin = create_body(&project, "revived-twin");
    twin["source"] = json!({"instance_id": src.id});
    let (revived, twin) = tokio::join!(make(&api, &token, body), make(&api, &token, twin));
    for r in [&revived, &twin] {
        assert_eq!(
            psql(
                &r.url,
                &ca,
                &r.password,
                "SELECT string_agg(y, ',' ORDER BY y) FROM after"
            )
            .await
            .unwrap(),
            "last words,latest"
        );
    }
    // Every new instance gets a first backup of its own.
    let deadline = Instant::now() + Duration::from_secs(120);
    while completed_backups(&api, &token, &revived.id)
        .await
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the restored instance never got a first backup"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in [&pitr_id, &restored.id, &clone.id, &revived.id, &twin.id] {
        let r = send(
            api.delete(&format!("/api/v1/instances/{id}"))
                .bearer_auth(&token),
        )
        .await;
        r.expect(202);
        wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    }
    // Deleting the project takes its deleted instances' backups with it.
    let stanzas = s.data_dir().join("backups/repository/backup");
    assert!(stanzas.join(&src.id).exists());
    send(
        api.delete(&format!("/api/v1/projects/{project}"))
            .bearer_auth(&token),
    )
    .await
    .expect(204);
    for id in [&src.id, &pitr_id, &revived.id] {
        assert!(
            !stanzas.join(id).exists(),
            "{id}'s backups went with its project"
        );
    }
}

#[tokio::test]
async fn dependent_backups_policies_and_other_tenants() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "bk-deps").await;
    let (_, stranger, _) = create_member(&api, &admin, "bk-stranger").await;
    let project = project.id.to_string();
    let inst = make(&api, &token, create_body(&project, "deps")).await;
    let base = format!("/api/v1/instances/{}", inst.id);
    let deadline = Instant::now() + Duration::from_secs(120);
    while completed_backups(&api, &token, &inst.id).await.is_empty() {
        assert!(Instant::now() < deadline, "no first backup");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // One backup at a time: a second while the first runs is a 409 that says so.
    let r = post_when_free(&api, &token, &format!("{base}/backups"), &json!({})).await;
    r.expect(202);
    let second = send(
        api.post_json(&format!("{base}/backups"), &json!({}))
            .bearer_auth(&token),
    )
    .await;
    second.expect_error(409, "conflict");
    assert!(
        second.json["message"]
            .as_str()
            .unwrap()
            .contains("a backup of this instance is under way"),
        "{}",
        second.json
    );
    assert_eq!(
        wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await["state"],
        "SUCCESS"
    );

    // An incremental backup builds on the full one, which then cannot be deleted.
    let r = post_when_free(
        &api,
        &token,
        &format!("{base}/backups"),
        &json!({"type": "incr"}),
    )
    .await;
    r.expect(202);
    let incr = r.json["backup"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await["state"],
        "SUCCESS"
    );
    let all = completed_backups(&api, &token, &inst.id).await;
    let incr_row = all
        .iter()
        .find(|b| b["id"] == incr.as_str())
        .expect("incr listed");
    assert_eq!(incr_row["type"], "incr");
    let full = incr_row["depends_on"]
        .as_str()
        .expect("depends on the full backup")
        .to_owned();
    let r = send(
        api.delete(&format!("{base}/backups/{full}"))
            .bearer_auth(&token),
    )
    .await;
    r.expect_error(409, "conflict");
    assert!(
        r.json["message"].as_str().unwrap().contains(&incr),
        "{}",
        r.json
    );
    // The dependent one goes; then the full one may.
    send(
        api.delete(&format!("{base}/backups/{incr}"))
            .bearer_auth(&token),
    )
    .await
    .expect(204);
    send(
        api.delete(&format!("{base}/backups/{incr}"))
            .bearer_auth(&token),
    )
    .await
    .expect(404);
    assert!(completed_backups(&api, &token, &inst.id)
        .await
        .iter()
        .all(|b| b["id"] != incr.as_str()));

    // Bad input: clear 400s, nothing changed.
    send(
        api.post_json(&format!("{base}/backups"), &json!({"type": "weekly"}))
            .bearer_auth(&token),
    )
    .await
    .expect(400);
    send(
        api.get(&format!("{base}/backups?status=lost"))
            .bearer_auth(&token),
    )
    .await
    .expect(400);
    let policy = send(
        api.get(&format!("{base}/backup-policy"))
            .bearer_auth(&token),
    )
    .await;
    policy.expect(200);
    assert_eq!(policy.json["enabled"], true);
    assert_eq!(policy.json["retention_days"], 30);
    assert_eq!(policy.json["full_backup_days"].as_array().unwrap().len(), 7);
    let good = json!({"enabled": true, "full_backup_time": "04:30", "full_backup_days": ["sunday", "wednesday"],
                      "differential_every_hours": 6, "retention_days": null, "retention_full_backups": 4});
    for (field, value) in [
        ("full_backup_time", json!("4:30")),
        ("full_backup_time", json!("24:00")),
        ("full_backup_days", json!([])),
        ("differential_every_hours", json!(0)),
        ("retention_full_backups", json!(null)),
        ("retention_days", json!(7)),
    ] {
        let mut bad = good.clone();
        bad[field] = value;
        let r = send(
            api.put_json(&format!("{base}/backup-policy"), &bad)
                .bearer_auth(&token),
        )
        .await;
        r.expect(400);
    }
    let r = send(
        api.put_json(&format!("{base}/backup-policy"), &good)
            .bearer_auth(&token),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["full_backup_days"], json!(["wednesday", "sunday"]));
    let r = send(
        api.get(&format!("{base}/backup-policy"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(r.json["retention_full_backups"], 4);

    // Another project's member: 404 for every backup route, and as a restore source.
    let some = uuid::Uuid::now_v7();
    for (method, path) in [
        ("get", format!("{base}/backups")),
        ("post", format!("{base}/backups")),
        ("get", format!("{base}/backups/{full}")),
        ("delete", format!("{base}/backups/{full}")),
        ("get", format!("{base}/backup-policy")),
        ("put", format!("{base}/backup-policy")),
        ("get", format!("{base}/restore-window")),
        ("get", format!("/api/v1/projects/{project}/backups")),
        ("get", format!("/api/v1/instances/{some}/backups")),
    ] {
        let rb = match method {
            "get" => api.get(&path),
            "delete" => api.delete(&path),
            "post" => api.post_json(&path, &json!({})),
            _ => api.put_json(&path, &good),
        };
        let r = send(rb.bearer_auth(&stranger)).await;
        assert_eq!(r.status, 404, "{method} {path}: {} {}", r.status, r.json);
    }
    // A viewer of the project may read its backups but not copy its data into a project of
    // their own (they would get the copy's password).
    let (viewer, viewer_token, viewer_project) = create_member(&api, &admin, "bk-viewer").await;
    send(
        api.put_json(
            &format!("/api/v1/projects/{project}/members/{}", viewer.id),
            &json!({"role": "viewer"}),
        )
        .bearer_auth(&token),
    )
    .await
    .expect(200);
    let viewer_token = {
        let _ = viewer_token;
        token_of(&api, &viewer).await
    };
    send(
        api.get(&format!("{base}/backups"))
            .bearer_auth(&viewer_token),
    )
    .await
    .expect(200);
    let mut copy = create_body(&viewer_project.id.to_string(), "stolen");
    copy["source"] = json!({"instance_id": inst.id});
    let r = send(
        api.post_json("/api/v1/instances", &copy)
            .bearer_auth(&viewer_token),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.json);
    // Full backups may go while another remains; the only one of a live instance stays (409),
    // as the repository is asked.
    let fulls: Vec<String> = completed_backups(&api, &token, &inst.id)
        .await
        .iter()
        .filter(|b| b["type"] == "full")
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(fulls.len() >= 2, "{fulls:?}");
    for other in &fulls[1..] {
        send(
            api.delete(&format!("{base}/backups/{other}"))
                .bearer_auth(&token),
        )
        .await
        .expect(204);
    }
    let last = &fulls[0];
    let r = send(
        api.delete(&format!("{base}/backups/{last}"))
            .bearer_auth(&token),
    )
    .await;
    r.expect_error(409, "conflict");
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("only full backup"),
        "{}",
        r.json
    );
    // A paused instance is not backed up (409) but keeps its window.
    let r = post_when_free(&api, &token, &format!("{base}/pause"), &json!({})).await;
    r.expect(202);
    wait_status(&api, &token, &inst.id, "paused", Duration::from_secs(60)).await;
    let r = send(
        api.post_json(&format!("{base}/backups"), &json!({}))
            .bearer_auth(&token),
    )
    .await;
    r.expect_error(409, "conflict");
    let w = send(
        api.get(&format!("{base}/restore-window"))
            .bearer_auth(&token),
    )
    .await;
    w.expect(200);
    assert!(w.json["latest"].is_string(), "{}", w.json);
    send(api.delete(&base).bearer_auth(&token))
        .await
        .expect(202);
}
