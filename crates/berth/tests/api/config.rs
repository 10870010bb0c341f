//! Configuration parameters (issue 10) on a real instance: every reported default is what a
//! fresh server runs with; a reloadable change applies at once, one that needs a restart waits
//! for it (or restarts with `"apply": "restart"`); a resize keeps the user's values and moves
//! the class's defaults; bad input gets 400s that name the parameter and its range; other
//! tenants get 404.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backups::{ca_file, create_body, make, post_when_free, psql, wait_job, wait_status};
use crate::common::*;

async fn config(api: &Api, token: &str, id: &str) -> Vec<Value> {
    let r = send(
        api.get(&format!("/api/v1/instances/{id}/config"))
            .bearer_auth(token),
    )
    .await;
    r.expect(200);
    assert_eq!(
        r.json["count"].as_u64().unwrap() as usize,
        r.json["results"].as_array().unwrap().len()
    );
    r.json["results"].as_array().unwrap().clone()
}

fn param<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

/// Patches, then waits for the job; returns the answer.
async fn patch(api: &Api, token: &str, id: &str, body: Value) -> Value {
    let r = send(
        api.patch_json(&format!("/api/v1/instances/{id}/config"), &body)
            .bearer_auth(token),
    )
    .await;
    r.expect(202);
    let job = wait_job(api, token, r.json["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "SUCCESS", "{job}");
    assert_eq!(job["type"], "config");
    r.json.clone()
}

#[tokio::test]
async fn parameters_apply_by_reload_or_restart_and_survive_a_resize() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "cfg").await;
    let (_, stranger, _) = create_member(&api, &admin, "cfg-stranger").await;
    let project = project.id.to_string();
    let ca = ca_file(&api).await;
    let inst = make(&api, &token, create_body(&project, "cfg")).await;
    let show = |name: &str| {
        let (url, ca, pw, sql) = (
            inst.url.clone(),
            ca.clone(),
            inst.password.clone(),
            format!("SHOW {name}"),
        );
        async move { psql(&url, &ca, &pw, &sql).await.unwrap() }
    };

    // Every default Berth reports is what the fresh server runs with.
    let all = config(&api, &token, &inst.id).await;
    assert!(all.len() >= 40, "{}", all.len());
    for p in &all {
        assert_eq!(p["source"], "default", "{p}");
        assert_eq!(p["current"], p["default"], "{p}");
        assert_eq!(p["value"], p["default"], "{p}");
        assert_eq!(p["pending_restart"], false, "{p}");
    }
    let work_mem = param(&all, "work_mem");
    assert_eq!(work_mem["default"], "2MB", "the 256MB class's");
    assert_eq!(work_mem["type"], "integer");
    assert_eq!(work_mem["unit"], "kB");
    assert_eq!(work_mem["min"], "64kB");
    assert_eq!(work_mem["restart_required"], false);
    assert_eq!(param(&all, "shared_buffers")["restart_required"], true);
    assert_eq!(
        param(&all, "log_statement")["allowed_values"],
        json!(["none", "ddl", "mod", "all"])
    );

    // Reloadable: at once, for new sessions.
    let answer = patch(
        &api,
        &token,
        &inst.id,
        json!({"parameters": {"work_mem": "8192kB", "statement_timeout": 30000, "jit": false}}),
    )
    .await;
    assert_eq!(answer["changed"]["work_mem"], "8MB");
    assert_eq!(answer["changed"]["statement_timeout"], "30s");
    assert_eq!(answer["pending_restart"], json!([]));
    assert_eq!(show("work_mem").await, "8MB");
    assert_eq!(show("statement_timeout").await, "30s");
    assert_eq!(show("jit").await, "off");
    let all = config(&api, &token, &inst.id).await;
    assert_eq!(param(&all, "statement_timeout")["current"], "30s");
    let work_mem = param(&all, "work_mem");
    assert_eq!(work_mem["value"], "8MB");
    assert_eq!(work_mem["source"], "user");
    assert_eq!(work_mem["current"], "8MB");

    // Needs a restart: saved, pending until one.
    let answer = patch(
        &api,
        &token,
        &inst.id,
        json!({"parameters": {"max_connections": 40}}),
    )
    .await;
    assert_eq!(answer["pending_restart"], json!(["max_connections"]));
    let all = config(&api, &token, &inst.id).await;
    let max = param(&all, "max_connections");
    assert_eq!(max["value"], "40");
    assert_eq!(max["current"], "25");
    assert_eq!(max["pending_restart"], true);
    let r = send(
        api.post(&format!("/api/v1/instances/{}/restart", inst.id))
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    assert_eq!(show("max_connections").await, "40");
    assert_eq!(
        param(&config(&api, &token, &inst.id).await, "max_connections")["pending_restart"],
        false
    );

    // Or at once, with a restart.
    let r = send(
        api.patch_json(
            &format!("/api/v1/instances/{}/config", inst.id),
            &json!({"parameters": {"shared_buffers": "96MB"}, "apply": "restart"}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    assert_eq!(r.json["pending_restart"], json!([]));
    let during = send(
        api.get(&format!("/api/v1/instances/{}", inst.id))
            .bearer_auth(&token),
    )
    .await;
    assert!(
        ["updating", "running"].contains(&during.json["status"].as_str().unwrap()),
        "{}",
        during.json
    );
    assert_eq!(
        wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await["state"],
        "SUCCESS"
    );
    wait_status(&api, &token, &inst.id, "running", Duration::from_secs(60)).await;
    assert_eq!(show("shared_buffers").await, "96MB");

    // A resize keeps what the user set; what they did not follows the new class.
    let r = send(
        api.patch_json(
            &format!("/api/v1/instances/{}", inst.id),
            &json!({"memory": "512MB"}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    wait_status(&api, &token, &inst.id, "running", Duration::from_secs(120)).await;
    let all = config(&api, &token, &inst.id).await;
    assert_eq!(param(&all, "work_mem")["current"], "8MB");
    assert_eq!(param(&all, "work_mem")["default"], "4MB");
    assert_eq!(param(&all, "shared_buffers")["current"], "96MB");
    assert_eq!(param(&all, "effective_cache_size")["current"], "384MB");
    assert_eq!(param(&all, "max_connections")["current"], "40");

    // null resets to the (new) default.
    patch(
        &api,
        &token,
        &inst.id,
        json!({"parameters": {"work_mem": null}}),
    )
    .await;
    let all = config(&api, &token, &inst.id).await;
    assert_eq!(param(&all, "work_mem")["source"], "default");
    assert_eq!(param(&all, "work_mem")["current"], "4MB");

    // Bad input: a 400 naming the parameter, and nothing changes.
    let base = format!("/api/v1/instances/{}/config", inst.id);
    for (body, says) in [
        (
            json!({"parameters": {"work_mem": "4TB"}}),
            "work_mem: `4TB` is out of range (64kB to 2GB)",
        ),
        (
            json!({"parameters": {"max_connections": 5}}),
            "max_connections: `5` is out of range (10 to 1000)",
        ),
        (
            json!({"parameters": {"archive_command": "cp %p /tmp"}}),
            "`archive_command` is managed by Berth",
        ),
        (
            json!({"parameters": {"ssl_cert_file": "/etc/passwd"}}),
            "managed by Berth",
        ),
        (
            json!({"parameters": {"listen_addresses": "*"}}),
            "managed by Berth",
        ),
        (
            json!({"parameters": {"hba_file": "/tmp/x"}}),
            "managed by Berth",
        ),
        (
            json!({"parameters": {"no_such": "1"}}),
            "unknown parameter `no_such`",
        ),
        (
            json!({"parameters": {"shared_preload_libraries": "/tmp/evil.so"}}),
            "not allowed",
        ),
        (
            json!({"parameters": {"statement_timeout": "soon"}}),
            "is not a duration",
        ),
        (
            json!({"parameters": {"jit": "perhaps"}}),
            "is not a boolean",
        ),
        (
            json!({"parameters": {"log_statement": "everything"}}),
            "is not one of none, ddl, mod, all",
        ),
        (
            json!({"parameters": {"work_mem": "8MB", "checkpoint_completion_target": 2}}),
            "checkpoint_completion_target",
        ),
        (json!({"parameters": {}}), "at least one parameter"),
    ] {
        let r = send(api.patch_json(&base, &body).bearer_auth(&token)).await;
        r.expect_error(400, "invalid_request");
        let message = r.json["message"].as_str().unwrap();
        assert!(message.contains(says), "{body}: {message}");
    }
    for body in [
        json!({"parameters": {"work_mem": "8MB"}, "apply": "now"}),
        json!({"parameters": ["work_mem"]}),
        json!({"work_mem": "8MB"}),
    ] {
        let r = send(api.patch_json(&base, &body).bearer_auth(&token)).await;
        assert_eq!(r.status, 400, "{body}: {}", r.json);
    }
    assert_eq!(
        param(&config(&api, &token, &inst.id).await, "work_mem")["source"],
        "default",
        "a refused change changed nothing"
    );

    // Another tenant: 404 for both.
    send(api.get(&base).bearer_auth(&stranger))
        .await
        .expect_error(404, "not_found");
    send(
        api.patch_json(&base, &json!({"parameters": {"work_mem": "8MB"}}))
            .bearer_auth(&stranger),
    )
    .await
    .expect_error(404, "not_found");

    // Timeouts users set do not reach Berth's own sessions: with every statement limited to
    // 1 ms, a database is still made and a backup (a checkpoint, pgBackRest's session) taken.
    patch(
        &api,
        &token,
        &inst.id,
        json!({"parameters": {"statement_timeout": "1ms", "lock_timeout": "1ms", "idle_session_timeout": "1s"}}),
    )
    .await;
    let r = send(
        api.post_json(
            &format!("/api/v1/instances/{}/databases", inst.id),
            &json!({"name": "under_timeouts"}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    let job = wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "SUCCESS", "{job}");
    let r = post_when_free(
        &api,
        &token,
        &format!("/api/v1/instances/{}/backups", inst.id),
        &json!({"type": "full"}),
    )
    .await;
    r.expect(202);
    let job = wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "SUCCESS", "{job}");
    patch(
        &api,
        &token,
        &inst.id,
        json!({"parameters": {"statement_timeout": null, "lock_timeout": null, "idle_session_timeout": null}}),
    )
    .await;

    // A paused instance takes the change at its next start.
    let r = send(
        api.post(&format!("/api/v1/instances/{}/pause", inst.id))
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    wait_status(&api, &token, &inst.id, "paused", Duration::from_secs(90)).await;
    let answer = patch(
        &api,
        &token,
        &inst.id,
        json!({"parameters": {"work_mem": "16MB"}, "apply": "restart"}),
    )
    .await;
    assert_eq!(answer["changed"]["work_mem"], "16MB");
    let all = config(&api, &token, &inst.id).await;
    assert_eq!(param(&all, "work_mem")["current"], Value::Null);
    let r = send(
        api.post(&format!("/api/v1/instances/{}/resume", inst.id))
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    wait_status(&api, &token, &inst.id, "running", Duration::from_secs(90)).await;
    assert_eq!(show("work_mem").await, "16MB");
}
