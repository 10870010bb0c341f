//! `berth login`, `token`, `whoami` and `logout` against the `fast` server: the device flow
//! approved through the activation page's forms, credentials stored 0600, concurrent `berth
//! token` after expiry never racing the refresh rotation into reuse detection, server-side
//! revocation at logout, client-credentials logins, and clear messages when the server no longer
//! accepts what is stored. Then `berth instances` and `berth jobs` against the `shared` server,
//! with real instances.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// `berth` as the CLI, with its credentials in `config_dir` and nothing from the environment.
pub fn berth(config_dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.env("BERTH_CONFIG_DIR", config_dir)
        .env("HOME", config_dir)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("BERTH_SERVER")
        .env_remove("BERTH_CLIENT_ID")
        .env_remove("BERTH_CLIENT_SECRET")
        .env_remove("BERTH_CA_CERT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `berth args…`: exit status, stdout, stderr.
pub async fn berth_run(config_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::from(berth(config_dir));
    cmd.args(args).kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("berth {args:?} did not finish"))
        .expect("running berth");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `berth args…`, which must succeed; its stdout.
pub async fn berth_ok(config_dir: &Path, args: &[&str]) -> String {
    let (ok, out, err) = berth_run(config_dir, args).await;
    assert!(ok, "berth {args:?} failed:\n{out}\n{err}");
    out
}

/// `berth login --no-browser` running in the background, its output read as it comes.
pub struct Login {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Login {
    pub fn start(server: &Server, config_dir: &Path) -> Login {
        let mut child = berth(config_dir)
            .args(["login", "--server", &server.base, "--no-browser"])
            .spawn()
            .expect("berth login");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Login {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first output line containing `needle` (waiting for it).
    pub fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => panic!(
                    "berth login never printed {needle:?}; it said {:?}",
                    self.seen
                ),
            }
        }
    }

    /// The page it asks to open, and the user code in it.
    pub fn url_and_code(&mut self) -> (String, String) {
        let url = self.line_with("/activate?user_code=").trim().to_owned();
        let code = url.rsplit_once('=').unwrap().1.to_owned();
        (url, code)
    }

    /// Waits (off the async runtime) for the command to end: success, and all it printed.
    pub async fn finish(self) -> (bool, String) {
        tokio::task::spawn_blocking(move || self.finish_blocking())
            .await
            .unwrap()
    }

    fn finish_blocking(mut self) -> (bool, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("berth login did not finish; it said {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.seen.push(l);
        }
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut stderr);
        }
        (
            status.success(),
            format!("{}\n{stderr}", self.seen.join("\n")),
        )
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn credentials_path(dir: &Path) -> PathBuf {
    dir.join("credentials.json")
}

fn read_credentials(dir: &Path) -> Value {
    let text = std::fs::read_to_string(credentials_path(dir)).expect("credentials.json");
    serde_json::from_str(&text).expect("credentials.json is JSON")
}

/// Makes the stored access token look expired, so the next command must renew it.
fn expire_stored_token(dir: &Path) {
    let mut c = read_credentials(dir);
    c["expires_at"] = "2001-01-01T00:00:00Z".into();
    std::fs::write(
        credentials_path(dir),
        serde_json::to_vec_pretty(&c).unwrap(),
    )
    .unwrap();
}

/// `berth login` by device flow, approved by `user` through the activation page's forms.
pub(crate) async fn login_by_device(
    api: &Api,
    server: &Server,
    dir: &Path,
    user: &TestUser,
) -> String {
    let mut login = Login::start(server, dir);
    let (url, code) = login.url_and_code();
    assert!(
        url.starts_with(&format!("{}/activate?user_code=", server.base)),
        "{url}"
    );
    assert!(login.line_with(&code).trim() == code || url.ends_with(&code));
    let cookie = session_of(api, &user.username, &user.password).await;
    decide(api, &cookie, &code, true).await.expect(200);
    let (ok, output) = login.finish().await;
    assert!(ok, "berth login failed:\n{output}");
    output
}

#[tokio::test]
async fn berth_login_token_whoami_concurrent_refresh_and_logout() {
    let s = fast();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (u, u_token, _) = create_member(&api, &admin, "cli").await;
    let rs = new_client(&api, &u_token, None).await;
    // A directory the CLI creates itself (0700).
    let dir = temp_dir("cli-device").join("berth");

    let (ok, _, err) = berth_run(&dir, &["token"]).await;
    assert!(!ok && err.contains("not logged in"), "{err}");

    let output = login_by_device(&api, s, &dir, &u).await;
    assert!(
        output.contains(&format!(
            "Logged in to {} as {} <{}>",
            s.base, u.username, u.email
        )),
        "{output}"
    );
    // Stored for this user only.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&credentials_path(&dir)), 0o600);
    assert_eq!(
        mode(&dir) & 0o077,
        0,
        "the config directory is open to others"
    );
    let stored = read_credentials(&dir);
    assert_eq!(stored["client_id"], CLI_CLIENT);
    assert_eq!(stored["server"], s.base.as_str());
    let first_rt = str_of(&stored, "refresh_token").to_owned();
    assert!(stored.get("client_secret").is_none(), "{stored}");

    // `curl -H "Authorization: Bearer $(berth token)"`
    let token = berth_ok(&dir, &["token"]).await.trim().to_owned();
    assert_eq!(token, str_of(&stored, "access_token"));
    let who = check(&api, &token).await;
    who.expect(200);
    assert_eq!(who.json["user"]["id"], u.id.as_str());
    let whoami = berth_ok(&dir, &["whoami"]).await;
    assert!(whoami.contains(&u.username), "{whoami}");
    assert!(whoami.contains(&s.base), "{whoami}");
    assert!(whoami.contains(CLI_CLIENT), "{whoami}");
    let json: Value = serde_json::from_str(&berth_ok(&dir, &["whoami", "-o", "json"]).await)
        .expect("whoami -o json");
    assert_eq!(json["user"]["username"], u.username.as_str());

    // Expired: eight concurrent `berth token` refresh once, between them, and all print the
    // same working token. Had two of them rotated the same refresh token, the server would
    // have revoked the family.
    expire_stored_token(&dir);
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let dir = dir.clone();
            tokio::spawn(async move { berth_run(&dir, &["token"]).await })
        })
        .collect();
    let mut results = Vec::new();
    for run in runs {
        results.push(run.await.unwrap());
    }
    let mut printed = Vec::new();
    for (ok, out, err) in &results {
        assert!(ok, "a concurrent berth token failed: {out} {err}");
        printed.push(out.trim().to_owned());
    }
    assert!(printed.iter().all(|t| *t == printed[0]), "{printed:#?}");
    let fresh = printed[0].clone();
    assert_ne!(fresh, token);
    let after = read_credentials(&dir);
    let second_rt = str_of(&after, "refresh_token").to_owned();
    assert_ne!(second_rt, first_rt, "the refresh token was not rotated");
    check(&api, &fresh).await.expect(200);
    // The family is intact: the earlier access token still works, the new refresh token is live.
    check(&api, &token).await.expect(200);
    assert_eq!(introspect(&api, &rs, &second_rt).await.json["active"], true);
    expire_stored_token(&dir);
    let again = berth_ok(&dir, &["token"]).await.trim().to_owned();
    check(&api, &again).await.expect(200);

    // Logout revokes at the server and forgets locally.
    let stored = read_credentials(&dir);
    let out = berth_ok(&dir, &["logout"]).await;
    assert!(out.contains(&format!("Logged out of {}", s.base)), "{out}");
    assert!(!credentials_path(&dir).exists());
    check(&api, &again).await.expect_error(401, "invalid_token");
    assert_inactive(
        &introspect(&api, &rs, str_of(&stored, "refresh_token")).await,
        "refresh token after logout",
    );
    let (ok, _, err) = berth_run(&dir, &["token"]).await;
    assert!(!ok && err.contains("not logged in"), "{err}");
    let out = berth_ok(&dir, &["logout"]).await;
    assert!(out.contains("Not logged in"), "{out}");

    // Revoked elsewhere: a clear message, not a stack of HTTP errors.
    login_by_device(&api, s, &dir, &u).await;
    let stored = read_credentials(&dir);
    send(api.post("/oauth/revoke").form(&[
        ("token", str_of(&stored, "refresh_token")),
        ("client_id", CLI_CLIENT),
    ]))
    .await
    .expect(200);
    expire_stored_token(&dir);
    let (ok, _, err) = berth_run(&dir, &["token"]).await;
    assert!(!ok, "berth token succeeded with a revoked session");
    assert!(
        err.contains("session has ended") && err.contains("berth login"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[tokio::test]
async fn berth_login_with_client_credentials() {
    let s = fast();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (u, u_token, _) = create_member(&api, &admin, "cli-cc").await;
    let client = new_client(&api, &u_token, Some(&["projects:read", "projects:create"])).await;
    let dir = temp_dir("cli-cc").join("berth");
    let login = |secret: String| {
        let dir = dir.clone();
        let id = client.client_id.clone();
        let base = s.base.clone();
        async move {
            berth_run(
                &dir,
                &[
                    "login",
                    "--server",
                    &base,
                    "--client-id",
                    &id,
                    "--client-secret",
                    &secret,
                ],
            )
            .await
        }
    };

    let (ok, out, err) = login(format!("{}x", client.secret)).await;
    assert!(!ok, "{out}");
    assert!(err.contains("does not accept client"), "{err}");
    assert!(!credentials_path(&dir).exists());

    let (ok, out, err) = login(client.secret.clone()).await;
    assert!(ok, "{out}\n{err}");
    assert!(
        out.contains(&format!("Logged in to {} as {}", s.base, u.username)),
        "{out}"
    );
    assert_eq!(
        std::fs::metadata(credentials_path(&dir))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let stored = read_credentials(&dir);
    assert_eq!(stored["client_id"], client.client_id.as_str());
    assert!(stored.get("refresh_token").is_none(), "{stored}");

    let token = berth_ok(&dir, &["token"]).await.trim().to_owned();
    let who = check(&api, &token).await;
    who.expect(200);
    assert_eq!(who.json["auth_method"], "client_credentials");
    assert_eq!(who.json["client_id"], client.client_id.as_str());
    let whoami = berth_ok(&dir, &["whoami"]).await;
    assert!(whoami.contains(&client.client_id), "{whoami}");
    // Expired: a new client-credentials token.
    expire_stored_token(&dir);
    let renewed = berth_ok(&dir, &["token"]).await.trim().to_owned();
    assert_ne!(renewed, token);
    check(&api, &renewed).await.expect(200);
    // Logout revokes that token.
    berth_ok(&dir, &["logout"]).await;
    check(&api, &renewed)
        .await
        .expect_error(401, "invalid_token");

    // A client deleted at the server: a message that says so.
    let (ok, out, err) = login(client.secret.clone()).await;
    assert!(ok, "{out}\n{err}");
    send(
        api.delete(&format!("/api/v1/auth/clients/{}", client.client_id))
            .bearer_auth(&u_token),
    )
    .await
    .expect(204);
    expire_stored_token(&dir);
    let (ok, _, err) = berth_run(&dir, &["token"]).await;
    assert!(!ok);
    assert!(err.contains("no longer accepts client"), "{err}");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

/// `berth instances …` and `berth jobs …` on a real instance: every command the CLI has for them,
/// in text and as JSON, through create, update, pause, resume, resize and delete.
#[tokio::test]
async fn berth_instances_and_jobs_commands() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let (u, _, project) = create_member(&api, &admin, "cli-inst").await;
    let project_name = project.name.clone();
    let dir = temp_dir("cli-inst").join("berth");
    login_by_device(&api, s, &dir, &u).await;
    let run = |args: &'static [&'static str]| berth_ok(&dir, args);
    let json_of = |text: String| -> Value {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };

    let regions = run(&["instances", "regions"]).await;
    assert!(
        regions.starts_with("REGION") && regions.contains("local"),
        "{regions}"
    );
    let regions = json_of(run(&["instances", "regions", "-o", "json"]).await);
    let sizes: Vec<String> = regions[0]["memory_sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_owned())
        .collect();

    // Created in the user's only project, with the region's defaults.
    let name = unique("clidb");
    let created = json_of(
        berth_ok(
            &dir,
            &["instances", "create", &name, "--wait", "-o", "json"],
        )
        .await,
    );
    assert_eq!(created["status"], "running", "{created}");
    assert!(!str_of(&created, "password").is_empty(), "{created}");
    assert_eq!(created["project_id"], project.id.to_string().as_str());
    assert_eq!(created["memory"], sizes[0].as_str());
    let id = str_of(&created, "id").to_owned();
    let create_job = str_of(&created, "job_id").to_owned();

    let list = berth_ok(&dir, &["instances", "list", "-p", &project_name]).await;
    let row = list
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(row.contains(" running ") && row.contains(&id), "{list}");
    let list = json_of(berth_ok(&dir, &["instances", "list", "-o", "json"]).await);
    assert!(
        list["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id.as_str()),
        "{list}"
    );

    let shown = berth_ok(&dir, &["instances", "get", &name]).await;
    assert!(shown.contains("Status:               running"), "{shown}");
    assert!(
        shown.contains(&format!("Project:              {project_name} (")),
        "{shown}"
    );
    let by_id = json_of(berth_ok(&dir, &["instances", "get", &id, "-o", "json"]).await);
    assert_eq!(by_id["name"], name.as_str());
    assert!(by_id.get("host").is_some(), "the whole document: {by_id}");

    // Deletion protection, and the refusal it causes.
    let updated = berth_ok(
        &dir,
        &["instances", "update", &name, "--deletion-protection", "on"],
    )
    .await;
    assert!(updated.contains(&format!("Updated {name}.")), "{updated}");
    assert!(updated.contains("Deletion protection:  on"), "{updated}");
    let (ok, _, err) = berth_run(&dir, &["instances", "delete", &name, "--yes"]).await;
    assert!(!ok && err.contains("has deletion protection on"), "{err}");
    berth_ok(
        &dir,
        &[
            "instances",
            "update",
            &name,
            "--deletion-protection",
            "off",
            "-o",
            "json",
        ],
    )
    .await;

    // Storage only grows (no job: the local engine records it).
    let grown = json_of(
        berth_ok(
            &dir,
            &[
                "instances",
                "update",
                &name,
                "--storage",
                "20GB",
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(grown["storage"], "20GB", "{grown}");
    let (ok, _, err) = berth_run(&dir, &["instances", "update", &name, "--storage", "10GB"]).await;
    assert!(!ok && err.contains("storage only grows"), "{err}");

    let paused = berth_ok(&dir, &["instances", "pause", &name, "--wait"]).await;
    assert!(
        paused.contains(&format!("Pausing {name} (job ")),
        "{paused}"
    );
    assert!(paused.contains(&format!("{name} is paused (")), "{paused}");
    let (ok, _, err) = berth_run(
        &dir,
        &["instances", "connect", &name, "--psql", "/bin/true"],
    )
    .await;
    assert!(!ok && err.contains("is paused; resume it first"), "{err}");
    let resumed = json_of(
        berth_ok(
            &dir,
            &["instances", "resume", &name, "--wait", "-o", "json"],
        )
        .await,
    );
    assert_eq!(resumed["instance"]["status"], "running", "{resumed}");
    assert!(resumed["job_id"].is_string(), "{resumed}");

    // A resize runs as a job; the wait follows the job, then shows the instance.
    if let Some(bigger) = sizes.get(1) {
        let resized = berth_ok(
            &dir,
            &["instances", "update", &name, "--memory", bigger, "--wait"],
        )
        .await;
        assert!(
            resized.contains(&format!("Resizing {name} (job ")),
            "{resized}"
        );
        assert!(
            resized.contains(&format!("{name} is running (")),
            "{resized}"
        );
    }

    let jobs = berth_ok(&dir, &["jobs", "list", "--instance", &name]).await;
    assert!(jobs.starts_with("ID "), "{jobs}");
    assert!(jobs.contains(&create_job), "{jobs}");
    assert!(
        jobs.contains(" pause ") && jobs.contains(" SUCCESS "),
        "{jobs}"
    );
    assert!(
        jobs.contains("Showing ") && jobs.contains("By type: "),
        "{jobs}"
    );
    let listed = json_of(
        berth_ok(
            &dir,
            &[
                "jobs",
                "list",
                "--instance",
                &id,
                "--type",
                "pause",
                "-o",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(listed["count"], 1, "{listed}");
    assert_eq!(listed["results"][0]["type"], "pause");
    assert!(listed["stats"].is_object(), "{listed}");
    let job = berth_ok(&dir, &["jobs", "get", &create_job]).await;
    assert!(job.contains(&format!("Instance:  {name} ({id})")), "{job}");
    assert!(job.contains("State:     SUCCESS"), "{job}");

    let deleted = berth_ok(&dir, &["instances", "delete", &name, "--yes", "--wait"]).await;
    assert!(
        deleted.contains(&format!("{name} is deleted (")),
        "{deleted}"
    );
    let job = berth_ok(&dir, &["jobs", "get", &create_job]).await;
    assert!(job.contains(&format!("Instance:  {id} (deleted)")), "{job}");
    let (ok, _, err) = berth_run(&dir, &["instances", "get", &name]).await;
    assert!(
        !ok && err.contains(&format!("no instance {name:?}")),
        "{err}"
    );
    let none = berth_ok(
        &dir,
        &["jobs", "list", "--instance", &id, "--state", "failure"],
    )
    .await;
    assert_eq!(none.trim(), "No jobs.");
}
