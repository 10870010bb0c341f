//! Data sources and imports (issue 11), against a second real PostgreSQL server the test
//! starts itself (its own initdb, port and roles, as an external database would be): a test
//! that connects, one with a wrong password, one at a closed port, one that times out, TLS
//! with and without the right CA; an import of several schemas, tables, indexes and a few MB
//! of rows checked row for row, every object owned by the instance's owner; a failed import
//! that leaves nothing; bad input and tenant isolation.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::instances::{ca_file, create_body, psql, wait_status};
use crate::common::*;

const SOURCE_PASSWORD: &str = "source:pass\\word with spaces";

/// A PostgreSQL server of the test's own, on loopback, with a password-protected role that
/// owns a database of several schemas.
struct ExternalPostgres {
    bindir: PathBuf,
    data: PathBuf,
    socket: PathBuf,
    port: u16,
}

fn bindir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop().expect("an initdb")
}

/// Runs a PostgreSQL program as the `postgres` user (initdb refuses root).
fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "postgres", "--"]).arg(program);
    cmd
}

fn run(mut cmd: Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl ExternalPostgres {
    fn start(tag: &str) -> ExternalPostgres {
        let dir = temp_dir(tag);
        let data = dir.join("data");
        let socket = dir.join("run");
        for d in [&data, &socket] {
            std::fs::create_dir(d).unwrap();
        }
        run(
            {
                let mut c = Command::new("chown");
                c.arg("-R").arg("postgres:postgres").arg(&dir);
                c
            },
            "chown",
        );
        let bindir = bindir();
        run(
            {
                let mut c = as_postgres(&bindir.join("initdb"));
                c.arg("-D").arg(&data).args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--no-sync",
                ]);
                c
            },
            "initdb",
        );
        let port = free_port();
        run(
            {
                let mut c = as_postgres(&bindir.join("pg_ctl"));
                c.arg("-D")
                    .arg(&data)
                    .arg("-l")
                    .arg(dir.join("log"))
                    .arg("-w")
                    .arg("-o")
                    .arg(format!(
                        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                        socket.display()
                    ));
                c.arg("start");
                c
            },
            "pg_ctl start",
        );
        ExternalPostgres {
            bindir,
            data,
            socket,
            port,
        }
    }

    /// Runs SQL as the superuser over the socket.
    fn sql(&self, database: &str, sql: &str) -> String {
        let mut c = as_postgres(&self.bindir.join("psql"));
        c.arg("-h")
            .arg(&self.socket)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]);
        run(c, &format!("psql {sql}"))
    }
}

impl Drop for ExternalPostgres {
    fn drop(&mut self) {
        let mut c = as_postgres(&self.bindir.join("pg_ctl"));
        c.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"]);
        let _ = c.output();
    }
}

