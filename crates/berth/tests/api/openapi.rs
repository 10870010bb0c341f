//! The OpenAPI document as the tools a user points at it see it (issue 7, part 7): a real
//! validator (openapi-spec-validator), a client generator (openapi-python-client) that must
//! generate every operation, authlib's check of the RFC 8414 metadata, and a bounded, seeded
//! property-based run of schemathesis in which a 5xx, a response that breaks its schema, a wrong
//! media type or an undeclared status fails the test. The Python tools live in a virtualenv that
//! `scripts/prereqs.sh --test` installs; `BERTH_PYTOOLS` says where (scripts/test.sh sets it),
//! with the same default as the script.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::*;

/// The virtualenv of the Python test tools.
fn pytools() -> PathBuf {
    let dir = std::env::var_os("BERTH_PYTOOLS")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")
                });
            cache.join("berth/pytools")
        });
    for tool in [
        "python",
        "openapi-spec-validator",
        "openapi-python-client",
        "st",
    ] {
        assert!(
            dir.join("bin").join(tool).exists(),
            "the Python test tools are not installed in {} ({tool} is missing): run \
             `scripts/prereqs.sh --test`, or set BERTH_PYTOOLS to where they are",
            dir.display()
        );
    }
    dir
}

/// Runs `cmd` (output to a file, so a chatty tool cannot block on a full pipe), killing it if
/// it outlives `limit`. Returns whether it succeeded and what it printed.
fn run(mut cmd: Command, log: &Path, limit: Duration) -> (bool, String) {
    let out = std::fs::File::create(log).unwrap();
    cmd.stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .env("PATH", path_with(&pytools().join("bin")))
        .env("NO_COLOR", "1");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    match status {
        Some(s) => (s.success(), text),
        None => (false, format!("{text}\n<killed after {limit:?}>")),
    }
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The last `n` lines of a tool's output, for failure messages.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

async fn served_document(api: &Api) -> Value {
    let r = send(api.get("/api/openapi.json")).await;
    r.expect(200);
    r.json.clone()
}

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.push((method.to_owned(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

/// What the document says, checked directly: a generator depends on each of these.
#[tokio::test]
async fn openapi_document_passes_a_validator_and_declares_what_the_server_answers() {
    let s = shared();
    let api = Api::new(s);
    let doc = served_document(&api).await;
    let dir = temp_dir("openapi-validate");
    let file = dir.join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let mut validator = Command::new(pytools().join("bin/openapi-spec-validator"));
    validator.arg(&file);
    let (ok, out) = run(
        validator,
        &dir.join("validator.log"),
        Duration::from_secs(120),
    );
    assert!(
        ok,
        "openapi-spec-validator refuses the document:\n{}",
        tail(&out, 60)
    );

    let mut problems = Vec::new();
    let mut ids = BTreeSet::new();
    let ops = operations(&doc);
    assert!(ops.len() >= 50, "only {} operations", ops.len());
    for (method, path, op) in &ops {
        let at = format!("{} {path}", method.to_uppercase());
        let id = op["operationId"].as_str().unwrap_or_default();
        let snake = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !snake {
            problems.push(format!("{at}: operationId {id:?} is not snake_case"));
        }
        if !ids.insert(id.to_owned()) {
            problems.push(format!("{at}: operationId {id:?} is used twice"));
        }
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for p in &params {
            let (name, place) = (p["name"].as_str().unwrap(), p["in"].as_str().unwrap());
            let in_template = path.contains(&format!("{{{name}}}"));
            if (place == "path") != in_template {
                problems.push(format!("{at}: parameter {name} is `in: {place}`"));
            }
            if place == "query" && p["required"] == true {
                problems.push(format!("{at}: query parameter {name} is required"));
            }
        }
        let responses = op["responses"].as_object().unwrap();
        let declares = |status: &str| responses.contains_key(status);
        let mut need = Vec::new();
        let secured = op["security"].as_array().is_some_and(|reqs| {
            reqs.iter()
                .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
        });
        if secured {
            need.extend(["401", "403"]);
        }
        if params.iter().any(|p| p["in"] == "path") {
            // A malformed path parameter (`%00`) is a 400, an unknown one a 404.
            need.extend(["400", "404"]);
        }
        if params.iter().any(|p| p["in"] == "query") {
            need.push("400");
        }
        if op.get("requestBody").is_some() {
            // 408: the body did not arrive within `body_timeout_secs`.
            need.extend(["400", "408", "413", "415"]);
        }
        // Password checks are throttled: sign-ins, and `current_password` when changing one's own.
        if path.starts_with("/oauth/")
            || [
                "login",
                "ccx_login",
                "bigid_create_session",
                "ngenea_create_token",
                "create_token",
                "update_user",
            ]
            .contains(&id)
        {
            need.push("429");
        }
        if path.starts_with("/api/v1/")
            && !["/api/v1/auth/provider", "/api/v1/ca.pem"].contains(&path.as_str())
        {
            need.push("503");
        }
        for status in need {
            if !declares(status) {
                problems.push(format!("{at}: does not declare {status}"));
            }
        }
        for (status, resp) in responses {
            let Some(content) = resp.get("content").and_then(Value::as_object) else {
                continue;
            };
            for (media, c) in content {
                if c.get("schema").is_none() {
                    problems.push(format!("{at}: {status} {media} has no schema"));
                }
            }
            if status.starts_with('4') || status.starts_with('5') {
                let schema = content
                    .get("application/json")
                    .and_then(|c| c["schema"]["$ref"].as_str())
                    .unwrap_or_default();
                // (CCX's token endpoint is Berth's under another path: RFC 6749 bodies too.)
                let want = if path.starts_with("/oauth/") || path == "/api/auth/oauth2/token" {
                    "#/components/schemas/OAuthErrorBody"
                } else {
                    "#/components/schemas/ErrorBody"
                };
                if schema != want && !(path == "/readyz" && status == "503") {
                    problems.push(format!("{at}: {status} is not described as {want}"));
                }
            }
        }
    }
    // The discovery documents are described, not just "some JSON".
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
    ] {
        let schema =
            &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        if schema.get("$ref").is_none() {
            problems.push(format!("GET {path}: 200 has no schema: {schema}"));
        }
    }
    // The constraints the server enforces are stated.
    let schemas = &doc["components"]["schemas"];
    for (schema, field, key, value) in [
        ("CreateUser", "username", "maxLength", json!(64)),
        ("CreateUser", "password", "minLength", json!(12)),
        ("CreateUser", "email", "maxLength", json!(254)),
        ("CreateProject", "name", "maxLength", json!(100)),
        ("CreateProject", "description", "maxLength", json!(1000)),
        ("CreateInstance", "name", "maxLength", json!(63)),
        ("CreateInstance", "region", "minLength", json!(1)),
        ("CreateInstance", "memory", "minLength", json!(1)),
        ("CreateInstance", "version", "minLength", json!(1)),
    ] {
        let got = &schemas[schema]["properties"][field][key];
        if *got != value {
            problems.push(format!("{schema}.{field}: {key} is {got}, not {value}"));
        }
    }
    let list = &doc["paths"]["/api/v1/instances"]["get"]["parameters"];
    let limit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .expect("limit parameter");
    assert_eq!(limit["in"], "query", "{limit}");
    assert_eq!(limit["schema"]["minimum"], 1, "{limit}");
    assert_eq!(limit["schema"]["maximum"], 500, "{limit}");
    let permission = &schemas["Permission"]["enum"];
    assert!(
        permission
            .as_array()
            .is_some_and(|v| v.contains(&json!("projects:read"))),
        "permissions are described by their wire names: {permission}"
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `openapi-python-client` generates a module for every operation, without one warning. The
/// one setting it needs says that `application/x-pem-file` (the CA certificate) is text.
#[tokio::test]
async fn a_generated_python_client_has_every_operation() {
    let s = shared();
    let api = Api::new(s);
    let doc = served_document(&api).await;
    let expected: BTreeSet<String> = operations(&doc)
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
        .collect();
    let dir = temp_dir("openapi-client");
    std::fs::write(dir.join("openapi.json"), doc.to_string()).unwrap();
    std::fs::write(
        dir.join("generator.yml"),
        "content_type_overrides:\n  application/x-pem-file: text/plain\npost_hooks: []\n",
    )
    .unwrap();
    let mut generate = Command::new(pytools().join("bin/openapi-python-client"));
    generate
        .current_dir(&dir)
        .args(["generate", "--path", "openapi.json", "--meta", "none"])
        .args(["--output-path", "berth_client", "--config", "generator.yml"])
        .arg("--fail-on-warning");
    let (ok, out) = run(
        generate,
        &dir.join("generate.log"),
        Duration::from_secs(120),
    );
    assert!(ok, "openapi-python-client failed:\n{}", tail(&out, 80));
    assert!(
        !out.to_lowercase().contains("warning") && !out.contains("will not be generated"),
        "openapi-python-client warned:\n{out}"
    );

    // One module per operation, named after its operationId, that imports cleanly.
    let mut generated = BTreeSet::new();
    for tag in std::fs::read_dir(dir.join("berth_client/api"))
        .unwrap()
        .flatten()
    {
        if !tag.path().is_dir() {
            continue;
        }
        for module in std::fs::read_dir(tag.path()).unwrap().flatten() {
            let name = module.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".py") else {
                continue;
            };
            let text = std::fs::read_to_string(module.path()).unwrap();
            if stem != "__init__" && text.contains("def sync_detailed(") {
                generated.insert(stem.to_owned());
            }
        }
    }
    let missing: Vec<_> = expected.difference(&generated).collect();
    assert!(
        missing.is_empty(),
        "no client module for {missing:?}; generated {generated:?}"
    );
    assert_eq!(
        generated.len(),
        expected.len(),
        "{generated:?} vs {expected:?}"
    );
    let mut import = Command::new(pytools().join("bin/python"));
    import.current_dir(&dir).args([
        "-c",
        "import importlib, pkgutil, berth_client.api as api\n\
         for m in pkgutil.walk_packages(api.__path__, 'berth_client.api.'):\n    importlib.import_module(m.name)",
    ]);
    let (ok, out) = run(import, &dir.join("import.log"), Duration::from_secs(60));
    assert!(
        ok,
        "the generated client does not import:\n{}",
        tail(&out, 40)
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// authlib's strict RFC 8414 validation accepts the metadata (it refused an empty
/// `response_types_supported`).
#[tokio::test]
async fn authorization_server_metadata_satisfies_authlib() {
    let s = shared();
    let api = Api::new(s);
    let r = send(api.get("/.well-known/oauth-authorization-server")).await;
    r.expect(200);
    assert_eq!(
        r.json["response_types_supported"],
        json!(["none"]),
        "{}",
        r.text
    );
    let dir = temp_dir("openapi-authlib");
    std::fs::write(dir.join("metadata.json"), &r.text).unwrap();
    let mut check = Command::new(pytools().join("bin/python"));
    check.current_dir(&dir).args([
        "-c",
        "import json\n\
         from authlib.oauth2.rfc8414 import AuthorizationServerMetadata\n\
         AuthorizationServerMetadata(json.load(open('metadata.json'))).validate()\n\
         print('valid')",
    ]);
    let (ok, out) = run(check, &dir.join("authlib.log"), Duration::from_secs(60));
    assert!(
        ok && out.contains("valid"),
        "authlib refuses the metadata:\n{out}\n{}",
        r.text
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Two 500s the property-based run found: an offset near `i64::MAX` overflowed the next-page
/// computation, and a NUL in a text filter reached PostgreSQL, which cannot store it.
#[tokio::test]
async fn huge_offsets_and_nul_characters_are_answered_without_a_server_error() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    for path in [
        "/api/v1/projects",
        "/api/v1/users",
        "/api/v1/instances",
        "/api/v1/jobs",
        "/api/v1/audit-events",
        "/api/v1/auth/api-keys",
        "/api/v1/auth/clients",
    ] {
        let r = send(
            api.get(&format!("{path}?limit=500&offset=9223372036854775806"))
                .bearer_auth(&admin),
        )
        .await;
        r.expect(200);
        assert_eq!(r.json["next"], Value::Null, "{path}: {:?}", r.json);
        assert_eq!(r.json["results"], json!([]), "{path}: {:?}", r.json);
    }
    for query in [
        "/api/v1/jobs?state=a%00b",
        "/api/v1/jobs?type=%00",
        "/api/v1/instances?status=a%00b",
        "/api/v1/instances?name=%00",
        "/api/v1/audit-events?type=auth.%00",
        "/api/v1/audit-events?actor=a%00",
    ] {
        let r = send(api.get(query).bearer_auth(&admin)).await;
        r.expect_error(400, "invalid_request");
        assert!(
            r.json["message"].as_str().unwrap().contains("U+0000"),
            "{query}: {r:#?}"
        );
    }
}

/// Answers the outside review saw undeclared or unstated: a NUL in a (non-UUID) path parameter
/// is a 400 (declared), and so is an empty region, version, memory or storage size (which the
/// schema refuses).
#[tokio::test]
async fn malformed_path_parameters_and_empty_instance_fields_are_declared_400s() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let doc = served_document(&api).await;
    let r = send(api.delete("/api/v1/auth/clients/%00").bearer_auth(&admin)).await;
    r.expect(400);
    let declared = &doc["paths"]["/api/v1/auth/clients/{client_id}"]["delete"]["responses"]["400"];
    assert!(declared.is_object(), "revoke_client does not declare 400");
    let r = send(
        api.post_json("/api/v1/projects", &json!({"name": unique("empty-fields")}))
            .bearer_auth(&admin),
    )
    .await;
    r.expect(201);
    let project = r.json["id"].as_str().unwrap().to_owned();
    let valid = json!({"name": "e", "project_id": project, "engine": "postgres",
        "version": "15", "region": "local", "memory": "256MB"});
    for field in ["region", "version", "memory", "storage"] {
        let mut body = valid.clone();
        body[field] = json!("");
        let r = send(
            api.post_json("/api/v1/instances", &body)
                .bearer_auth(&admin),
        )
        .await;
        r.expect_error(400, "invalid_request");
    }
}

static FUZZED: OnceLock<Result<Server, String>> = OnceLock::new();

/// The server schemathesis runs against: its failed sign-ins from 127.0.0.1 would lock the
/// shared server's address (and so every other test's sign-in), hence one of its own, where
/// that address may fail often.
fn fuzzed() -> &'static Server {
    static_server(&FUZZED, "fuzzed", || {
        base_config().replace(
            &format!("max_failures_per_ip = {MAX_FAILURES_PER_IP}"),
            "max_failures_per_ip = 1000000",
        )
    })
}

/// Schemathesis over every operation, authenticated as an admin (an API key: a token would be
/// signed out by the fuzzed `POST /api/v1/auth/logout`), with a fixed seed and a bounded number
/// of examples: a 5xx, a response breaking its schema, a media type or a status the document
/// does not declare fails the test.
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_undeclared_answer() {
    let s = fuzzed();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let r = send(
        api.post_json("/api/v1/auth/api-keys", &json!({"name": "schemathesis"}))
            .bearer_auth(&admin),
    )
    .await;
    r.expect(201);
    let key = r.json["api_key"].as_str().unwrap().to_owned();
    // The run must reach the routes, not stop at 401.
    send(api.get("/api/v1/auth/check").api_key(&key))
        .await
        .expect(200);

    let dir = temp_dir("openapi-schemathesis");
    let mut st = Command::new(pytools().join("bin/st"));
    st.current_dir(&dir)
        .arg("run")
        .arg(format!("{}/api/openapi.json", s.base))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance",
        ])
        // Stateful: sequences along the links schemathesis infers (create, then read, ...).
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--seed", "20261201", "--max-examples", "30"])
        // One worker: the tools' threads trip a CPython 3.11 parser bug (a spurious error).
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--generation-database", "none", "--suppress-health-check", "all"])
        .args(["--no-color", "--output-truncate", "true"])
        .arg("-H")
        .arg(format!("Authorization: Api-Key {key}"));
    let (ok, out) = run(st, &dir.join("schemathesis.log"), Duration::from_secs(300));
    assert!(
        ok,
        "schemathesis found problems (full output in {}):\n{}",
        dir.join("schemathesis.log").display(),
        tail(&out, 150)
    );
    let tested: usize = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Tested: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let operations = operations(&served_document(&api).await).len();
    assert_eq!(
        tested,
        operations,
        "schemathesis did not test every operation:\n{}",
        tail(&out, 40)
    );

    // The run stayed within what the server answers: no 5xx in its log either.
    let log = s.log_text();
    assert!(
        !log.contains("\"internal error\"") && !log.contains("panicked"),
        "the server logged internal errors during the run:\n{}",
        tail(&log, 40)
    );
    let _ = std::fs::remove_dir_all(dir);
}
