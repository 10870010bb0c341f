//! The other platforms' dialects (issue 11), each driven by its seed document's requests run
//! verbatim with curl (only the host changed, and Berth's versions, regions and sizes where a
//! body names the other product's): Neo4j Aura's client-credentials token, tenants and
//! instances (../shared/seeds/002), CCX's login, token and check (003), Ngenea Hub's tokens,
//! client keys, jobs and workflow submission (004). A dialect is never a way around a rule: other
//! tenants get 404, bad input that route's clear 4xx.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backups::{ca_file, psql};
use crate::common::*;

/// Runs curl with `args` (`{B}` is the server's base URL); returns the status, the response
/// headers and the body as JSON (or Null).
async fn curl(api: &Api, args: &[&str]) -> (u16, String, Value) {
    let base = api.url("");
    let mut cmd = tokio::process::Command::new("curl");
    cmd.args(["-s", "-D", "-", "--max-time", "30"]);
    for a in args {
        cmd.arg(a.replace("{B}", base.trim_end_matches('/')));
    }
    let out = cmd.output().await.expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        head.to_owned(),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

/// A client of `token`'s user, bound to `project`, with `scopes`.
async fn api_client(api: &Api, token: &str, project: &str, scopes: &[&str]) -> (String, String) {
    let r = send(
        api.post_json(
            "/api/v1/auth/clients",
            &json!({"name": unique("compat"), "expires_at": in_days(1), "scopes": scopes,
                    "project_id": project}),
        )
        .bearer_auth(token),
    )
    .await;
    r.expect(201);
    (
        r.json["client_id"].as_str().unwrap().to_owned(),
        r.json["client_secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn neo4j_aura_seed_requests_work_verbatim() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (_, token, project) = create_member(&api, &admin, "aura").await;
    let (_, stranger, _) = create_member(&api, &admin, "aura-stranger").await;
    let project = project.id.to_string();
    let (id, secret) = api_client(
        &api,
        &token,
        &project,
        &["projects:read", "instances:read", "instances:write"],
    )
    .await;

    // "Get a bearer token": client credentials, HTTP Basic, form-encoded.
    let basic = format!("{id}:{secret}");
    let (status, _, body) = curl(
        &api,
        &[
            "--location",
            "{B}/oauth/token",
            "--header",
            "Content-Type: application/x-www-form-urlencoded",
            "--data-urlencode",
            "grant_type=client_credentials",
            "-u",
            &basic,
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let bearer = format!(
        "Authorization: Bearer {}",
        body["access_token"].as_str().unwrap()
    );

    // "Find our tenant id".
    let (status, _, body) = curl(
        &api,
        &[
            "--location",
            "{B}/v1/tenants",
            "--header",
            "Accept: application/json",
            "--header",
            &bearer,
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let tenants = body["data"].as_array().unwrap();
    assert_eq!(
        tenants.len(),
        1,
        "the client is bound to one project: {body}"
    );
    assert_eq!(tenants[0]["id"], project.as_str());
    assert!(tenants[0]["name"].is_string());

    // "Create an Aura instance" (Berth's version, region and size).
    let data = format!(
        r#" {{ "version": "15", "region": "local", "memory": "256MB", "name": "instance01", "type": "enterprise-db", "tenant_id": "{project}", "cloud_provider": "gcp" }}"#
    );
    let (status, head, body) = curl(
        &api,
        &[
            "--location",
            "{B}/v1/instances",
            "--header",
            "Content-Type: application/json",
            "--header",
            "Accept: application/json",
            "--header",
            &bearer,
            "--data",
            &data,
        ],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert!(head
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));
    let d = &body["data"];
    for field in [
        "id",
        "name",
        "connection_url",
        "username",
        "password",
        "tenant_id",
        "region",
        "type",
        "cloud_provider",
    ] {
        assert!(d[field].is_string(), "{field} in {body}");
    }
    assert_eq!(d["name"], "instance01");
    assert_eq!(d["tenant_id"], project.as_str());
    assert_eq!(d["type"], "enterprise-db");
    assert_eq!(d["cloud_provider"], "gcp");
    let instance = d["id"].as_str().unwrap().to_owned();
    let (url, password) = (
        d["connection_url"].as_str().unwrap().to_owned(),
        d["password"].as_str().unwrap().to_owned(),
    );

    // "check on progress" until running.
    let get = format!("{{B}}/v1/instances/{instance}");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let running = loop {
        let (status, _, body) = curl(
            &api,
            &[
                "--location",
                &get,
                "--header",
                "Accept: application/json",
                "--header",
                &bearer,
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if body["data"]["status"] == "running" {
            break body;
        }
        assert!(std::time::Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let d = &running["data"];
    assert_eq!(d["memory"], "256MB");
    assert!(d["storage"].is_string());
    assert!(d.get("password").is_none(), "shown only at create");
    let ca = ca_file(&api).await;
    assert_eq!(psql(&url, &ca, &password, "SELECT 1").await.unwrap(), "1");

    // Listed; invisible to another tenant, who cannot create in this tenant either.
    let (_, _, body) = curl(&api, &["{B}/v1/instances", "--header", &bearer]).await;
    assert!(body["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == instance.as_str()));
    let other = format!("Authorization: Bearer {stranger}");
    let (status, _, _) = curl(&api, &[&get, "--header", &other]).await;
    assert_eq!(status, 404);
    let (status, _, body) = curl(&api, &["{B}/v1/instances", "--header", &other]).await;
    assert_eq!(status, 200);
    assert!(!body.to_string().contains(&instance));
    let (status, _, body) = curl(&api, &["{B}/v1/tenants", "--header", &other]).await;
    assert_eq!(status, 200);
    assert!(!body.to_string().contains(&project));
    let (status, _, _) = curl(
        &api,
        &[
            "{B}/v1/instances",
            "--header",
            &other,
            "--header",
            "Content-Type: application/json",
            "--data",
            &data.replace("instance01", "intruder"),
        ],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _, _) = curl(&api, &["-X", "DELETE", &get, "--header", &other]).await;
    assert_eq!(status, 404);

    // Bad input: Berth's clear 400s.
    for bad in [
        data.replace("\"15\"", "\"5\""),
        data.replace("\"local\"", "\"europe-west1\""),
        data.replace("\"256MB\"", "\"3GB\""),
        data.replace(&project, "not-a-uuid"),
        r#"{"version": "15"}"#.to_owned(),
        "{".to_owned(),
    ] {
        let (status, _, body) = curl(
            &api,
            &[
                "{B}/v1/instances",
                "--header",
                &bearer,
                "--header",
                "Content-Type: application/json",
                "--data",
                &bad,
            ],
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    // (A malformed id names nothing: 404, as in Berth's own API.)
    let (status, _, _) = curl(&api, &["{B}/v1/instances/not-an-id", "--header", &bearer]).await;
    assert_eq!(status, 404);
    let (status, _, _) = curl(&api, &["{B}/v1/tenants"]).await;
    assert_eq!(status, 401);

    // Deleted through the dialect: 202, then gone.
    let (status, _, body) = curl(&api, &["-X", "DELETE", &get, "--header", &bearer]).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["data"]["status"], "destroying");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (status, _, body) = curl(&api, &[&get, "--header", &bearer]).await;
        if status == 404 || body["data"]["status"] == "deleted" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn ccx_seed_requests_work_verbatim() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (user, token, project) = create_member(&api, &admin, "ccx").await;
    let project = project.id.to_string();

    // "POST /api/auth/login": the cookie (HttpOnly, Secure) and the user in CCX's shape.
    let login = json!({"login": user.email, "password": user.password}).to_string();
    let (status, head, body) = curl(
        &api,
        &[
            "-X",
            "POST",
            "{B}/api/auth/login",
            "-H",
            "Content-Type: application/json",
            "--data",
            &login,
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cookie_line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(
        cookie_line.contains("HttpOnly") && cookie_line.contains("Secure"),
        "{cookie_line}"
    );
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(body["id"], user.id.as_str());
    assert_eq!(body["login"], user.username.as_str());
    assert!(body["firstName"].is_string() && body["lastName"].is_string());
    assert_eq!(body["termsAccepted"]["TermsAndConditionsV1"], true);
    assert!(body["createdAt"]["seconds"].as_i64().unwrap() > 1_700_000_000);
    assert!(body["createdAt"]["nanos"].is_u64());
    assert!(body["updatedAt"]["seconds"].is_i64());
    assert_eq!(body["additionalFields"]["email"], user.email.as_str());
    let (status, _, body) = curl(
        &api,
        &["{B}/api/auth/check", "-H", &format!("Cookie: {cookie}")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let wrong = json!({"login": user.email, "password": "not the password"}).to_string();
    let (status, _, _) = curl(
        &api,
        &[
            "{B}/api/auth/login",
            "-H",
            "Content-Type: application/json",
            "--data",
            &wrong,
        ],
    )
    .await;
    assert_eq!(status, 401);

    // "POST {{endpoint}}/api/auth/oauth2/token", form-encoded client credentials.
    let (id, secret) = api_client(&api, &token, &project, &["projects:read"]).await;
    let form = format!("client_id={id}&client_secret={secret}&grant_type=client_credentials");
    let (status, head, body) = curl(
        &api,
        &[
            "-X",
            "POST",
            "{B}/api/auth/oauth2/token",
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data",
            &form,
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(head
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let bearer = format!(
        "Authorization: Bearer {}",
        body["access_token"].as_str().unwrap()
    );
    // "GET /api/auth/check".
    let (status, _, body) = curl(&api, &["{B}/api/auth/check", "-H", &bearer]).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = curl(
        &api,
        &[
            "{B}/api/auth/oauth2/token",
            "-H",
            "Content-Type: application/x-www-form-urlencoded",
            "--data",
            &form.replace(&secret, "wrong"),
        ],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    let (status, _, _) = curl(&api, &["{B}/api/auth/check"]).await;
    assert_eq!(status, 401);
    // Trailing slashes either way.
    let (status, _, _) = curl(&api, &["{B}/api/auth/check/", "-H", &bearer]).await;
    assert_eq!(status, 200);

    // Swagger UI where CCX documents it.
    let (status, head, _) = curl(&api, &["{B}/api/swagger/index.html"]).await;
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/html"), "{head}");
}

#[tokio::test]
async fn a_dialect_switched_off_is_not_served() {
    let config = format!(
        "{}\n[compat]\naura = false\nngenea = false\n",
        base_config()
    );
    let dir = Dedicated::new_dir("compat-off", &config);
    let mut d = Dedicated::start(&dir, ADMIN_PASSWORD);
    let api = Api::new(&d.server);
    let token = admin_token(&api).await;
    send(api.get("/v1/tenants").bearer_auth(&token))
        .await
        .expect_error(404, "not_found");
    send(api.get("/api/auth/check").bearer_auth(&token))
        .await
        .expect(200);
    let doc = send(api.get("/api/openapi.json")).await;
    doc.expect(200);
    assert!(doc.json["paths"].get("/v1/tenants").is_none());
    assert!(doc.json["paths"].get("/api/jobs").is_none());
    send(api.get("/api/jobs/").bearer_auth(&token))
        .await
        .expect_error(404, "not_found");
    assert!(doc.json["paths"].get("/api/auth/check").is_some());
    d.terminate_cleanly("after the compat check").await;
    d.remove_dir();
}

/// The user code in a device authorization's `verification_uri_complete`.
fn user_code_of(url: &str) -> String {
    url.split_once("user_code=").unwrap().1.to_owned()
}

#[tokio::test]
async fn biganimal_seed_requests_and_get_token_work_verbatim() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (user, _, project) = create_member(&api, &admin, "ba").await;
    let (_, _, theirs) = create_member(&api, &admin, "ba-stranger").await;
    let cookie = session_of(&api, &user.username, &user.password).await;

    // "Query the authentication endpoint".
    let (status, _, provider) = curl(&api, &["{B}/api/v3/auth/provider"]).await;
    assert_eq!(status, 200, "{provider}");
    let client_id = provider["clientId"].as_str().unwrap().to_owned();
    let issuer = provider["issuerUri"].as_str().unwrap().to_owned();
    let audience = provider["audience"].as_str().unwrap().to_owned();
    assert!(provider["scope"].is_string());
    // The seed's own OpenID scopes, accepted and ignored.
    let scope = "openid profile email offline_access";

    // "Request the device code".
    let (status, _, device) = curl(
        &api,
        &[
            "--request",
            "POST",
            "--url",
            &format!("{issuer}/oauth/device/code"),
            "--header",
            "content-type: application/x-www-form-urlencoded",
            "--data",
            &format!("client_id={client_id}"),
            "--data",
            &format!("scope={scope}"),
            "--data",
            &format!("audience={audience}"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{device}");
    for field in [
        "device_code",
        "user_code",
        "verification_uri",
        "verification_uri_complete",
    ] {
        assert!(device[field].is_string(), "{field}: {device}");
    }
    assert!(device["expires_in"].is_u64() && device["interval"].is_u64());
    // "Authorize as a user".
    decide(&api, &cookie, device["user_code"].as_str().unwrap(), true)
        .await
        .expect(200);
    // "Request the raw token".
    let (status, _, raw) = curl(
        &api,
        &[
            "--request",
            "POST",
            "--url",
            &format!("{issuer}/oauth/token"),
            "--header",
            "content-type: application/x-www-form-urlencoded",
            "--data",
            "grant_type=urn:ietf:params:oauth:grant-type:device_code",
            "--data",
            &format!("device_code={}", device["device_code"].as_str().unwrap()),
            "--data",
            &format!("client_id={client_id}"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{raw}");
    assert_eq!(raw["token_type"], "Bearer");
    assert!(raw["refresh_token"].is_string() && raw["expires_in"].is_u64());
    let raw_token = raw["access_token"].as_str().unwrap();

    // "Exchange for the raw token for the BigAnimal token".
    let (status, head, body) = curl(
        &api,
        &[
            "-s",
            "--request",
            "POST",
            "--url",
            "{B}/api/v3/auth/token",
            "--header",
            "content-type: application/json",
            "--data",
            &format!("{{\"token\":\"{raw_token}\"}}"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(head
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));
    let token = body["token"].as_str().unwrap().to_owned();
    assert_ne!(token, raw_token);

    // "Call the API".
    let (status, _, body) = curl(
        &api,
        &[
            "--request",
            "GET",
            "--url",
            &format!("{audience}/v3/projects"),
            "--header",
            &format!("authorization: Bearer {token}"),
            "--header",
            "content-type: application/json",
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let projects = body["data"].as_array().unwrap();
    let mine = projects
        .iter()
        .find(|p| p["projectId"] == project.id.to_string().as_str())
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(mine["projectName"], project.name.as_str());
    assert_eq!(mine["userCount"], 1);
    assert_eq!(mine["clusterCount"], 0);
    assert!(mine["cloudProviders"][0]["cloudProviderId"].is_string());
    assert!(!body.to_string().contains(&theirs.id.to_string()), "{body}");

    // "Refresh your token": a new pair; the old refresh token is spent.
    let refresh = raw["refresh_token"].as_str().unwrap().to_owned();
    let refresh_args = |rt: &str| {
        vec![
            "--request".to_owned(),
            "POST".to_owned(),
            "--url".to_owned(),
            format!("{issuer}/oauth/token"),
            "--header".to_owned(),
            "content-type: application/x-www-form-urlencoded".to_owned(),
            "--data".to_owned(),
            "grant_type=refresh_token".to_owned(),
            "--data".to_owned(),
            format!("client_id={client_id}"),
            "--data".to_owned(),
            format!("refresh_token={rt}"),
        ]
    };
    let args = refresh_args(&refresh);
    let (status, _, renewed) =
        curl(&api, &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(status, 200, "{renewed}");
    assert!(renewed["access_token"].is_string());
    assert_ne!(renewed["refresh_token"], raw["refresh_token"]);

    // Bad input: a token that is not one gets 401, a body without one 400.
    for (body, want) in [
        (r#"{"token":"not-a-token"}"#, 401),
        (r#"{"token":""}"#, 400),
        (r#"{}"#, 400),
        (r#"{"token":"x","extra":1}"#, 400),
    ] {
        let (status, _, answer) = curl(
            &api,
            &[
                "{B}/api/v3/auth/token",
                "--header",
                "content-type: application/json",
                "--data",
                body,
            ],
        )
        .await;
        assert_eq!(status, want, "{body}: {answer}");
    }
    let (status, _, _) = curl(&api, &["{B}/api/v3/projects"]).await;
    assert_eq!(status, 401);

    // contrib/get-token.sh: the device flow, then a refresh, in both formats.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib/get-token.sh");
    let help = std::process::Command::new("bash")
        .args([script, "-h"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--refresh") && help.contains("json | plain"),
        "{help}"
    );
    let mut child = tokio::process::Command::new("bash")
        .args([script, "-o", "json"])
        .env("BERTH_URL", api.url(""))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        use tokio::io::AsyncBufReadExt;
        assert!(
            tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
                .await
                .unwrap()
                .unwrap()
                > 0,
            "get-token.sh printed no URL"
        );
        if line.contains("user_code=") {
            break line.trim().to_owned();
        }
    };
    decide(&api, &cookie, &user_code_of(&url), true)
        .await
        .expect(200);
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"y\n").await.unwrap();
    }
    let mut rest = String::new();
    {
        use tokio::io::AsyncReadExt;
        stdout.read_to_string(&mut rest).await.unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{rest}");
    let json_start = rest.find('{').unwrap_or_else(|| panic!("{rest}"));
    let tokens: Value = serde_json::from_str(&rest[json_start..]).unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let run_refresh = |rt: String| {
        let base = api.url("");
        async move {
            tokio::process::Command::new("bash")
                .args([script, "-o", "plain", "--refresh", &rt])
                .env("BERTH_URL", base)
                .output()
                .await
                .unwrap()
        }
    };
    let plain = run_refresh(refresh.clone()).await;
    assert!(plain.status.success(), "{plain:?}");
    let text = String::from_utf8_lossy(&plain.stdout);
    assert!(
        text.contains("####### Access Token ################")
            && text.contains("####### Refresh Token ###############")
            && text.contains("#####   Expires In Seconds ##########"),
        "{text}"
    );
    // A token that was never one is refused, with the reason on stderr. (The one just rotated
    // still works once within Berth's grace period, docs/auth.md §8.)
    let bad = run_refresh("not-a-refresh-token".into()).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("refreshing failed"));
}

#[tokio::test]
async fn bigid_seed_requests_work_verbatim() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (user, token, project) = create_member(&api, &admin, "bigid").await;
    let r = send(
        api.post_json(
            "/api/v1/data-sources",
            &json!({"name": "crm", "project_id": project.id, "host": "db.example.com",
                    "database": "crm", "username": "reader", "password": "secret-of-the-source"}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(201);

    // The Python sample: `requests.post(env+'api/v1/sessions', data=credentials)` (a form);
    // the JavaScript one: a JSON body.
    let form = format!("username={}&password={}", user.username, user.password);
    let json_body = json!({"username": user.username, "password": user.password}).to_string();
    let mut tokens = Vec::new();
    for (content_type, body) in [
        ("application/x-www-form-urlencoded", form.as_str()),
        ("application/json", json_body.as_str()),
    ] {
        let (status, head, body) = curl(
            &api,
            &[
                "-X",
                "POST",
                "{B}/api/v1/sessions",
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data",
                body,
            ],
        )
        .await;
        assert_eq!(status, 200, "{content_type}: {body}");
        assert!(head
            .to_ascii_lowercase()
            .contains("cache-control: no-store"));
        assert_eq!(body["success"], true);
        assert_eq!(body["message"], "Enjoy your token!");
        assert_eq!(body["username"], user.username.as_str());
        assert!(body["firstName"].is_string());
        assert!(body["permissions"]
            .as_array()
            .is_some_and(|p| !p.is_empty()));
        let auth_token = body["auth_token"].as_str().unwrap().to_owned();
        let claims = jwt_part(&auth_token, 1);
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            24 * 3600,
            "valid 24 h"
        );
        tokens.push(auth_token);
    }
    // "Add a new header named Authorization and paste the session token".
    for t in &tokens {
        let (status, _, body) = curl(
            &api,
            &[
                "{B}/api/v1/auth/check",
                "-H",
                &format!("Authorization: {t}"),
            ],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["user"]["username"], user.username.as_str(), "{body}");
    }
    // "GET /ds-connections is the endpoint to retrieve a list of data source connections",
    // as the samples send it: the session token as the bare Authorization header.
    let (status, _, body) = curl(
        &api,
        &[
            "-X",
            "GET",
            "{B}/api/v1/ds-connections",
            "-H",
            "Content-Type: application/json",
            "-H",
            &format!("Authorization: {}", tokens[1]),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["statusCode"], 200);
    let connections = body["data"]["ds_connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{body}");
    assert_eq!(connections[0]["name"], "crm");
    assert_eq!(connections[0]["rdb_url"], "db.example.com:5432");
    assert!(!body.to_string().contains("secret-of-the-source"));
    let (status, _, _) = curl(&api, &["{B}/api/v1/ds-connections"]).await;
    assert_eq!(status, 401, "no token");

    // Bad input and wrong credentials.
    for (content_type, body, want) in [
        ("application/json", r#"{"username": "x"}"#.to_owned(), 400),
        ("application/json", "{".to_owned(), 400),
        (
            "application/x-www-form-urlencoded",
            "username=x".to_owned(),
            400,
        ),
        (
            "application/x-www-form-urlencoded",
            format!("{form}&extra=1"),
            400,
        ),
        ("text/plain", form.clone(), 415),
        (
            "application/json",
            json!({"username": user.username, "password": "wrong"}).to_string(),
            401,
        ),
    ] {
        let (status, _, answer) = curl(
            &api,
            &[
                "{B}/api/v1/sessions",
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data",
                &body,
            ],
        )
        .await;
        assert_eq!(status, want, "{content_type} {body}: {answer}");
    }

    // A user token (made by its user) traded for a system token at /refresh-access-token.
    let r = send(
        api.post_json(
            &format!("/api/v1/users/{}/tokens", user.id),
            &json!({"name": "bigid", "expires_at": in_days(30)}),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(201);
    let user_token = r.json["token"].as_str().unwrap().to_owned();
    let (status, _, body) = curl(
        &api,
        &[
            "{B}/api/v1/refresh-access-token",
            "-H",
            &format!("Authorization: {user_token}"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], true);
    let system = body["systemToken"].as_str().unwrap();
    let (status, _, _) = curl(
        &api,
        &[
            "{B}/api/v1/auth/check",
            "-H",
            &format!("Authorization: {system}"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    // An access token, garbage or nothing is not a user token.
    for header in [
        format!("Authorization: {}", tokens[0]),
        "Authorization: berth_ut_nothing".to_owned(),
        "X-Nothing: 1".to_owned(),
    ] {
        let (status, _, _) = curl(&api, &["{B}/api/v1/refresh-access-token", "-H", &header]).await;
        assert_eq!(status, 401, "{header}");
    }
}

#[tokio::test]
async fn ngenea_hub_seed_requests_work_verbatim() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (user, token, project) = create_member(&api, &admin, "ngenea").await;
    let json_headers = [
        "-H",
        "Accept: application/json",
        "-H",
        "Content-Type: application/json",
    ];
    let call =
        |method: &'static str, path: &'static str, auth: Option<String>, body: Option<String>| {
            let api = api.clone();
            async move {
                let mut args: Vec<String> =
                    vec!["-X".into(), method.into(), format!("{{B}}{path}")];
                args.extend(json_headers.iter().map(|s| s.to_string()));
                if let Some(a) = auth {
                    args.extend(["-H".into(), a]);
                }
                if let Some(b) = body {
                    args.extend(["-d".into(), b]);
                }
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                curl(&api, &refs).await
            }
        };

    // "POST /api/auth/token/" {"username", "password"} → {"access", "refresh"}.
    let creds = json!({"username": user.username, "password": user.password}).to_string();
    let (status, head, body) = call("POST", "/api/auth/token/", None, Some(creds.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert!(head
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));
    let access = body["access"].as_str().expect("access").to_owned();
    let refresh = body["refresh"].as_str().expect("refresh").to_owned();
    let wrong = json!({"username": user.username, "password": "******"}).to_string();
    let (status, _, body) = call("POST", "/api/auth/token/", None, Some(wrong)).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["request_id"].is_string(), "Berth's error body: {body}");

    // "GET /api/jobs/" with the access token: Ngenea's envelope and stats.
    let bearer = format!("Authorization: Bearer {access}");
    let (status, _, body) = call("GET", "/api/jobs/", Some(bearer.clone()), None).await;
    assert_eq!(status, 200, "{body}");
    for key in ["count", "next", "previous", "results"] {
        assert!(body.get(key).is_some(), "{key}: {body}");
    }
    for key in ["type", "state", "created", "site"] {
        assert!(body["stats"][key].is_object(), "stats.{key}: {body}");
    }
    for state in ["SUCCESS", "FAILURE", "STARTED", "PENDING", "ERROR"] {
        assert!(body["stats"]["state"][state].is_i64(), "{state}: {body}");
    }

    // "POST /api/auth/token/refresh/" {"refresh"} → a new access token (and the rotated
    // refresh token: the one presented is spent).
    let again = json!({"refresh": refresh}).to_string();
    let (status, _, body) = call(
        "POST",
        "/api/auth/token/refresh/",
        None,
        Some(again.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access"].is_string(), "{body}");
    let rotated = body["refresh"].as_str().expect("rotated refresh");
    assert_ne!(rotated, refresh);

    // "POST /api/auth/clientkeys/" with a fresh JWT → {"url", "id", "name", "api_key"}, once.
    let (_, _, body) = call("POST", "/api/auth/token/", None, Some(creds)).await;
    let jwt = format!("Authorization: Bearer {}", body["access"].as_str().unwrap());
    let key_body = json!({"name": "my_automation_key"}).to_string();
    let (status, head, body) = call(
        "POST",
        "/api/auth/clientkeys/",
        Some(jwt),
        Some(key_body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(head
        .to_ascii_lowercase()
        .contains("cache-control: no-store"));
    assert_eq!(body["name"], "my_automation_key");
    assert!(body["id"].is_string() && body["url"].as_str().unwrap().contains("/api/"));
    let api_key = format!(
        "Authorization: Api-Key {}",
        body["api_key"].as_str().unwrap()
    );
    let (status, _, _) = call("POST", "/api/auth/clientkeys/", None, Some(key_body)).await;
    assert_eq!(status, 401);

    // "GET /api/jobs/" with the client key, and without a trailing slash.
    let (status, _, body) = call("GET", "/api/jobs/", Some(api_key.clone()), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = call("GET", "/api/jobs", Some(api_key.clone()), None).await;
    assert_eq!(status, 200);

    // "POST /api/file/workflow/" with the client key: Berth's paths, site and workflow.
    let name = unique("ngenea").replace('.', "-");
    let r = send(
        api.post_json(
            "/api/v1/instances",
            &crate::instances::create_body(&project.id.to_string(), &name),
        )
        .bearer_auth(&token),
    )
    .await;
    r.expect(202);
    let instance = r.json["id"].as_str().unwrap().to_owned();
    crate::backups::wait_status(&api, &token, &instance, "running", Duration::from_secs(120)).await;
    let path = format!("/projects/{}/instances/{name}", project.name);
    let submit =
        json!({"paths": [path], "site": "local", "workflow": "restart", "discovery": null});
    let (status, _, body) = call(
        "POST",
        "/api/file/workflow/",
        Some(api_key.clone()),
        Some(submit.to_string()),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["workflow"], "restart");
    assert_eq!(body["jobs"].as_array().map(Vec::len), Some(1), "{body}");
    let job = body["jobs"][0].as_str().unwrap().to_owned();
    let workflow = body["id"].as_str().unwrap().to_owned();
    let done = crate::backups::wait_job(&api, &token, &job).await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    // The job shows in Ngenea's list with its workflow.
    let (_, _, body) = call("GET", "/api/jobs/", Some(api_key.clone()), None).await;
    let listed = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["id"] == job.as_str())
        .unwrap_or_else(|| panic!("job {job} not listed: {body}"))
        .clone();
    assert_eq!(listed["workflow"], workflow.as_str());
    assert_eq!(listed["type"], "restart");
    assert_eq!(listed["site"], "local");
    assert!(body["stats"]["type"]["restart"].as_i64().unwrap() >= 1);

    // The seed's own body (a file path, a site and workflow Berth does not have): clear 400s.
    for bad in [
        json!({"paths": ["/mmfs1/data/sample_data.tgz"], "site": "local", "workflow": "restart", "discovery": null}),
        json!({"paths": [path], "site": "dfoster1", "workflow": "restart", "discovery": null}),
        json!({"paths": [path], "site": "local", "workflow": "migrate", "discovery": null}),
    ] {
        let (status, _, body) = call(
            "POST",
            "/api/file/workflow/",
            Some(api_key.clone()),
            Some(bad.to_string()),
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"], "invalid_request", "{body}");
    }
}