/// The source's database: roles of its own, three schemas, tables with keys, indexes, a
/// foreign key, a view, a sequence, a function, and a few MB of rows.
fn fill(pg: &ExternalPostgres) {
    pg.sql(
        "postgres",
        &format!(
            "CREATE ROLE shop_owner LOGIN PASSWORD '{}'; CREATE ROLE shop_reader LOGIN PASSWORD 'r'",
            SOURCE_PASSWORD.replace('\'', "''")
        ),
    );
    pg.sql("postgres", "CREATE DATABASE shop OWNER shop_owner");
    pg.sql(
        "shop",
        "SET ROLE shop_owner;
         CREATE SCHEMA sales; CREATE SCHEMA inventory; CREATE SCHEMA audit;
         CREATE TABLE inventory.products (id int PRIMARY KEY, sku text UNIQUE NOT NULL,
             name text NOT NULL, price numeric(10,2) NOT NULL);
         CREATE TABLE sales.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             product_id int NOT NULL REFERENCES inventory.products(id),
             quantity int NOT NULL, placed_at timestamptz NOT NULL, note text);
         CREATE INDEX orders_placed_at ON sales.orders (placed_at);
         CREATE INDEX orders_product ON sales.orders (product_id, quantity);
         CREATE TABLE audit.events (id serial PRIMARY KEY, payload jsonb NOT NULL);
         CREATE TABLE public.settings (key text PRIMARY KEY, value text);
         CREATE VIEW sales.daily AS SELECT date_trunc('day', placed_at) AS day, sum(quantity) AS n
             FROM sales.orders GROUP BY 1;
         CREATE SEQUENCE sales.invoice_numbers START 1000;
         CREATE FUNCTION sales.total(p int) RETURNS bigint LANGUAGE sql STABLE
             AS 'SELECT coalesce(sum(quantity), 0) FROM sales.orders WHERE product_id = p';
         INSERT INTO inventory.products SELECT g, 'SKU-' || g, 'product ' || g, g * 1.25
             FROM generate_series(1, 2000) g;
         INSERT INTO sales.orders (product_id, quantity, placed_at, note)
             SELECT 1 + g % 2000, g % 17, timestamptz '2026-01-01' + g * interval '1 minute',
                    repeat(md5(g::text), 1 + g % 3)
             FROM generate_series(1, 60000) g;
         INSERT INTO audit.events (payload) SELECT jsonb_build_object('n', g, 'tag', md5(g::text))
             FROM generate_series(1, 5000) g;
         INSERT INTO public.settings VALUES ('currency', 'EUR'), ('tax', '0.19');
         SELECT setval('sales.invoice_numbers', 4242);
         GRANT USAGE ON SCHEMA sales TO shop_reader;
         GRANT SELECT ON ALL TABLES IN SCHEMA sales TO shop_reader;",
    );
}

/// Tables of the copied schemas and a digest of each one's rows, in key order.
const DIGEST: &str = "SELECT string_agg(t || '=' || n || ':' || d, ' ' ORDER BY t) FROM (
    SELECT 'products' t, count(*) n, md5(string_agg(p::text, ',' ORDER BY id)) d FROM inventory.products p
    UNION ALL SELECT 'orders', count(*), md5(string_agg(o::text, ',' ORDER BY id)) FROM sales.orders o
    UNION ALL SELECT 'events', count(*), md5(string_agg(e::text, ',' ORDER BY id)) FROM audit.events e
    UNION ALL SELECT 'settings', count(*), md5(string_agg(s::text, ',' ORDER BY key)) FROM public.settings s
) x";
/// The shape: indexes, constraints, the view, the sequence's position, the function.
const SHAPE: &str = "SELECT (SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes
        WHERE schemaname IN ('sales', 'inventory', 'audit', 'public'))
    || ' | ' || (SELECT count(*) FROM pg_constraint WHERE contype = 'f')
    || ' | ' || (SELECT count(*) FROM sales.daily)
    || ' | ' || (SELECT last_value FROM sales.invoice_numbers)
    || ' | ' || sales.total(7)";

async fn data_source(api: &Api, token: &str, body: &Value) -> Value {
    let r = send(
        api.post_json("/api/v1/data-sources", body)
            .bearer_auth(token),
    )
    .await;
    r.expect(201);
    r.json.clone()
}

async fn test(api: &Api, token: &str, id: &str) -> Value {
    let r = send(
        api.post(&format!("/api/v1/data-sources/{id}/test"))
            .bearer_auth(token),
    )
    .await;
    r.expect(200);
    r.json.clone()
}

