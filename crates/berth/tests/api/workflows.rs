//! Workflows (issue 11): one operation over many instances named by paths. A restart over three
//! instances of which one is paused restarts two and skips the paused one, and the record
//! reaches `partial`; a project path with recursive discovery takes all its instances; another
//! tenant's instance is `not_found` (and a request naming only such is a 404); a viewer cannot
//! start one; bad input is a clear 400.

use std::time::{Duration, Instant};

use berth_types::Role;
use serde_json::{json, Value};

use crate::backups::{post_when_free, wait_job, wait_status};
use crate::common::*;
use crate::instances::create_body;

/// Creates a running instance in `project`; returns its id and name.
async fn running_instance(api: &Api, token: &str, project: &str, tag: &str) -> (String, String) {
    let name = unique(tag).replace('.', "-");
    let r = send(
        api.post_json("/api/v1/instances", &create_body(project, &name))
            .bearer_auth(token),
    )
    .await;
    r.expect(202);
    let id = r.json["id"].as_str().unwrap().to_owned();
    wait_status(api, token, &id, "running", Duration::from_secs(120)).await;
    (id, name)
}

/// Polls a workflow until it is no longer `running`.
async fn wait_workflow(api: &Api, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let r = send(
            api.get(&format!("/api/v1/workflows/{id}"))
                .bearer_auth(token),
        )
        .await;
        r.expect(200);
        if r.json["state"] != "running" {
            return r.json.clone();
        }
        assert!(
            Instant::now() < deadline,
            "workflow {id} never ended: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn target<'a>(w: &'a Value, instance: &str) -> &'a Value {
    w["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["instance_id"] == instance)
        .unwrap_or_else(|| panic!("no target for {instance}: {w}"))
}

#[tokio::test]
async fn a_restart_workflow_skips_the_paused_instance_and_restarts_the_others() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "wf-restart").await;
    let pid = project.id.to_string();
    let (a, a_name) = running_instance(&api, &token, &pid, "wf-a").await;
    let (b, _) = running_instance(&api, &token, &pid, "wf-b").await;
    let (c, _) = running_instance(&api, &token, &pid, "wf-c").await;
    let r = post_when_free(
        &api,
        &token,
        &format!("/api/v1/instances/{c}/pause"),
        &json!({}),
    )
    .await;
    r.expect(202);
    wait_status(&api, &token, &c, "paused", Duration::from_secs(120)).await;

    // By project name and instance name, by ids, with a trailing slash.
    let paths = [
        format!("/projects/{}/instances/{a_name}", project.name),
        format!("/projects/{pid}/instances/{b}"),
        format!("/projects/{pid}/instances/{c}/"),
    ];
    let r = send(
        api.post_json(
            "/api/v1/workflows",
            &json!({"workflow": "restart", "paths": paths, "site": "local"}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    let w = r.json.clone();
    assert_eq!(w["workflow"], "restart");
    assert_eq!(w["state"], "running", "{w}");
    assert_eq!(w["targets"].as_array().unwrap().len(), 3);
    let paused = target(&w, &c);
    assert_eq!(paused["state"], "skipped", "{w}");
    assert!(paused["job_id"].is_null());
    assert!(
        paused["error"].as_str().unwrap().contains("paused"),
        "{paused}"
    );
    for i in [&a, &b] {
        let t = target(&w, i);
        assert!(t["job_id"].is_string(), "{w}");
        assert!(
            matches!(t["state"].as_str(), Some("pending" | "running")),
            "{t}"
        );
    }
    assert_eq!(target(&w, &a)["path"], paths[0].as_str());
    let id = w["id"].as_str().unwrap();

    let done = wait_workflow(&api, &token, id).await;
    assert_eq!(done["state"], "partial", "{done}");
    assert_eq!(done["counts"]["succeeded"], 2, "{done}");
    assert_eq!(done["counts"]["skipped"], 1, "{done}");
    for i in [&a, &b] {
        let t = target(&done, i);
        assert_eq!(t["state"], "succeeded", "{t}");
        assert_eq!(t["job_state"], "SUCCESS", "{t}");
        let job = wait_job(&api, &token, t["job_id"].as_str().unwrap()).await;
        assert_eq!(job["workflow_id"], id, "{job}");
        assert_eq!(job["type"], "restart");
    }
    wait_status(&api, &token, &a, "running", Duration::from_secs(60)).await;
    // The jobs list counts them by type like any other job.
    let r = send(
        api.get(&format!("/api/v1/jobs?instance_id={a}&type=restart"))
            .bearer_auth(&token),
    )
    .await;
    r.expect(200);
    assert_eq!(r.json["stats"]["type"]["restart"], 1, "{}", r.json);
    assert_eq!(r.json["results"][0]["workflow_id"], id);
    // The list shows it; a job started without a workflow says so.
    let r = send(api.get("/api/v1/workflows?limit=500").bearer_auth(&token)).await;
    r.expect(200);
    assert!(ids(&r.json).contains(&id.to_owned()), "{}", r.json);
    let r = send(
        api.get(&format!("/api/v1/jobs?instance_id={c}&type=pause"))
            .bearer_auth(&token),
    )
    .await;
    assert!(r.json["results"][0]["workflow_id"].is_null(), "{}", r.json);
}

#[tokio::test]
async fn recursive_discovery_isolation_and_bad_input() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let tenant = Tenant::new(&api, &admin, "wf-tenant").await;
    let owner = tenant.owner.token.clone();
    let pid = tenant.id();
    let (x, _) = running_instance(&api, &owner, &pid, "wf-x").await;
    let (y, _) = running_instance(&api, &owner, &pid, "wf-y").await;
    let (_, other_token, other_project) = create_member(&api, &admin, "wf-other").await;
    let other_pid = other_project.id.to_string();
    let (z, z_name) = running_instance(&api, &other_token, &other_pid, "wf-z").await;
    let foreign_path = format!("/projects/{}/instances/{z_name}", other_project.name);
    let post = |token: &str, body: Value| {
        send(api.post_json("/api/v1/workflows", &body).bearer_auth(token))
    };

    // A project with recursive discovery is all its instances; another tenant's instance
    // is not_found (and tells nothing of it).
    let r = post(
        &owner,
        json!({"workflow": "restart", "paths": [format!("/projects/{pid}"), foreign_path],
               "discovery": "recursive"}),
    )
    .await;
    r.expect(202);
    let w = r.json.clone();
    assert_eq!(w["targets"].as_array().unwrap().len(), 3, "{w}");
    assert_eq!(w["discovery"], "recursive");
    let gone = &w["targets"][2];
    assert_eq!(gone["state"], "not_found", "{w}");
    assert!(gone["instance_id"].is_null() && gone["job_id"].is_null());
    assert!(!w.to_string().contains(&z), "{w}");
    let id = w["id"].as_str().unwrap().to_owned();
    let done = wait_workflow(&api, &owner, &id).await;
    assert_eq!(done["state"], "partial", "{done}");
    for i in [&x, &y] {
        assert_eq!(target(&done, i)["state"], "succeeded", "{done}");
    }

    // In the project's audit log: the workflow, and each restart it started.
    let events = audit_until(&api, &owner, &format!("project_id={pid}&limit=500"), |e| {
        has_event(e, "workflow.created")
            && e.iter()
                .filter(|e| {
                    e["event_type"] == "instance.restart"
                        && e["details"]["workflow_id"] == id.as_str()
                })
                .count()
                == 2
    })
    .await;
    let created = events
        .iter()
        .find(|e| e["event_type"] == "workflow.created")
        .unwrap();
    assert_eq!(created["target_id"], id.as_str(), "{created}");
    assert_eq!(created["details"]["accepted"], 2, "{created}");

    // Only another tenant's paths: 404; the other tenant does not see this workflow.
    post(
        &owner,
        json!({"workflow": "restart", "paths": [format!("/projects/{}/instances/{z}", other_pid)]}),
    )
    .await
    .expect_error(404, "not_found");
    send(
        api.get(&format!("/api/v1/workflows/{id}"))
            .bearer_auth(&other_token),
    )
    .await
    .expect_error(404, "not_found");
    let r = send(
        api.get("/api/v1/workflows?limit=500")
            .bearer_auth(&other_token),
    )
    .await;
    r.expect(200);
    assert!(!ids(&r.json).contains(&id), "{}", r.json);

    // A viewer sees the workflow but cannot start one.
    let viewer = tenant.user(Role::Viewer).token.clone();
    send(
        api.get(&format!("/api/v1/workflows/{id}"))
            .bearer_auth(&viewer),
    )
    .await
    .expect(200);
    post(
        &viewer,
        json!({"workflow": "restart", "paths": [format!("/projects/{pid}/instances/{x}")]}),
    )
    .await
    .expect_error(403, "forbidden");

    // Bad input: a clear 400 each, before anything starts.
    let one = format!("/projects/{pid}/instances/{x}");
    for (body, says) in [
        (
            json!({"workflow": "migrate", "paths": [one]}),
            "restart, pause, resume, backup",
        ),
        (
            json!({"workflow": "restart", "paths": ["/mmfs1/data/sample_data.tgz"]}),
            "malformed path",
        ),
        (
            json!({"workflow": "restart", "paths": [format!("/projects/{pid}/instances/a\u{0}b")]}),
            "malformed path",
        ),
        (
            json!({"workflow": "restart", "paths": [format!("/projects/{pid}/databases/x")]}),
            "malformed path",
        ),
        (json!({"workflow": "restart", "paths": []}), "at least one"),
        (
            json!({"workflow": "restart", "paths": [format!("/projects/{pid}")]}),
            "recursive",
        ),
        (
            json!({"workflow": "restart", "paths": [one], "site": "dfoster1"}),
            "unknown site",
        ),
        (
            json!({"workflow": "restart", "paths": [one], "fields": {"type": "full"}}),
            "takes no fields",
        ),
        (
            json!({"workflow": "backup", "paths": [one], "fields": {"kind": "full"}}),
            "unknown field",
        ),
        (
            json!({"workflow": "restart", "paths": [one], "discovery": "deep"}),
            "recursive",
        ),
    ] {
        let r = post(&owner, body.clone()).await;
        assert_eq!(r.status, 400, "{body}: {} {}", r.status, r.text);
        assert!(
            r.json["message"].as_str().unwrap_or("").contains(says),
            "{body}: {}",
            r.json
        );
    }
    send(api.get("/api/v1/workflows/not-a-uuid").bearer_auth(&owner))
        .await
        .expect(404);
}

#[tokio::test]
async fn berth_workflows_run_list_and_get() {
    use crate::cli::{berth_ok, berth_run, login_by_device};
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (u, _, project) = create_member(&api, &admin, "cli-wf").await;
    let dir = temp_dir("cli-wf").join("berth");
    login_by_device(&api, s, &dir, &u).await;
    let name = unique("cliwf").replace('.', "-");
    berth_ok(&dir, &["instances", "create", &name, "--wait"]).await;
    let path = format!("/projects/{}/instances/{name}", project.name);
    let out = berth_ok(
        &dir,
        &["workflows", "run", "restart", &path, "--wait", "-o", "json"],
    )
    .await;
    let w: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(w["state"], "succeeded", "{w}");
    let id = w["id"].as_str().unwrap();
    let listed = berth_ok(&dir, &["workflows", "list"]).await;
    assert!(
        listed.contains(id) && listed.contains("succeeded"),
        "{listed}"
    );
    let shown = berth_ok(&dir, &["workflows", "get", id]).await;
    assert!(
        shown.contains(&path) && shown.contains("succeeded"),
        "{shown}"
    );
    let (ok, _, err) = berth_run(&dir, &["workflows", "run", "migrate", &path]).await;
    assert!(!ok && err.contains("unknown workflow"), "{err}");
    let (ok, _, err) = berth_run(&dir, &["workflows", "run", "restart", "/mmfs1/x"]).await;
    assert!(!ok && err.contains("malformed path"), "{err}");
}

#[tokio::test]
async fn a_backup_workflow_takes_the_type_its_fields_name() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "wf-backup").await;
    let pid = project.id.to_string();
    let (i, _) = running_instance(&api, &token, &pid, "wf-bk").await;
    // An incremental backup builds on the first (full) one, which Berth takes by itself.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = send(
            api.get(&format!("/api/v1/instances/{i}/backups?status=completed"))
                .bearer_auth(&token),
        )
        .await;
        r.expect(200);
        if r.json["count"].as_i64() > Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "no first backup: {}", r.json);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = send(
        api.post_json(
            "/api/v1/workflows",
            &json!({"workflow": "backup", "paths": [format!("/projects/{pid}/instances/{i}")],
                    "fields": {"type": "incr"}}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    assert_eq!(r.json["fields"]["type"], "incr");
    let id = r.json["id"].as_str().unwrap().to_owned();
    let done = wait_workflow(&api, &token, &id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let job = target(&done, &i)["job_id"].as_str().unwrap().to_owned();
    let r = send(
        api.get(&format!("/api/v1/instances/{i}/backups"))
            .bearer_auth(&token),
    )
    .await;
    let backup = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["job_id"] == job.as_str())
        .unwrap_or_else(|| panic!("no backup of job {job}: {}", r.json))
        .clone();
    assert_eq!(backup["type"], "incr", "{backup}");
    assert_eq!(backup["trigger"], "manual", "{backup}");
}
