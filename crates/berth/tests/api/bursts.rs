//! Bursts of creates (issue 13): creates back to back and at once all reach `running` and accept
//! their owner, never two on one spare; the spare pool grows with demand and shrinks when idle;
//! Berth killed while it refills the pool leaves no orphaned spare; under memory pressure the pool
//! empties and creates still run. (No timing is asserted: the
//! figures are in bench/bursts.sh.)

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::instances::{ca_file, create_body, psql, wait_status};

/// A gauge or counter of `/metrics` (0 when absent), `name` with its labels as exposed.
async fn metric(api: &Api, name: &str) -> f64 {
    let text = send(api.get("/metrics")).await.text;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// Spares not being made: ready, or ready and being backed up.
async fn settled_spares(api: &Api) -> f64 {
    metric(api, r#"berth_spares{state="ready"}"#).await
        + metric(api, r#"berth_spares{state="backing_up"}"#).await
}

async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The pool is `n` spares, none being made.
async fn wait_pool(api: &Api, n: f64, within: Duration) {
    wait_until(&format!("a pool of {n} spares"), within, async || {
        metric(api, r#"berth_spares{state="warming"}"#).await == 0.0
            && settled_spares(api).await == n
    })
    .await;
}

/// What a create answered: the instance's id, password, connection URL and status.
struct Created {
    id: String,
    password: String,
    url: String,
    status: String,
}

async fn create(api: &Api, token: &str, project: &str, name: &str) -> Created {
    let r = send(
        api.post_json("/api/v1/instances", &create_body(project, name))
            .bearer_auth(token),
    )
    .await;
    r.expect(202);
    let field = |k: &str| r.json[k].as_str().unwrap().to_owned();
    Created {
        id: field("id"),
        password: field("password"),
        url: field("connection_url"),
        status: field("status"),
    }
}

/// A create that answered `running` (it claimed a spare and waited for the claim) accepts its
/// owner at the first attempt. Returns how many did.
async fn assert_running_ones_serve_at_once(ca: &Path, created: &[Created]) -> usize {
    let running: Vec<_> = created.iter().filter(|c| c.status == "running").collect();
    for c in &running {
        let who = psql(&c.url, ca, &c.password, "select current_user").await;
        assert_eq!(
            who.as_deref(),
            Ok("app"),
            "instance {} answered running",
            c.id
        );
    }
    running.len()
}

/// Every instance runs, answers its own owner with its own password, and no two share a
/// server (a port, an id).
async fn assert_all_serve(api: &Api, token: &str, ca: &Path, created: &[Created]) {
    let mut ports = HashSet::new();
    for c in created {
        let row = wait_status(api, token, &c.id, "running", Duration::from_secs(120)).await;
        assert!(ports.insert(row["port"].clone()), "port shared: {row}");
    }
    let ids: HashSet<_> = created.iter().map(|c| &c.id).collect();
    assert_eq!(ids.len(), created.len());
    // Checked after all are running: a spare handed to two would have the later password.
    for c in created {
        let who = psql(&c.url, ca, &c.password, "select current_user").await;
        assert_eq!(who.as_deref(), Ok("app"), "instance {}", c.id);
    }
}

/// Directories under `instances/` (instances and spares alike), and any copy or initdb left
/// half done anywhere below it.
fn instance_dirs(data_dir: &Path) -> (usize, Vec<String>) {
    let root = data_dir.join("instances");
    let mut n = 0;
    let mut leftovers = Vec::new();
    for e in std::fs::read_dir(&root).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            leftovers.push(name);
            continue;
        }
        n += 1;
        for inner in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            let inner = inner.file_name().to_string_lossy().into_owned();
            if inner.starts_with(".pgdata") {
                leftovers.push(format!("{name}/{inner}"));
            }
        }
    }
    (n, leftovers)
}

#[tokio::test]
async fn bursts_run_every_create_and_the_pool_follows_demand() {
    let config = base_config()
        .replace(
            "spares = 0",
            "spares = 1\nspares_max = 4\nspare_demand_window_seconds = 600",
        )
        .replace("spare_copies = 0", "spare_copies = 2");
    let dir = Dedicated::new_dir("bursts", &config);
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    let project = create_project(&api, &token, "bursts").await.id.to_string();
    let ca = ca_file(&api, &d.server.dir).await;
    // At rest: the spare is made, then backed up while nothing happens (it is not claimable
    // during its backup).
    wait_until(
        "an idle spare with its backup",
        Duration::from_secs(90),
        async || {
            metric(&api, "berth_spares_backed_up").await == 1.0
                && metric(&api, r#"berth_spares{state="ready"}"#).await == 1.0
        },
    )
    .await;
    assert_eq!(metric(&api, "berth_spares_target").await, 1.0);

    // Back to back: each create as soon as the one before runs.
    let mut created = Vec::new();
    for n in 0..3 {
        let c = create(&api, &token, &project, &format!("seq-{n}")).await;
        // The first claims the waiting spare: it answers once its owner can sign in.
        if n == 0 {
            assert_eq!(
                c.status, "running",
                "a create from a spare waits for its claim"
            );
            assert_running_ones_serve_at_once(&ca, std::slice::from_ref(&c)).await;
        }
        wait_status(&api, &token, &c.id, "running", Duration::from_secs(120)).await;
        created.push(c);
    }
    // At once, racing the keeper that refills the pool meanwhile, with a spare ready for the
    // first of them.
    wait_until("a ready spare", Duration::from_secs(120), async || {
        metric(&api, r#"berth_spares{state="ready"}"#).await >= 1.0
    })
    .await;
    let claimed_before = metric(&api, r#"berth_spare_claims_total{outcome="claimed"}"#).await;
    let mut set = tokio::task::JoinSet::new();
    for n in 0..5 {
        let (api, token, project) = (api.clone(), token.clone(), project.clone());
        set.spawn(async move { create(&api, &token, &project, &format!("burst-{n}")).await });
    }
    let mut burst = Vec::new();
    while let Some(c) = set.join_next().await {
        burst.push(c.unwrap());
    }
    assert_running_ones_serve_at_once(&ca, &burst).await;
    created.extend(burst);
    assert_all_serve(&api, &token, &ca, &created).await;
    let claimed = metric(&api, r#"berth_spare_claims_total{outcome="claimed"}"#).await;
    assert!(
        claimed > claimed_before,
        "no create of the burst claimed a spare"
    );

    // Eight creates within the window: the pool grows to its ceiling.
    assert_eq!(metric(&api, "berth_spares_target").await, 4.0);
    wait_pool(&api, 4.0, Duration::from_secs(120)).await;
    // Idle past the window (the clock moved on, rather than a wait): back to the floor.
    d.server.advance_clock(601);
    wait_pool(&api, 1.0, Duration::from_secs(120)).await;
    assert_eq!(metric(&api, "berth_spares_target").await, 1.0);
    let (dirs, leftovers) = instance_dirs(&d.server.data_dir());
    assert_eq!(
        dirs,
        created.len() + 1,
        "one directory per instance and spare"
    );
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The template copies that creates without a spare took are made again, and only those.
    wait_until("two template copies", Duration::from_secs(60), async || {
        metric(&api, "berth_template_copies").await == 2.0
    })
    .await;
    let copies = d.server.data_dir().join("templates/15/copies");
    let names: Vec<String> = std::fs::read_dir(&copies)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
    // Every instance still serves its owner.
    assert_all_serve(&api, &token, &ca, &created).await;

    assert!(d.terminate().success());
    d.remove_dir();
}

#[tokio::test]
async fn berth_killed_while_refilling_leaves_no_orphaned_spare() {
    let config = base_config()
        .replace("spares = 0", "spares = 2")
        .replace("spare_copies = 0", "spare_copies = 2");
    let dir = Dedicated::new_dir("bursts-kill", &config);
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    // Killed while spares are being made (copied, started), twice: the second time with one
    // or both already ready.
    for _ in 0..2 {
        let api = Api::new(&d.server);
        // (After the first restart both may be ready already: killed then too.)
        wait_until("a spare being made", Duration::from_secs(60), async || {
            metric(&api, r#"berth_spares{state="warming"}"#).await > 0.0
                || settled_spares(&api).await == 2.0
        })
        .await;
        d.stop_with(libc::SIGKILL);
        d.restart(ADMIN_PASSWORD);
    }
    let api = Api::new(&d.server);
    wait_pool(&api, 2.0, Duration::from_secs(120)).await;
    let instances = d.server.data_dir().join("instances");
    let (dirs, leftovers) = instance_dirs(&d.server.data_dir());
    assert_eq!(dirs, 2, "only the two spares have directories");
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // One postmaster per spare, nothing left of the killed runs (pgBackRest, backing up an
    // idle spare or archiving, mentions the directory too).
    let postmasters: Vec<i32> = processes_mentioning(&instances.display().to_string())
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .collect();
    assert_eq!(postmasters.len(), 2, "{postmasters:?}");
    // The spares are whole: a create claims one and its owner signs in.
    let token = admin_token(&api).await;
    let project = create_project(&api, &token, "bursts-kill")
        .await
        .id
        .to_string();
    let ca = ca_file(&api, &d.server.dir).await;
    let c = create(&api, &token, &project, "after-kill").await;
    let id = c.id.clone();
    assert_all_serve(&api, &token, &ca, &[c]).await;
    let jobs = send(
        api.get(&format!("/api/v1/jobs?instance_id={id}&type=create"))
            .bearer_auth(&token),
    )
    .await;
    let steps: Vec<&str> = jobs.json["results"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["claim spare", "firewall"], "{}", jobs.json);

    assert!(d.terminate().success());
    assert!(processes_mentioning(&instances.display().to_string()).is_empty());
    d.remove_dir();
}

/// With every port taken, a create is a clear 503 that records nothing; a delete frees the port
/// for the next one.
#[tokio::test]
async fn a_full_port_range_answers_503_until_a_delete_frees_a_port() {
    let base = base_config();
    let first = base
        .lines()
        .find_map(|l| l.strip_prefix("first_port = "))
        .unwrap()
        .to_owned();
    let config = base.replace(
        &base
            .lines()
            .find(|l| l.starts_with("last_port = "))
            .unwrap()
            .to_owned(),
        &format!("last_port = {first}"),
    );
    let dir = Dedicated::new_dir("bursts-ports", &config);
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    let project = create_project(&api, &token, "bursts-ports")
        .await
        .id
        .to_string();
    let a = create(&api, &token, &project, "only-port").await;
    let full = send(
        api.post_json("/api/v1/instances", &create_body(&project, "no-port"))
            .bearer_auth(&token),
    )
    .await;
    full.expect(503);
    assert!(
        full.text
            .contains("every instance port of this server is taken"),
        "{}",
        full.text
    );
    // Nothing of the refused create stays: its name is free.
    let named = send(
        api.get(&format!(
            "/api/v1/instances?project_id={project}&name=no-port"
        ))
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(named.json["count"], 0, "{}", named.json);
    wait_status(&api, &token, &a.id, "running", Duration::from_secs(60)).await;
    send(
        api.delete(&format!("/api/v1/instances/{}", a.id))
            .bearer_auth(&token),
    )
    .await
    .expect(202);
    crate::instances::wait_gone(&api, &token, &a.id).await;
    let b = create(&api, &token, &project, "no-port").await;
    let ca = ca_file(&api, &d.server.dir).await;
    assert_all_serve(&api, &token, &ca, &[b]).await;
    assert!(d.terminate().success());
    d.remove_dir();
}

#[tokio::test]
async fn memory_pressure_empties_the_pool_and_creates_still_run() {
    let config = base_config()
        .replace("spares = 0", "spares = 2")
        .replace("spare_copies = 0", "spare_copies = 1");
    let dir = Dedicated::new_dir("bursts-pressure", &config);
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    wait_pool(&Api::new(&d.server), 2.0, Duration::from_secs(120)).await;
    // Started again needing more memory free than this host has: as if memory ran short.
    assert!(d.stop_with(libc::SIGTERM).success());
    let pressed = config.replace(
        "[instances]",
        "[instances]\nspare_memory_reserve = \"100TB\"",
    );
    assert_ne!(pressed, config);
    std::fs::write(dir.join("berth.toml"), pressed).unwrap();
    d.restart(ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    // The two spares it had are given back, and no other is made.
    wait_pool(&api, 0.0, Duration::from_secs(60)).await;
    assert_eq!(metric(&api, "berth_spares_target").await, 0.0);
    let (dirs, leftovers) = instance_dirs(&d.server.data_dir());
    assert_eq!(dirs, 0, "no spare directory is left");
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Creates still run (from the template copy, which holds disk only and is kept).
    let token = admin_token(&api).await;
    let project = create_project(&api, &token, "pressure")
        .await
        .id
        .to_string();
    let ca = ca_file(&api, &d.server.dir).await;
    let c = create(&api, &token, &project, "under-pressure").await;
    assert_eq!(c.status, "creating", "no spare to claim");
    assert_all_serve(&api, &token, &ca, &[c]).await;
    assert_eq!(
        metric(&api, r#"berth_spare_claims_total{outcome="missed"}"#).await,
        1.0
    );
    assert!(d.terminate().success());
    d.remove_dir();
}
