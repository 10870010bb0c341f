//! Berth killed (SIGKILL) right after accepting each kind of change to a running instance (a
//! firewall rule, a configuration change with a restart, a new database user, a new database, a
//! database's removal): after the restart the interrupted job runs again and the instance ends
//! as the API said, with every row settled and nothing half-made (issue 10).

use std::time::Duration;

use serde_json::json;

use crate::backups::{ca_file, create_body, make, psql, wait_job, wait_status};
use crate::common::*;

#[tokio::test]
async fn changes_interrupted_by_a_killed_berth_end_consistent() {
    let dir = Dedicated::new_dir("operate-crash", &base_config());
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    let project = create_project(&api, &token, "operate-crash")
        .await
        .id
        .to_string();
    let ca = ca_file(&api).await;
    let inst = make(&api, &token, create_body(&project, "crash")).await;
    let base = format!("/api/v1/instances/{}", inst.id);

    // Accepts `body` at `path` (retrying while the first backup keeps the instance busy), then
    // kills Berth at once and starts it again; returns the answer and a fresh token.
    let mut kill_after = async |method: &str, path: &str, body: serde_json::Value| {
        let api = Api::new(&d.server);
        let token = admin_token(&api).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let answer = loop {
            let rb = match method {
                "patch" => api.patch_json(path, &body),
                "delete" => api.delete(path),
                _ => api.post_json(path, &body),
            };
            let r = send(rb.bearer_auth(&token)).await;
            if r.status == 409 && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            r.expect(202);
            break r.json.clone();
        };
        d.stop_with(libc::SIGKILL);
        d.restart(ADMIN_PASSWORD);
        let api = Api::new(&d.server);
        let token = admin_token(&api).await;
        let job = wait_job(&api, &token, answer["job_id"].as_str().unwrap()).await;
        assert_eq!(job["state"], "SUCCESS", "{job}");
        answer
    };

    // A firewall rule.
    kill_after(
        "post",
        &format!("{base}/firewall-rules"),
        json!({"cidr": "192.0.2.0/24", "description": "after a crash"}),
    )
    .await;
    // A configuration change that restarts the server.
    kill_after(
        "patch",
        &format!("{base}/config"),
        json!({"parameters": {"shared_buffers": "96MB", "work_mem": "6MB"}, "apply": "restart"}),
    )
    .await;
    // A new user, a new database it owns, then the user's removal blocked and the database's
    // removal.
    let user = kill_after(
        "post",
        &format!("{base}/users"),
        json!({"name": "survivor", "profile": "read_write"}),
    )
    .await;
    kill_after(
        "post",
        &format!("{base}/databases"),
        json!({"name": "kept", "owner": "survivor"}),
    )
    .await;
    kill_after("delete", &format!("{base}/databases/kept"), json!({})).await;

    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    wait_status(&api, &token, &inst.id, "running", Duration::from_secs(60)).await;
    assert_eq!(
        psql(&inst.url, &ca, &inst.password, "SHOW shared_buffers")
            .await
            .unwrap(),
        "96MB"
    );
    let r = send(api.get(&format!("{base}/config")).bearer_auth(&token)).await;
    let results = r.json["results"].as_array().unwrap();
    assert!(
        results.iter().all(|p| p["pending_restart"] == false),
        "{results:?}"
    );
    let r = send(api.get(&format!("{base}/users")).bearer_auth(&token)).await;
    let survivor = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "survivor")
        .cloned()
        .unwrap();
    assert_eq!(survivor["state"], "active");
    let url = crate::db_users::as_user(&inst.url, "survivor", None);
    assert_eq!(
        psql(&url, &ca, user["password"].as_str().unwrap(), "SELECT 1")
            .await
            .unwrap(),
        "1"
    );
    let r = send(api.get(&format!("{base}/databases")).bearer_auth(&token)).await;
    assert_eq!(r.json["count"], 1, "only the owner's: {}", r.json);
    let hba = std::fs::read_to_string(
        d.server
            .data_dir()
            .join("instances")
            .join(&inst.id)
            .join("pgdata/pg_hba.conf"),
    )
    .unwrap();
    assert!(
        hba.contains("hostssl all all 192.0.2.0/24 scram-sha-256"),
        "{hba}"
    );
    assert_eq!(
        psql(
            &inst.url,
            &ca,
            &inst.password,
            "SELECT count(*) FROM pg_database WHERE datname = 'kept'"
        )
        .await
        .unwrap(),
        "0"
    );
    d.terminate_cleanly("after the crashes").await;
    d.remove_dir();
}