/// Waits for a job to end; returns it.
async fn wait_job(api: &Api, token: &str, id: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let r = send(api.get(&format!("/api/v1/jobs/{id}")).bearer_auth(token)).await;
        r.expect(200);
        if !matches!(r.json["state"].as_str(), Some("PENDING" | "STARTED")) {
            return r.json.clone();
        }
        assert!(
            Instant::now() < deadline,
            "job {id} never ended: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn data_sources_are_tested_against_a_real_server() {
    let pg = ExternalPostgres::start("ds-test");
    fill(&pg);
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (user, token, project) = create_member(&api, &admin, "ds").await;
    let project = project.id.to_string();
    let body = json!({"name": "shop", "project_id": project, "host": "127.0.0.1", "port": pg.port,
        "database": "shop", "username": "shop_owner", "password": SOURCE_PASSWORD, "sslmode": "prefer"});
    let ds = data_source(&api, &token, &body).await;
    let id = ds["id"].as_str().unwrap().to_owned();
    assert!(!ds.to_string().contains(SOURCE_PASSWORD), "{ds}");
    assert_eq!(ds["sslmode"], "prefer");
    assert_eq!(ds["last_test"], Value::Null);

    // It connects: version, size, no TLS (the server has none; `prefer` goes without).
    let t = test(&api, &token, &id).await;
    assert_eq!(t["ok"], true, "{t}");
    assert_eq!(t["server_major"], 15, "{t}");
    assert!(t["size_bytes"].as_i64().unwrap() > 5_000_000, "{t}");
    assert_eq!(t["tls"], false);
    let got = send(
        api.get(&format!("/api/v1/data-sources/{id}"))
            .bearer_auth(&token),
    )
    .await;
    got.expect(200);
    assert_eq!(got.json["last_test"]["ok"], true, "{}", got.json);
    assert!(!got.text.contains(SOURCE_PASSWORD));

    // The same name again is a 409; a name of its own is fine.
    let r = send(
        api.post_json("/api/v1/data-sources", &body)
            .bearer_auth(&token),
    )
    .await;
    r.expect_error(409, "conflict");

    // A wrong password: the step and the server's reason; the recorded test follows.
    let r = send(
        api.patch_json(
            &format!("/api/v1/data-sources/{id}"),
            &json!({"password": "wrong"}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(200);
    assert_eq!(
        r.json["last_test"],
        Value::Null,
        "an edited connection is untested"
    );
    let t = test(&api, &token, &id).await;
    assert_eq!(t["ok"], false);
    assert_eq!(t["failed_step"], "authentication", "{t}");
    assert!(
        t["error"]
            .as_str()
            .unwrap()
            .contains("password authentication failed"),
        "{t}"
    );

    // A closed port.
    let r = send(
        api.patch_json(
            &format!("/api/v1/data-sources/{id}"),
            &json!({"password": SOURCE_PASSWORD, "port": free_port()}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(200);
    let t = test(&api, &token, &id).await;
    assert_eq!(t["failed_step"], "connect", "{t}");

    // A port that accepts and never answers: a timeout within the configured 2 s.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    send(
        api.patch_json(
            &format!("/api/v1/data-sources/{id}"),
            &json!({"port": silent_port}),
        )
        .bearer_auth(&token),
    )
    .await
    .expect(200);
    let t = test(&api, &token, &id).await;
    assert_eq!(t["failed_step"], "timeout", "{t}");
    assert!(t["elapsed_ms"].as_u64().unwrap() < 10_000, "{t}");
    drop(silent);

    // A database that does not exist.
    send(
        api.patch_json(
            &format!("/api/v1/data-sources/{id}"),
            &json!({"port": pg.port, "database": "nothere"}),
        )
        .bearer_auth(&token),
    )
    .await
    .expect(200);
    let t = test(&api, &token, &id).await;
    assert_eq!(t["failed_step"], "database", "{t}");

    // TLS: a Berth instance is a PostgreSQL with a certificate of Berth's CA; verify-full
    // passes with that CA and fails without it (the system's roots do not have it).
    let created = send(
        api.post_json("/api/v1/instances", &create_body(&project, "tls-source"))
            .bearer_auth(&token),
    )
    .await;
    created.expect(202);
    let instance = created.json["id"].as_str().unwrap().to_owned();
    let port = created.json["connection_url"]
        .as_str()
        .unwrap()
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    wait_status(&api, &token, &instance, "running", Duration::from_secs(120)).await;
    let ca = send(api.get("/api/v1/ca.pem")).await.text;
    let tls = data_source(
        &api,
        &token,
        &json!({"name": "tls", "project_id": project, "host": "127.0.0.1", "port": port,
            "database": "app", "username": "app",
            "password": created.json["password"], "ca_certificate": ca}),
    )
    .await;
    assert_eq!(tls["sslmode"], "verify-full", "the default");
    let tls_id = tls["id"].as_str().unwrap();
    let t = test(&api, &token, tls_id).await;
    assert_eq!(t["ok"], true, "{t}");
    assert_eq!(t["tls"], true, "{t}");
    send(
        api.patch_json(
            &format!("/api/v1/data-sources/{tls_id}"),
            &json!({"ca_certificate": ""}),
        )
        .bearer_auth(&token),
    )
    .await
    .expect(200);
    let t = test(&api, &token, tls_id).await;
    assert_eq!(t["failed_step"], "tls", "{t}");

    // Lists: Berth's page and BigID's envelope, with a bare Authorization header.
    let list = send(
        api.get(&format!("/api/v1/data-sources?project_id={project}"))
            .bearer_auth(&token),
    )
    .await;
    list.expect(200);
    assert_eq!(list.json["count"], 2, "{}", list.json);
    let bigid = send(
        api.get("/api/v1/ds-connections")
            .header("Authorization", &token),
    )
    .await;
    bigid.expect(200);
    assert_eq!(bigid.json["status"], "success");
    assert_eq!(bigid.json["statusCode"], 200);
    let names: Vec<&str> = bigid.json["data"]["ds_connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"shop") && names.contains(&"tls"),
        "{names:?}"
    );
    assert!(!bigid.text.contains(SOURCE_PASSWORD));

    // The CLI: the password on standard input, never on the command line.
    let dir = temp_dir("ds-cli").join("berth");
    crate::cli::login_by_device(&api, s, &dir, &user).await;
    let port = pg.port.to_string();
    let mut add = tokio::process::Command::from(crate::cli::berth(&dir));
    add.args([
        "data-sources",
        "add",
        "cli-shop",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
    ])
    .args([
        "--database",
        "shop",
        "--user",
        "shop_owner",
        "--sslmode",
        "disable",
    ])
    .stdin(std::process::Stdio::piped());
    let mut child = add.spawn().unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("{SOURCE_PASSWORD}\n").as_bytes())
            .await
            .unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tested = crate::cli::berth_ok(&dir, &["data-sources", "test", "cli-shop"]).await;
    assert!(tested.contains("PostgreSQL 15"), "{tested}");
    let listed = crate::cli::berth_ok(&dir, &["data-sources", "list"]).await;
    assert!(
        listed.contains("cli-shop") && listed.contains(" ok"),
        "{listed}"
    );
    let (ok, _, err) = crate::cli::berth_run(
        &dir,
        &["instances", "create", "x", "--from-data-source", "nothere"],
    )
    .await;
    assert!(!ok && err.contains("no data source"), "{err}");
    crate::cli::berth_ok(&dir, &["data-sources", "remove", "cli-shop"]).await;

    // Deleted: gone.
    let r = send(
        api.delete(&format!("/api/v1/data-sources/{tls_id}"))
            .bearer_auth(&token),
    )
    .await;
    r.expect(204);
    let r = send(
        api.get(&format!("/api/v1/data-sources/{tls_id}"))
            .bearer_auth(&token),
    )
    .await;
    r.expect_error(404, "not_found");
    let _ = send(
        api.patch_json(
            &format!("/api/v1/instances/{instance}"),
            &json!({"deletion_protection": false}),
        )
        .bearer_auth(&token),
    )
    .await;
    send(
        api.delete(&format!("/api/v1/instances/{instance}"))
            .bearer_auth(&token),
    )
    .await
    .expect(202);
}

#[tokio::test]
async fn data_sources_refuse_bad_input_and_other_tenants() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "ds-bad").await;
    let project = project.id.to_string();
    let (_, other, other_project) = create_member(&api, &admin, "ds-other").await;
    let good = json!({"name": "src", "project_id": project, "host": "db.example.com",
        "database": "d", "username": "u", "password": "p"});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    for (body, why) in [
        (with("host", json!("/var/run/postgresql")), "a socket path"),
        (
            with("host", json!("a.example.com,b.example.com")),
            "a host list",
        ),
        (with("host", json!("")), "an empty host"),
        (with("port", json!(0)), "port 0"),
        (with("port", json!(70000)), "a port out of range"),
        (with("sslmode", json!("sometimes")), "an unknown sslmode"),
        (
            with("ca_certificate", json!("not pem")),
            "a CA that is not PEM",
        ),
        (with("password", json!("")), "an empty password"),
        (
            with("password", json!("a\nb")),
            "a password with a line break",
        ),
        (with("name", json!("has spaces")), "a bad name"),
        (
            with("database", json!("x".repeat(64))),
            "a long database name",
        ),
        (with("colour", json!("red")), "an unknown field"),
    ] {
        let r = send(
            api.post_json("/api/v1/data-sources", &body)
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(r.status, 400, "{why}: {} {}", r.status, r.text);
        r.check_error_body(r.json["error"].as_str().unwrap_or("?"))
            .unwrap();
    }
    // Into another tenant's project: 404, as the project does not exist for the caller.
    let r = send(
        api.post_json(
            "/api/v1/data-sources",
            &with("project_id", json!(other_project.id)),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect_error(404, "not_found");

    let ds = data_source(&api, &token, &good).await;
    let id = ds["id"].as_str().unwrap();
    assert_eq!(ds["port"], 5432, "the default port");
    for (method, path) in [
        ("get", format!("/api/v1/data-sources/{id}")),
        ("patch", format!("/api/v1/data-sources/{id}")),
        ("delete", format!("/api/v1/data-sources/{id}")),
        ("post", format!("/api/v1/data-sources/{id}/test")),
    ] {
        let rb = match method {
            "get" => api.get(&path),
            "patch" => api.patch_json(&path, &json!({"name": "mine"})),
            "delete" => api.delete(&path),
            _ => api.post(&path),
        };
        let r = send(rb.bearer_auth(&other)).await;
        r.expect_error(404, "not_found");
    }
    let r = send(api.get("/api/v1/data-sources").bearer_auth(&other)).await;
    r.expect(200);
    assert!(!r.text.contains(id), "another tenant lists it: {}", r.text);
    let bigid = send(
        api.get("/api/v1/ds-connections")
            .header("Authorization", &other),
    )
    .await;
    bigid.expect(200);
    assert!(!bigid.text.contains(id));

    // An import names exactly one source, of the same project, without restore options.
    let create = |source: Value| {
        let mut b = create_body(&project, &unique("imp").replace('.', "-"));
        b["source"] = source;
        b
    };
    for (source, status, why) in [
        (
            json!({"data_source_id": id, "instance_id": id}),
            400,
            "two sources",
        ),
        (
            json!({"data_source_id": id, "point_in_time": "2026-01-01T00:00:00Z"}),
            400,
            "a moment",
        ),
        (json!({}), 400, "no source"),
        (
            json!({"data_source_id": uuid::Uuid::now_v7()}),
            404,
            "an unknown data source",
        ),
    ] {
        let r = send(
            api.post_json("/api/v1/instances", &create(source))
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(r.status, status, "{why}: {}", r.text);
    }
    // Another tenant cannot import from it.
    let mut b = create_body(&other_project.id.to_string(), "stolen");
    b["source"] = json!({"data_source_id": id});
    let r = send(api.post_json("/api/v1/instances", &b).bearer_auth(&other)).await;
    r.expect_error(404, "not_found");
}

#[tokio::test]
async fn an_import_copies_every_row_and_the_owner_owns_everything() {
    let pg = ExternalPostgres::start("ds-import");
    fill(&pg);
    let expected_rows = pg.sql("shop", DIGEST);
    let expected_shape = pg.sql("shop", SHAPE);
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "imp").await;
    let project = project.id.to_string();
    let ds = data_source(
        &api,
        &token,
        &json!({"name": "shop", "project_id": project, "host": "127.0.0.1", "port": pg.port,
            "database": "shop", "username": "shop_owner", "password": SOURCE_PASSWORD,
            "sslmode": "disable"}),
    )
    .await;
    let ds_id = ds["id"].as_str().unwrap().to_owned();

    let mut body = create_body(&project, "imported");
    body["source"] = json!({"data_source_id": ds_id});
    let created = send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token),
    )
    .await;
    created.expect(202);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let job = created.json["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.json["current_job"]["type"], "import",
        "{}",
        created.json
    );
    // Its data source cannot go while the import needs it.
    let r = send(
        api.delete(&format!("/api/v1/data-sources/{ds_id}"))
            .bearer_auth(&token),
    )
    .await;
    assert!(
        r.status == 409 || r.status == 204,
        "{} {}",
        r.status,
        r.text
    );
    let gone_early = r.status == 204;
    let j = wait_job(&api, &token, &job, Duration::from_secs(300)).await;
    if gone_early {
        // The delete won the race: the import fails with the reason (covered below too).
        assert_eq!(j["state"], "FAILURE", "{j}");
        return;
    }
    assert_eq!(j["state"], "SUCCESS", "{j}");
    let inst = wait_status(&api, &token, &id, "running", Duration::from_secs(30)).await;
    assert_eq!(inst["imported_from"], ds_id.as_str(), "{inst}");

    let dir = temp_dir("imp-ca");
    let ca = ca_file(&api, &dir).await;
    let url = created.json["connection_url"].as_str().unwrap();
    let password = created.json["password"].as_str().unwrap();
    let q = |sql: &'static str| psql(url, &ca, password, sql);
    assert_eq!(q(DIGEST).await.unwrap(), expected_rows, "every row");
    assert_eq!(
        q(SHAPE).await.unwrap(),
        expected_shape,
        "indexes, keys, view, sequence"
    );
    // Everything is the owner's; the source's roles came along nowhere.
    let foreign_owned = q(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN ('sales', 'inventory', 'audit', 'public')
              AND pg_get_userbyid(c.relowner) <> current_user",
    )
    .await
    .unwrap();
    assert_eq!(foreign_owned, "0");
    let schemas = q(
        "SELECT string_agg(nspname || ':' || pg_get_userbyid(nspowner), ',' ORDER BY nspname)
            FROM pg_namespace WHERE nspname IN ('sales', 'inventory', 'audit')",
    )
    .await
    .unwrap();
    assert_eq!(schemas, "audit:app,inventory:app,sales:app");
    let roles = q("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'shop_%'")
        .await
        .unwrap();
    assert_eq!(roles, "0");
    // The owner writes to what it now owns.
    q("INSERT INTO public.settings VALUES ('imported', 'yes')")
        .await
        .unwrap();

    // A refresh: the source moved on; importing again replaces the instance's database.
    pg.sql(
        "shop",
        "INSERT INTO public.settings VALUES ('refreshed', 'yes')",
    );
    let base = format!("/api/v1/instances/{id}");
    let r = send(
        api.post_json(&format!("{base}/import"), &json!({"data_source_id": ds_id}))
            .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    let j = wait_job(
        &api,
        &token,
        r.json["job_id"].as_str().unwrap(),
        Duration::from_secs(300),
    )
    .await;
    assert_eq!(j["state"], "SUCCESS", "{j}");
    let keys = q("SELECT string_agg(key, ',' ORDER BY key) FROM public.settings")
        .await
        .unwrap();
    assert_eq!(
        keys, "currency,refreshed,tax",
        "the source's state, not the old copy's"
    );

    // The same as a workflow over the instance's path (which needs its data source).
    let path = format!("/projects/{project}/instances/imported");
    let r = send(
        api.post_json(
            "/api/v1/workflows",
            &json!({"workflow": "import", "paths": [path]}),
        )
        .bearer_auth(&token),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = send(
        api.post_json(
            "/api/v1/workflows",
            &json!({"workflow": "import", "paths": [path], "fields": {"data_source_id": ds_id}}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    let job = r.json["targets"][0]["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", r.json))
        .to_owned();
    let j = wait_job(&api, &token, &job, Duration::from_secs(300)).await;
    assert_eq!(j["state"], "SUCCESS", "{j}");
    assert_eq!(j["type"], "import");
    assert_eq!(q(DIGEST).await.unwrap(), pg.sql("shop", DIGEST));

    // Deletion protection guards the database too.
    send(
        api.patch_json(&base, &json!({"deletion_protection": true}))
            .bearer_auth(&token),
    )
    .await
    .expect(200);
    let r = send(
        api.post_json(&format!("{base}/import"), &json!({"data_source_id": ds_id}))
            .bearer_auth(&token),
    )
    .await;
    r.expect_error(409, "conflict");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_failed_import_leaves_nothing() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "imp-fail").await;
    let project = project.id.to_string();
    let ds = data_source(
        &api,
        &token,
        &json!({"name": "closed", "project_id": project, "host": "127.0.0.1", "port": free_port(),
            "database": "d", "username": "u", "password": "p", "sslmode": "disable"}),
    )
    .await;
    let mut body = create_body(&project, "never");
    body["source"] = json!({"data_source_id": ds["id"]});
    let created = send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token),
    )
    .await;
    created.expect(202);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let job = created.json["job_id"].as_str().unwrap();
    let j = wait_job(&api, &token, job, Duration::from_secs(120)).await;
    assert_eq!(j["state"], "FAILURE", "{j}");
    assert!(
        j["error"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach the data source"),
        "{j}"
    );
    let inst = wait_status(&api, &token, &id, "failed", Duration::from_secs(10)).await;
    assert!(
        inst["status_message"]
            .as_str()
            .unwrap()
            .contains("import failed"),
        "{inst}"
    );
    let dir = s.data_dir().join("instances").join(&id);
    assert!(!dir.join("pgdata").exists(), "{} is left", dir.display());
    assert!(!dir.join("import").exists());
    // Deleting it is clean.
    send(
        api.delete(&format!("/api/v1/instances/{id}"))
            .bearer_auth(&token),
    )
    .await
    .expect(202);
}

#[tokio::test]
async fn an_import_interrupted_by_a_killed_berth_runs_again_from_nothing() {
    let pg = ExternalPostgres::start("ds-crash");
    fill(&pg);
    let expected_rows = pg.sql("shop", DIGEST);
    let dir = Dedicated::new_dir("import-crash", &base_config());
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    let project = create_project(&api, &token, "import-crash")
        .await
        .id
        .to_string();
    let ds = data_source(
        &api,
        &token,
        &json!({"name": "shop", "project_id": project, "host": "127.0.0.1", "port": pg.port,
            "database": "shop", "username": "shop_owner", "password": SOURCE_PASSWORD,
            "sslmode": "disable"}),
    )
    .await;
    let mut body = create_body(&project, "crashed");
    body["source"] = json!({"data_source_id": ds["id"]});
    let created = send(
        api.post_json("/api/v1/instances", &body)
            .bearer_auth(&token),
    )
    .await;
    created.expect(202);
    let id = created.json["id"].as_str().unwrap().to_owned();
    let job = created.json["job_id"].as_str().unwrap().to_owned();
    // Killed while the import step runs (or, on a fast machine, just after it).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = send(api.get(&format!("/api/v1/jobs/{job}")).bearer_auth(&token)).await;
        if r.json["step"] == "import"
            || r.json["state"] != "PENDING" && r.json["step"] != "provision"
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the import never started: {}",
            r.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.stop_with(libc::SIGKILL);
    d.restart(ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    let j = wait_job(&api, &token, &job, Duration::from_secs(300)).await;
    assert_eq!(j["state"], "SUCCESS", "{j}");
    // The kill came during the import (it takes seconds; the poll sees it start).
    assert!(j["attempts"].as_i64().unwrap() >= 2, "{j}");
    wait_status(&api, &token, &id, "running", Duration::from_secs(30)).await;
    let ca_dir = temp_dir("crash-ca");
    let ca = ca_file(&api, &ca_dir).await;
    let url = created.json["connection_url"].as_str().unwrap();
    let password = created.json["password"].as_str().unwrap();
    assert_eq!(
        psql(url, &ca, password, DIGEST).await.unwrap(),
        expected_rows
    );
    // Nothing of the first attempt is left: no work directory, no dump or restore running.
    let instance_dir = d.server.data_dir().join("instances").join(&id);
    assert!(!instance_dir.join("import").exists());
    let tools = processes_mentioning(&instance_dir.to_string_lossy())
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("pg_dump") || c.contains("pg_restore"))
        })
        .count();
    assert_eq!(tools, 0, "a dump or restore outlived its job");
    d.terminate_cleanly("after the import crash test").await;
    let _ = std::fs::remove_dir_all(ca_dir);
}
