//! Database users and databases (issue 10) on a real instance: each profile is enforced by
//! PostgreSQL (a `read_only` user cannot write, `read_write` cannot change the schema, `admin`
//! can, nobody can make roles); a password reset makes the old password fail, the owner's too;
//! databases are made with their owner and dropped; the owner and system roles cannot be
//! deleted; bad names get 400s, clashes 409, other tenants 404.

use serde_json::{json, Value};

use crate::backups::{ca_file, create_body, make, psql, wait_job};
use crate::common::*;

/// `url` as another user, and optionally another database.
pub(crate) fn as_user(url: &str, user: &str, database: Option<&str>) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (_, host_and_path) = rest.split_once('@').unwrap();
    let (host, path) = host_and_path.split_once('/').unwrap();
    let (db, query) = path.split_once('?').unwrap();
    format!(
        "{scheme}://{user}@{host}/{}?{query}",
        database.unwrap_or(db)
    )
}

/// Sends, expects 202, waits for the job to succeed; returns the answer.
async fn applied(api: &Api, token: &str, r: Resp, kind: &str) -> Value {
    r.expect(202);
    let job = wait_job(api, token, r.json["job_id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "SUCCESS", "{job}");
    assert_eq!(job["type"], kind);
    r.json.clone()
}

#[tokio::test]
async fn users_and_databases_with_profiles_enforced_by_postgres() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "dbu").await;
    let (_, stranger, _) = create_member(&api, &admin, "dbu-stranger").await;
    let project = project.id.to_string();
    let ca = ca_file(&api).await;
    let inst = make(&api, &token, create_body(&project, "dbu")).await;
    let users = format!("/api/v1/instances/{}/users", inst.id);
    let databases = format!("/api/v1/instances/{}/databases", inst.id);
    let owner = inst.body["owner_username"]
        .as_str()
        .or_else(|| {
            inst.url
                .split_once("://")
                .and_then(|(_, r)| r.split_once('@'))
                .map(|(u, _)| u)
        })
        .unwrap()
        .to_owned();

    // The owner role is listed.
    let r = send(api.get(&users).bearer_auth(&token)).await;
    r.expect(200);
    assert_eq!(r.json["results"][0]["name"], owner.as_str());
    assert_eq!(r.json["results"][0]["profile"], "owner");

    // Every statement logged: Berth's own (with verifiers) must still not be.
    let r = send(
        api.patch_json(
            &format!("/api/v1/instances/{}/config", inst.id),
            &json!({"parameters": {"log_statement": "all", "log_min_duration_statement": 0}}),
        )
        .bearer_auth(&token),
    )
    .await;
    applied(&api, &token, r, "config").await;

    let mut passwords = std::collections::HashMap::new();
    for (name, profile) in [
        ("reader", "read_only"),
        ("writer", "read_write"),
        ("boss", "admin"),
    ] {
        let answer = applied(
            &api,
            &token,
            send(
                api.post_json(&users, &json!({"name": name, "profile": profile}))
                    .bearer_auth(&token),
            )
            .await,
            "db_users",
        )
        .await;
        assert_eq!(answer["user"]["state"], "creating");
        let password = answer["password"].as_str().unwrap().to_owned();
        assert!(password.len() >= 32);
        passwords.insert(name, password);
    }
    let r = send(api.get(&users).bearer_auth(&token)).await;
    let listed: Vec<(String, String, String)> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap().to_owned(),
                u["profile"].as_str().unwrap().to_owned(),
                u["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(listed.iter().all(|(_, _, state)| state == "active"));
    assert!(!r.text.contains("verifier") && !r.text.contains("SCRAM"));

    let run = |user: &'static str, db: Option<&'static str>, sql: &'static str| {
        let url = as_user(&inst.url, user, db);
        let pw = if user == owner.as_str() {
            inst.password.clone()
        } else {
            passwords[user].clone()
        };
        let ca = ca.clone();
        async move { psql(&url, &ca, &pw, sql).await }
    };
    psql(
        &inst.url,
        &ca,
        &inst.password,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1)",
    )
    .await
    .unwrap();

    // read_only reads, writes nothing.
    assert_eq!(
        run("reader", None, "SELECT count(*) FROM t").await.unwrap(),
        "1"
    );
    let e = run("reader", None, "INSERT INTO t VALUES (2)")
        .await
        .unwrap_err();
    assert!(e.contains("permission denied for table t"), "{e}");
    // read_write writes data, changes no schema.
    run("writer", None, "INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    let e = run("writer", None, "CREATE TABLE w (x int)")
        .await
        .unwrap_err();
    assert!(e.contains("permission denied for schema public"), "{e}");
    // admin changes the schema, but makes no role.
    run(
        "boss",
        None,
        "CREATE TABLE b (x int); ALTER TABLE t ADD COLUMN y int",
    )
    .await
    .unwrap();
    let e = run("boss", None, "CREATE ROLE sneaky").await.unwrap_err();
    assert!(e.contains("permission denied to create role"), "{e}");
    let e = run("boss", None, "ALTER ROLE boss SUPERUSER")
        .await
        .unwrap_err();
    assert!(e.contains("must be superuser"), "{e}");
    assert_eq!(
        psql(
            &inst.url,
            &ca,
            &inst.password,
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('reader', 'writer', 'boss')
               AND (rolsuper OR rolcreaterole OR rolreplication OR rolbypassrls)"
        )
        .await
        .unwrap(),
        "0"
    );

    // A reset: the old password fails, the new one works; the owner's too.
    let answer = applied(
        &api,
        &token,
        send(
            api.post(&format!("{users}/reader/reset-password"))
                .bearer_auth(&token),
        )
        .await,
        "db_users",
    )
    .await;
    let e = run("reader", None, "SELECT 1").await.unwrap_err();
    assert!(e.contains("password authentication failed"), "{e}");
    let fresh = answer["password"].as_str().unwrap();
    assert_eq!(
        psql(&as_user(&inst.url, "reader", None), &ca, fresh, "SELECT 1")
            .await
            .unwrap(),
        "1"
    );
    let r = send(
        api.post(&format!("{users}/{owner}/reset-password"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let answer = applied(&api, &token, r, "db_users").await;
    assert_eq!(answer["username"], owner.as_str());
    let e = psql(&inst.url, &ca, &inst.password, "SELECT 1")
        .await
        .unwrap_err();
    assert!(e.contains("password authentication failed"), "{e}");
    let owner_password = answer["password"].as_str().unwrap().to_owned();
    assert_eq!(
        psql(&inst.url, &ca, &owner_password, "SELECT count(*) FROM t")
            .await
            .unwrap(),
        "2"
    );

    // A database owned by a user.
    let answer = applied(
        &api,
        &token,
        send(
            api.post_json(&databases, &json!({"name": "analytics", "owner": "writer"}))
                .bearer_auth(&token),
        )
        .await,
        "databases",
    )
    .await;
    assert_eq!(answer["database"]["owner"], "writer");
    run(
        "writer",
        Some("analytics"),
        "CREATE TABLE facts (x int); INSERT INTO facts VALUES (7)",
    )
    .await
    .unwrap();
    let r = send(api.get(&databases).bearer_auth(&token)).await;
    r.expect(200);
    let names: Vec<&str> = r.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"analytics"));
    assert_eq!(r.json["results"][1]["state"], "active");

    // Its owner cannot go while it is there; then both go.
    send(api.delete(&format!("{users}/writer")).bearer_auth(&token))
        .await
        .expect_error(409, "conflict");
    applied(
        &api,
        &token,
        send(
            api.delete(&format!("{databases}/analytics"))
                .bearer_auth(&token),
        )
        .await,
        "databases",
    )
    .await;
    let e = run("writer", Some("analytics"), "SELECT 1")
        .await
        .unwrap_err();
    assert!(e.contains("does not exist"), "{e}");
    applied(
        &api,
        &token,
        send(api.delete(&format!("{users}/writer")).bearer_auth(&token)).await,
        "db_users",
    )
    .await;
    let e = run("writer", None, "SELECT 1").await.unwrap_err();
    assert!(
        e.contains("password authentication failed") || e.contains("does not exist"),
        "{e}"
    );
    // What the admin made stays, with the owner, when the admin goes.
    applied(
        &api,
        &token,
        send(api.delete(&format!("{users}/boss")).bearer_auth(&token)).await,
        "db_users",
    )
    .await;
    assert_eq!(
        psql(
            &inst.url,
            &ca,
            &owner_password,
            "SELECT tableowner FROM pg_tables WHERE tablename = 'b'"
        )
        .await
        .unwrap(),
        owner
    );
    let r = send(api.get(&users).bearer_auth(&token)).await;
    assert_eq!(r.json["count"], 2, "{}", r.json);

    // Bad input.
    for body in [
        json!({"name": "Bad", "profile": "read_only"}),
        json!({"name": "1abc", "profile": "read_only"}),
        json!({"name": "a-b", "profile": "read_only"}),
        json!({"name": "a".repeat(64), "profile": "read_only"}),
        json!({"name": "", "profile": "read_only"}),
        json!({"name": "pg_monitor2", "profile": "read_only"}),
        json!({"name": "postgres", "profile": "read_only"}),
        json!({"name": "robert\"; DROP ROLE x; --", "profile": "read_only"}),
        json!({"name": "x", "profile": "owner"}),
        json!({"name": "x", "profile": "superuser"}),
        json!({"name": "x"}),
    ] {
        let r = send(api.post_json(&users, &body).bearer_auth(&token)).await;
        assert_eq!(r.status, 400, "{body}: {}", r.json);
    }
    send(
        api.post_json(&users, &json!({"name": "reader", "profile": "read_write"}))
            .bearer_auth(&token),
    )
    .await
    .expect_error(409, "conflict");
    send(
        api.post_json(&users, &json!({"name": owner, "profile": "read_write"}))
            .bearer_auth(&token),
    )
    .await
    .expect_error(409, "conflict");
    for name in [owner.as_str(), "postgres", "pg_read_all_data"] {
        send(api.delete(&format!("{users}/{name}")).bearer_auth(&token))
            .await
            .expect_error(409, "conflict");
    }
    send(api.delete(&format!("{users}/nobody")).bearer_auth(&token))
        .await
        .expect_error(404, "not_found");
    send(
        api.post(&format!("{users}/nobody/reset-password"))
            .bearer_auth(&token),
    )
    .await
    .expect_error(404, "not_found");
    send(
        api.post(&format!("{users}/postgres/reset-password"))
            .bearer_auth(&token),
    )
    .await
    .expect_error(409, "conflict");
    for body in [
        json!({"name": "template1"}),
        json!({"name": "Has Space"}),
        json!({"name": "ok_name", "owner": "nobody"}),
    ] {
        let r = send(api.post_json(&databases, &body).bearer_auth(&token)).await;
        assert_eq!(r.status, 400, "{body}: {}", r.json);
    }
    let own_db = inst
        .url
        .rsplit_once('/')
        .unwrap()
        .1
        .split('?')
        .next()
        .unwrap();
    send(
        api.delete(&format!("{databases}/{own_db}"))
            .bearer_auth(&token),
    )
    .await
    .expect_error(409, "conflict");
    send(
        api.delete(&format!("{databases}/nothing"))
            .bearer_auth(&token),
    )
    .await
    .expect_error(404, "not_found");

    // Another tenant sees none of it.
    for r in [
        send(api.get(&users).bearer_auth(&stranger)).await,
        send(api.get(&databases).bearer_auth(&stranger)).await,
        send(
            api.post_json(&users, &json!({"name": "spy", "profile": "read_only"}))
                .bearer_auth(&stranger),
        )
        .await,
        send(
            api.post(&format!("{users}/reader/reset-password"))
                .bearer_auth(&stranger),
        )
        .await,
        send(
            api.delete(&format!("{users}/reader"))
                .bearer_auth(&stranger),
        )
        .await,
        send(
            api.post_json(&databases, &json!({"name": "spy"}))
                .bearer_auth(&stranger),
        )
        .await,
        send(api.delete(&format!("{databases}/x")).bearer_auth(&stranger)).await,
    ] {
        r.expect_error(404, "not_found");
    }

    // The instance's log has the test's statements, none of Berth's with a verifier, and no
    // warning from reconciling memberships.
    let r = send(
        api.get(&format!("/api/v1/instances/{}/logs?limit=1000", inst.id))
            .bearer_auth(&token),
    )
    .await;
    r.expect(200);
    assert!(r.text.contains("CREATE TABLE t"), "statements are logged");
    for bad in ["SCRAM-SHA-256$", "PASSWORD", "is not a member"] {
        assert!(!r.text.contains(bad), "{bad} in the log: {}", r.text);
    }

    // A paused instance: users and databases wait for it to run.
    let r = send(
        api.post(&format!("/api/v1/instances/{}/pause", inst.id))
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    wait_job(&api, &token, r.json["job_id"].as_str().unwrap()).await;
    let r = send(
        api.post_json(&users, &json!({"name": "late", "profile": "read_only"}))
            .bearer_auth(&token),
    )
    .await;
    r.expect_error(409, "conflict");
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .contains("must be running"));
}
