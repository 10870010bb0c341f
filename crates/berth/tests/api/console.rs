//! The web console (issue 12) in headless Chromium: sign in, create a project, create an
//! instance and watch it reach `running` without reloading, connect with the password it shows
//! once, pause, resume and resize it, a job's page, a viewer who sees no write action and whose
//! forged posts are refused, a delete refused under deletion protection, a disabled user who
//! cannot sign in, sign out; the security headers; a screenshot of each main page under
//! `target/screenshots/`.

use std::time::{Duration, Instant};

use serde_json::json;

use super::device::Browser;
use super::instances::{ca_file, psql};
use crate::common::*;

const WAIT: Duration = Duration::from_secs(120);

/// Waits until the element's `data-status` is `want`, the page never reloaded by the test.
async fn wait_status(b: &Browser, css: &str, want: &str) {
    wait_attr(b, css, "data-status", want).await;
}

/// Waits until the element's attribute `name` is `want`.
async fn wait_attr(b: &Browser, css: &str, name: &str, want: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if b.attr(css, name).await.as_deref() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never had {name} {want}:\n{}",
            b.source().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Where scripts/prereqs.sh --test puts axe-core (`BERTH_AXE`, as scripts/test.sh passes it).
fn axe_script() -> String {
    let path = std::env::var_os("BERTH_AXE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache")
                });
            cache.join("berth/axe-core-4.10.2.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core at {} ({e}): run scripts/prereqs.sh --test",
            path.display()
        )
    })
}

/// A screenshot of the page (kept under `target/screenshots/`), and an accessibility check of
/// it with axe-core: no WCAG 2 A or AA violation (labels, names, contrast, landmarks, ARIA).
async fn shot(b: &Browser, name: &str) {
    b.screenshot(name).await;
    let script = format!(
        "{}\nconst done = arguments[arguments.length - 1];
         axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}}})
           .then(r => done({{passes: r.passes.length, violations: r.violations.map(v => `${{v.impact}} ${{v.id}}: ${{v.help}} at ${{v.nodes.map(n => n.target.join(' ')).join(', ')}}`)}}),
                 e => done({{passes: 0, violations: ['axe failed: ' + e]}}));",
        axe_script()
    );
    let found = b
        .cmd(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": []})),
        )
        .await;
    // (It ran: rules passed. None would mean the script never reached axe.)
    assert!(
        found["passes"].as_u64() > Some(0),
        "{name}: axe did not run: {found}"
    );
    let violations: Vec<String> = serde_json::from_value(found["violations"].clone()).unwrap();
    assert!(
        violations.is_empty(),
        "{name}: accessibility violations:\n{}",
        violations.join("\n")
    );
}

#[tokio::test]
async fn console_in_headless_chromium_creates_operates_and_guards_an_instance() {
    let s = shared();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let owner = create_user(&api, &admin, "console").await;
    let base = api.url("").trim_end_matches('/').to_owned();
    let b = Browser::start().await;
    b.resize(1280, 900).await;

    // Not signed in: the sign-in page, with the console's headers.
    let r = send(api.get("/console/instances")).await;
    assert!(matches!(r.status, 303 | 307 | 302), "{}", r.status);
    let r = send(api.get("/console/login")).await;
    r.expect(200);
    let csp = r
        .header("content-security-policy")
        .unwrap_or_default()
        .to_owned();
    for part in [
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let asset = send(api.get("/console/assets/htmx-2.0.4.min.js")).await;
    asset.expect(200);
    assert!(asset.text.contains("htmx"), "htmx is embedded");

    b.goto(&format!("{base}/console")).await;
    b.find("#sign-in").await;
    shot(&b, "console-sign-in").await;
    // A wrong password: the message next to the form, no session.
    b.type_into("#login", &owner.username).await;
    b.type_into("#password", "not the password").await;
    b.click("#sign-in").await;
    assert!(b
        .text("#form-error")
        .await
        .contains("Invalid username or password"));
    // The form kept the login; the right password signs in.
    b.type_into("#password", &owner.password).await;
    b.click("#sign-in").await;
    assert_eq!(b.text("#whoami").await, owner.username);

    // A project.
    let project_name = unique("console-project");
    b.goto(&format!("{base}/console/projects")).await;
    b.type_into("#project-name", &project_name).await;
    b.click("#create-project").await;
    b.find(&format!("tr[data-project='{project_name}']")).await;
    shot(&b, "console-projects").await;

    // An instance: the password and URL are shown once, then it reaches running on its own.
    b.goto(&format!("{base}/console/instances")).await;
    b.click("#create-instance").await;
    b.type_into("#name", "webdb").await;
    shot(&b, "console-create-instance").await;
    b.click("#create").await;
    let password = b.text("#password-value").await;
    assert!(password.len() >= 32, "{password}");
    let url = b.text("#url-value").await;
    assert!(url.contains("sslmode=verify-full"), "{url}");
    shot(&b, "console-instance-created").await;
    b.click("#open-instance").await;
    wait_status(&b, "#status", "running").await;
    shot(&b, "console-instance").await;
    let ca_dir = temp_dir("console-ca");
    let ca = ca_file(&api, &ca_dir).await;
    assert_eq!(psql(&url, &ca, &password, "SELECT 1").await.unwrap(), "1");

    // Pause and resume from the page; the status follows without a reload.
    b.click("#action-pause").await;
    wait_status(&b, "#status", "paused").await;
    b.click("#action-resume").await;
    wait_status(&b, "#status", "running").await;
    let instance_url = b.url().await;
    let instance_id = instance_url.rsplit('/').next().unwrap().to_owned();

    // Resize: more memory (a resize job, the instance restarts) and more storage; the page
    // follows it back to running with the new sizes, and so does the API.
    let before = send(
        api.get(&format!("/api/v1/instances/{instance_id}"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(before.json["memory"], "256MB", "{}", before.json);
    assert_eq!(before.json["storage"], "10GB", "{}", before.json);
    b.click("#resize-memory option[value='512MB']").await;
    b.click("#resize-storage option[value='20GB']").await;
    shot(&b, "console-resize").await;
    b.click("#resize").await;
    // The sizes show from the moment of the request, the status once the restart is done;
    // meanwhile the current job links to its page (when the page catches it running).
    wait_attr(&b, "#memory", "data-size", "512MB").await;
    let mut current_job = None;
    let deadline = Instant::now() + WAIT;
    while b.attr("#status", "data-status").await.as_deref() != Some("running") {
        if current_job.is_none() {
            current_job = b.attr("#current-job", "href").await;
        }
        assert!(Instant::now() < deadline, "never running after the resize");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        b.attr("#storage", "data-size").await.as_deref(),
        Some("20GB")
    );
    let after = send(
        api.get(&format!("/api/v1/instances/{instance_id}"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(after.json["memory"], "512MB", "{}", after.json);
    assert_eq!(after.json["storage"], "20GB", "{}", after.json);
    assert_eq!(psql(&url, &ca, &password, "SELECT 1").await.unwrap(), "1");
    // Storage only grows: the form offers no smaller size, and one posted anyway is refused
    // with the reason next to the storage field (the memory field says nothing).
    assert!(b
        .try_find("#resize-storage option[value='10GB']")
        .await
        .is_none());
    let owner_session = b
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "berth_session")
        .and_then(|c| c["value"].as_str().map(str::to_owned))
        .expect("a session cookie");
    let form_token = |source: &str| {
        source
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned()
    };
    let owner_csrf = form_token(&b.source().await);
    let shrink = send(
        api.post(&format!("/console/instances/{instance_id}/resize"))
            .session(&owner_session)
            .origin(&base)
            .form(&[
                ("csrf", owner_csrf.as_str()),
                ("memory", "512MB"),
                ("storage", "10GB"),
            ]),
    )
    .await;
    assert_eq!(shrink.status, 400, "{}", shrink.text);
    let field_error = shrink
        .text
        .split("id=\"storage-error\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no storage error:\n{}", shrink.text));
    assert!(
        field_error.starts_with("storage only grows"),
        "{field_error}"
    );
    assert!(
        !shrink.text.contains("id=\"memory-error\""),
        "{}",
        shrink.text
    );

    // Deletion protection on: the page says so (it blocks the delete further down).
    b.click("#protection-on").await;
    b.find("#protection-off").await;
    assert_eq!(b.text("#deletion-protection").await, "on");

    // The list shows it running.
    b.goto(&format!("{base}/console/instances")).await;
    wait_status(&b, "tr[data-instance='webdb'] .status", "running").await;
    shot(&b, "console-instances").await;

    // At a phone's width the pages still work.
    b.resize(390, 844).await;
    b.goto(&instance_url).await;
    b.find("#status").await;
    shot(&b, "console-instance-phone").await;
    b.resize(1280, 900).await;

    // The instance's tabs: a firewall rule, a database user (its password shown once and
    // working), a backup, and the monitoring charts and log.
    b.click("nav.tabs a[href$='/firewall']").await;
    b.type_into("#cidr", "10.1.2.0/24").await;
    b.type_into("#cidr-description", "office").await;
    b.click("#add-rule").await;
    b.find("tr[data-cidr='10.1.2.0/24']").await;
    shot(&b, "console-firewall").await;
    b.click("nav.tabs a[href$='/users']").await;
    b.type_into("#db-user-name", "reporter").await;
    b.click("#create-db-user").await;
    let reporter_password = b.text("#secret-value").await;
    b.find("tr[data-user='reporter']").await;
    shot(&b, "console-db-users").await;
    let reporter_url = url.replacen("app@", "reporter@", 1);
    let deadline = Instant::now() + WAIT;
    loop {
        match psql(
            &reporter_url,
            &ca,
            &reporter_password,
            "SELECT current_user",
        )
        .await
        {
            Ok(who) => {
                assert_eq!(who, "reporter");
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "reporter never connected: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    b.click("nav.tabs a[href$='/databases']").await;
    b.type_into("#database-name", "reports").await;
    b.type_into("#database-owner", "reporter").await;
    b.click("#create-database").await;
    b.find("tr[data-database='reports']").await;
    assert!(
        b.try_find("tr[data-database='app'] button").await.is_none(),
        "the instance's own database cannot be removed"
    );
    b.click("nav.tabs a[href$='/backups']").await;
    b.find("#backups").await;
    b.click("#take-backup").await;
    // (The answer's message, once the new page is there.)
    b.find("#notice, #form-error").await;
    let taken = b.text("#main").await;
    assert!(
        taken.contains("The backup has started") || taken.contains("busy"),
        "{taken}"
    );
    // Restore the latest state into a new instance (once a backup has completed the form offers
    // it): the created page shows its password once; the clone runs and has the database made
    // above.
    let deadline = Instant::now() + WAIT;
    while b.try_find("#restore-name").await.is_none() {
        assert!(
            Instant::now() < deadline,
            "never restorable:\n{}",
            b.source().await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.click("nav.tabs a[href$='/backups']").await;
    }
    assert!(b
        .text("#restore-window")
        .await
        .starts_with("Restorable from"));
    shot(&b, "console-backups").await;
    b.click("#point-latest").await;
    b.click("#restore").await;
    let clone_password = b.text("#password-value").await;
    assert!(b.text("h1").await.contains("webdb-restored"));
    let clone_url = b.text("#url-value").await;
    b.click("#open-instance").await;
    wait_status(&b, "#status", "running").await;
    let clone_id = b.url().await.rsplit('/').next().unwrap().to_owned();
    assert_ne!(clone_id, instance_id);
    assert_eq!(
        psql(
            &clone_url,
            &ca,
            &clone_password,
            "SELECT count(*) FROM pg_database WHERE datname = 'reports'"
        )
        .await
        .unwrap(),
        "1"
    );
    let owner_token = token_of(&api, &owner).await;
    send(
        api.delete(&format!("/api/v1/instances/{clone_id}"))
            .bearer_auth(&owner_token),
    )
    .await
    .expect(202);
    // Refused restores are said at the top of the backups tab, and make nothing: a moment that
    // is not one, a backup that is not one, a target that is neither.
    for (point, field, value, said) in [
        ("time", "time", "yesterday", "give the moment"),
        ("backup", "backup_id", "not-a-backup", "choose the backup"),
        ("sometime", "time", "", "choose the latest state"),
    ] {
        let r = send(
            api.post(&format!("/console/instances/{instance_id}/restore"))
                .session(&owner_session)
                .origin(&base)
                .form(&[
                    ("csrf", owner_csrf.as_str()),
                    ("name", "never-made"),
                    ("point", point),
                    (field, value),
                ]),
        )
        .await;
        assert_eq!(r.status, 400, "{point}: {}", r.text);
        assert!(r.text.contains("id=\"form-error\""), "{point}: {}", r.text);
        assert!(r.text.contains(said), "{point}: {}", r.text);
    }
    let listed = send(api.get("/api/v1/instances").bearer_auth(&owner_token)).await;
    assert!(!listed.text.contains("never-made"), "{}", listed.text);
    // A configuration form sent unchanged changes nothing and says so.
    let unchanged = send(
        api.post(&format!("/console/instances/{instance_id}/config"))
            .session(&owner_session)
            .origin(&base)
            .form(&[("csrf", owner_csrf.as_str()), ("param.work_mem", "4MB")]),
    )
    .await;
    assert_eq!(unchanged.status, 200, "{}", unchanged.text);
    assert!(
        unchanged.text.contains("Nothing changed"),
        "{}",
        unchanged.text
    );

    // Configuration: a refused value is said beside its field, which keeps what was typed; a
    // good one is saved and the server runs with it.
    b.goto(&instance_url).await;
    b.click("nav.tabs a[href$='/config']").await;
    b.find("#config").await;
    b.clear("#param-work_mem").await;
    b.type_into("#param-work_mem", "lots").await;
    b.click("#save-config").await;
    let why = b.text("#error-work_mem").await;
    assert!(why.starts_with("work_mem:"), "{why}");
    assert_eq!(
        b.attr("#param-work_mem", "value").await.as_deref(),
        Some("lots")
    );
    assert_eq!(
        b.attr("#param-work_mem", "aria-invalid").await.as_deref(),
        Some("true")
    );
    b.clear("#param-work_mem").await;
    b.type_into("#param-work_mem", "8MB").await;
    b.click("#save-config").await;
    assert!(b.text("#notice").await.contains("Changed work_mem"));
    b.find("tr[data-param='work_mem'][data-source='user']")
        .await;
    shot(&b, "console-config").await;
    let deadline = Instant::now() + WAIT;
    while psql(&url, &ca, &password, "SHOW work_mem").await.as_deref() != Ok("8MB") {
        assert!(Instant::now() < deadline, "work_mem never became 8MB");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    b.click("nav.tabs a[href$='/monitoring']").await;
    b.find("figure.chart svg").await;
    b.find("#logs").await;
    shot(&b, "console-monitoring").await;

    // The jobs: the create, pause and resume of the instance.
    b.goto(&format!("{base}/console/jobs")).await;
    let jobs = b.text("#jobs").await;
    for kind in ["create", "pause", "resume", "resize"] {
        assert!(jobs.contains(kind), "{jobs}");
    }
    shot(&b, "console-jobs").await;

    // A job's page, from the list: the resize, done, with its instance linked.
    b.click("tr[data-kind='resize'] a.job-link").await;
    assert_eq!(b.text("#job-kind").await, "resize");
    wait_status(&b, "#job-state", "SUCCESS").await;
    b.find(&format!(
        "#job-instance[href='/console/instances/{instance_id}']"
    ))
    .await;
    assert!(b.text("#job-attempts").await.parse::<u32>().unwrap() >= 1);
    // Where its time went: the resize job's steps, each with how long it took.
    let steps = b.text("#job-steps").await;
    assert!(steps.contains("ms"), "{steps}");
    assert_ne!(b.text("#job-finished").await, "not yet");
    assert!(b.try_find("#job-error").await.is_none());
    shot(&b, "console-job").await;
    let job_url = b.url().await;
    let job_path = job_url.trim_start_matches(&base).to_owned();
    if let Some(href) = &current_job {
        assert_eq!(href, &job_path, "the instance page linked the resize job");
    }
    // Another tenant's job, an unknown one and a malformed id: not found.
    let foreign = create_user(&api, &admin, "console-foreign").await;
    let foreign_session = session_of(&api, &foreign.username, &foreign.password).await;
    for path in [
        job_path.clone(),
        format!("/console/jobs/{}", uuid::Uuid::new_v4()),
        "/console/jobs/not-a-job".to_owned(),
    ] {
        let r = send(api.get(&path).session(&foreign_session)).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert!(r.text.contains("not found"), "{}", r.text);
    }
    let mine = send(api.get(&job_path).session(&owner_session)).await;
    mine.expect(200);

    // An API key: shown once with a copy button, works with curl, then revoked.
    b.goto(&format!("{base}/console/api-keys")).await;
    b.type_into("#key-name", "console-key").await;
    b.click("input[value='instances:read']").await;
    b.click("#create-key").await;
    let key = b.text("#key-value").await;
    assert!(key.starts_with("berth_ak_"), "{key}");
    shot(&b, "console-api-keys").await;
    let curl = |key: String| {
        let url = format!(
            "{base}/api/v1/instances/{}",
            instance_url.rsplit('/').next().unwrap()
        );
        async move {
            let out = tokio::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
                .arg(format!("Authorization: Api-Key {key}"))
                .arg(url)
                .output()
                .await
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    assert_eq!(curl(key.clone()).await, "200");
    b.goto(&format!("{base}/console/api-keys")).await;
    assert!(
        b.try_find("#key-value").await.is_none(),
        "the secret is shown once"
    );
    b.click("tr[data-key='console-key'] button").await;
    b.find("#api-keys").await;
    assert!(b.try_find("tr[data-key='console-key']").await.is_none());
    assert_eq!(curl(key).await, "401");

    // An API client: its secret shown once; it gets a token with client credentials; revoked.
    b.type_into("#client-name", "console-client").await;
    b.click("#create-client").await;
    let client_secret = b.text("#key-value").await;
    let client_id = b.text("#client-id-value").await;
    let r = send(
        api.post("/oauth/token")
            .basic_auth(&client_id, Some(&client_secret))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    r.expect(200);
    b.goto(&format!("{base}/console/api-keys")).await;
    b.click("tr[data-client='console-client'] button").await;
    b.find("#api-clients").await;
    assert!(b
        .try_find("tr[data-client='console-client']")
        .await
        .is_none());
    // A user token, shown once, then revoked.
    b.type_into("#token-name", "console-token").await;
    b.click("#create-token").await;
    assert!(!b.text("#key-value").await.is_empty());
    b.find("tr[data-token='console-token']").await;
    b.click("tr[data-token='console-token'] button").await;
    b.find("#user-tokens").await;
    assert!(b.try_find("tr[data-token='console-token']").await.is_none());

    // Sign out: back at the sign-in page, and the session is gone.
    b.click("#sign-out").await;
    b.find("#sign-in").await;

    // A viewer sees the instance but no action, and a forged post is refused.
    let token = token_of(&api, &owner).await;
    let projects = send(api.get("/api/v1/projects").bearer_auth(&token)).await;
    let project_id = projects.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == project_name.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let viewer = create_user(&api, &admin, "console-viewer").await;
    // The owner adds them on the project page, by username, as a member first, then makes
    // them a viewer; an unknown login is said so next to the form.
    b.goto(&format!("{base}/console/login")).await;
    b.sign_in(&owner).await;
    b.goto(&format!("{base}/console/projects/{project_id}"))
        .await;
    b.type_into("#member-login", "nobody-by-this-name").await;
    b.click("#add-member").await;
    assert!(b.text("#form-error").await.contains("not found"));
    b.type_into("#member-login", &viewer.username).await;
    b.click("#add-member").await;
    let row = format!("tr[data-member='{}']", viewer.username);
    b.find(&row).await;
    b.click(&format!("{row} option[value='viewer']")).await;
    b.click(&format!("{row} form.inline button")).await;
    b.find(&row).await;
    let members = send(
        api.get(&format!("/api/v1/projects/{project_id}/members"))
            .bearer_auth(&token),
    )
    .await;
    let role = members.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"] == viewer.username.as_str())
        .map(|m| m["role"].clone());
    assert_eq!(role, Some(json!("viewer")), "{}", members.json);
    shot(&b, "console-project").await;
    b.click("#sign-out").await;
    b.find("#sign-in").await;
    b.sign_in(&viewer).await;
    b.goto(&instance_url).await;
    wait_status(&b, "#status", "running").await;
    for forbidden in [
        "#action-pause",
        "#action-restart",
        "#delete",
        "#resize",
        "#protection-off",
    ] {
        assert!(
            b.try_find(forbidden).await.is_none(),
            "a viewer sees {forbidden}"
        );
    }
    // Every tab shows what is there, and none of its forms.
    for (tab, table, forms) in [
        ("backups", "#backups", &["#take-backup", "#restore"][..]),
        ("config", "#config", &["#save-config"][..]),
        ("firewall", "#firewall", &["#add-rule"][..]),
        ("users", "#db-users", &["#create-db-user", "button"][..]),
        ("databases", "#databases", &["#create-database"][..]),
    ] {
        b.goto(&format!("{instance_url}/{tab}")).await;
        b.find(table).await;
        for form in forms {
            let css = if *form == "button" {
                format!("{table} button")
            } else {
                (*form).to_owned()
            };
            assert!(
                b.try_find(&css).await.is_none(),
                "a viewer sees {css} on {tab}"
            );
        }
    }
    b.goto(&format!("{instance_url}/config")).await;
    assert_eq!(b.text("#param-work_mem").await, "8MB");
    // The project: its members, but no way to add one, rename or delete it.
    b.goto(&format!("{base}/console/projects/{project_id}"))
        .await;
    b.find("#members").await;
    for css in [
        "#add-member",
        "#save-project",
        "#delete-project",
        "#members button",
    ] {
        assert!(
            b.try_find(css).await.is_none(),
            "a viewer sees {css} on the project"
        );
    }
    b.goto(&format!("{base}/console/instances")).await;
    b.find("#instances").await;
    assert!(b.try_find("#create-instance").await.is_none());
    // The viewer's own session and form token, posted by hand: the app layer refuses.
    let cookie = b
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "berth_session")
        .expect("a session cookie");
    let session = cookie["value"].as_str().unwrap().to_owned();
    let csrf = form_token(&b.source().await);
    let forged = send(
        api.post(&format!("/console/instances/{instance_id}/action"))
            .header("cookie", format!("berth_session={session}"))
            .header("origin", &base)
            .form(&[("csrf", csrf.as_str()), ("action", "pause")]),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    // Without the form token, or from another origin: refused before anything is read.
    let r = send(
        api.post(&format!("/console/instances/{instance_id}/action"))
            .header("cookie", format!("berth_session={session}"))
            .header("origin", &base)
            .form(&[("csrf", "forged"), ("action", "pause")]),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = send(
        api.post(&format!("/console/instances/{instance_id}/action"))
            .header("cookie", format!("berth_session={session}"))
            .header("origin", "https://evil.example")
            .form(&[("csrf", csrf.as_str()), ("action", "pause")]),
    )
    .await;
    assert_eq!(r.status, 403);
    let still = send(
        api.get(&format!("/api/v1/instances/{instance_id}"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(still.json["status"], "running", "nothing was paused");

    // Nor resize, unprotect or delete it by hand: the app layer's refusal, at the top of a page
    // that has none of those forms.
    for (path, field, value) in [
        ("resize", "memory", "1GB"),
        ("resize", "storage", "50GB"),
        ("protection", "deletion_protection", "off"),
        ("delete", "confirm_name", "webdb"),
        ("restore", "name", "stolen"),
        ("config", "param.work_mem", "64MB"),
    ] {
        let r = send(
            api.post(&format!("/console/instances/{instance_id}/{path}"))
                .session(&session)
                .origin(&base)
                .form(&[("csrf", csrf.as_str()), (field, value)]),
        )
        .await;
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert!(r.text.contains("id=\"form-error\""), "{path}: {}", r.text);
    }

    // The owner deletes it with the typed-name confirmation (a wrong name first); deletion
    // protection refuses it, with the reason next to the form, until it is turned off.
    b.click("#sign-out").await;
    b.find("#sign-in").await;
    b.sign_in(&owner).await;
    b.goto(&instance_url).await;
    b.type_into("#confirm-name", "not-webdb").await;
    b.click("#delete").await;
    assert!(b.text("#delete-error").await.contains("webdb"));
    b.type_into("#confirm-name", "webdb").await;
    b.click("#delete").await;
    let refused = b.text("#delete-error").await;
    assert!(refused.contains("Deletion protection is on"), "{refused}");
    shot(&b, "console-delete-protected").await;
    let still = send(
        api.get(&format!("/api/v1/instances/{instance_id}"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(still.json["status"], "running", "not deleted");
    b.click("#protection-off").await;
    b.find("#protection-on").await;
    b.type_into("#confirm-name", "webdb").await;
    b.click("#delete").await;
    b.find("#instances").await;

    // The owner is no platform admin: no Users or Audit log in the menu; the project page links
    // its audit log, which shows the instance's life.
    assert!(b.try_find("a[href='/console/users']").await.is_none());
    b.goto(&format!("{base}/console/projects/{project_id}"))
        .await;
    b.click("a[href^='/console/audit']").await;
    b.find("tr[data-event='instance.created']").await;
    b.find("tr[data-event='member.changed']").await;
    shot(&b, "console-audit").await;
    // A platform admin manages users.
    b.click("#sign-out").await;
    b.find("#sign-in").await;
    let admin_user = TestUser {
        id: String::new(),
        username: "admin".into(),
        email: String::new(),
        password: ADMIN_PASSWORD.into(),
    };
    b.sign_in(&admin_user).await;
    b.click("a[href='/console/users']").await;
    let newcomer = unique("console-new");
    // A taken username: the server's answer next to the form.
    b.type_into("#new-username", "admin").await;
    b.type_into("#new-email", &format!("{newcomer}@example.com"))
        .await;
    b.type_into("#new-password", USER_PASSWORD).await;
    b.click("#create-user").await;
    let said = b.text("#form-error").await;
    assert!(said.contains("already exists"), "{said}");
    b.type_into("#new-username", &newcomer).await;
    b.type_into("#new-email", &format!("{newcomer}@example.com"))
        .await;
    b.type_into("#new-password", USER_PASSWORD).await;
    b.click("#create-user").await;
    let row = format!("tr[data-user='{newcomer}']");
    b.find(&row).await;
    shot(&b, "console-users").await;

    // Disabling the newcomer ends their session at once and they cannot sign in; enabled
    // again, they can. An admin's own row has no button; a non-admin's forged post is refused.
    let newcomer_user = TestUser {
        id: String::new(),
        username: newcomer.clone(),
        email: String::new(),
        password: USER_PASSWORD.into(),
    };
    let newcomer_session = session_of(&api, &newcomer, USER_PASSWORD).await;
    send(api.get("/console/jobs").session(&newcomer_session))
        .await
        .expect(200);
    assert!(b.try_find("tr[data-user='admin'] button").await.is_none());
    b.click(&format!("{row} button.disable-user")).await;
    b.find(&format!("{row}[data-disabled='true']")).await;
    assert_eq!(b.text(&format!("{row} .user-status")).await, "disabled");
    shot(&b, "console-user-disabled").await;
    let r = send(api.get("/console/jobs").session(&newcomer_session)).await;
    assert!(
        matches!(r.status, 302 | 303 | 307),
        "a disabled user's session ended: {}",
        r.status
    );
    b.click("#sign-out").await;
    b.find("#sign-in").await;
    b.type_into("#login", &newcomer).await;
    b.type_into("#password", USER_PASSWORD).await;
    b.click("#sign-in").await;
    assert!(b
        .text("#form-error")
        .await
        .contains("Invalid username or password"));
    assert!(b.try_find("#whoami").await.is_none());
    let r = send(api.post_json(
        "/api/v1/auth/login",
        &json!({"login": newcomer, "password": USER_PASSWORD}),
    ))
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    // The project owner is no platform admin: the app layer refuses their forged enable.
    let owner_session = session_of(&api, &owner.username, &owner.password).await;
    let page = send(api.get("/console/instances").session(&owner_session)).await;
    let users = send(api.get("/api/v1/users?limit=500").bearer_auth(&admin)).await;
    let newcomer_id = users.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == newcomer.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let forged = send(
        api.post(&format!("/console/users/{newcomer_id}/disabled"))
            .session(&owner_session)
            .origin(&base)
            .form(&[
                ("csrf", form_token(&page.text).as_str()),
                ("disabled", "false"),
            ]),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    // The admin enables them again; they sign in.
    b.goto(&format!("{base}/console/login")).await;
    b.sign_in(&admin_user).await;
    b.goto(&format!("{base}/console/users")).await;
    b.click(&format!("{row} button.enable-user")).await;
    b.find(&format!("{row} button.disable-user")).await;
    assert_eq!(b.text(&format!("{row} .user-status")).await, "active");
    b.click("#sign-out").await;
    b.find("#sign-in").await;
    b.sign_in(&newcomer_user).await;
    assert_eq!(b.text("#whoami").await, newcomer);
    b.quit().await;
    let _ = std::fs::remove_dir_all(ca_dir);
}

/// Every console route, as the router has it: GETs and POSTs (placeholders filled in below).
/// (`/console` itself only redirects to the instances; `/console/login` and the assets are
/// public.)
const CONSOLE_ROUTES: &[(&str, &str)] = &[
    ("get", "/console/projects"),
    ("post", "/console/projects"),
    ("get", "/console/projects/{id}"),
    ("post", "/console/projects/{id}/members"),
    ("post", "/console/projects/{id}/members/{id}"),
    ("post", "/console/projects/{id}/members/{id}/remove"),
    ("post", "/console/projects/{id}/edit"),
    ("post", "/console/projects/{id}/delete"),
    ("get", "/console/instances"),
    ("post", "/console/instances"),
    ("get", "/console/instances/rows"),
    ("get", "/console/instances/new"),
    ("get", "/console/instances/{id}"),
    ("get", "/console/instances/{id}/detail"),
    ("post", "/console/instances/{id}/action"),
    ("post", "/console/instances/{id}/delete"),
    ("post", "/console/instances/{id}/resize"),
    ("post", "/console/instances/{id}/protection"),
    ("get", "/console/instances/{id}/backups"),
    ("post", "/console/instances/{id}/backups"),
    ("post", "/console/instances/{id}/restore"),
    ("get", "/console/instances/{id}/config"),
    ("post", "/console/instances/{id}/config"),
    ("get", "/console/instances/{id}/firewall"),
    ("post", "/console/instances/{id}/firewall"),
    ("post", "/console/instances/{id}/firewall/{id}/remove"),
    ("get", "/console/instances/{id}/users"),
    ("post", "/console/instances/{id}/users"),
    ("post", "/console/instances/{id}/users/reporting/reset"),
    ("post", "/console/instances/{id}/users/reporting/remove"),
    ("get", "/console/instances/{id}/monitoring"),
    ("get", "/console/instances/{id}/databases"),
    ("post", "/console/instances/{id}/databases"),
    ("post", "/console/instances/{id}/databases/shop/remove"),
    ("get", "/console/jobs"),
    ("get", "/console/jobs/{id}"),
    ("get", "/console/audit"),
    ("get", "/console/users"),
    ("post", "/console/users"),
    ("post", "/console/users/{id}/disabled"),
    ("get", "/console/api-keys"),
    ("post", "/console/api-keys"),
    ("post", "/console/api-keys/{id}/revoke"),
    ("post", "/console/api-clients"),
    ("post", "/console/api-clients/{id}/revoke"),
    ("post", "/console/user-tokens"),
    ("post", "/console/user-tokens/{id}/revoke"),
];

/// Without a session every console page sends the visitor to sign in, and every form is
/// refused: from another site (403), without a session (to sign in), with a session but not its
/// form token (403). Nothing is ever a server error.
#[tokio::test]
async fn every_console_route_needs_a_session_and_its_form_token() {
    let server = shared();
    let api = Api::new(server);
    let session = session_of(&api, "admin", ADMIN_PASSWORD).await;
    let origin = api.base.trim_end_matches('/').to_owned();
    let some_id = uuid::Uuid::new_v4().to_string();
    for (method, template) in CONSOLE_ROUTES {
        let path = template.replace("{id}", &some_id);
        // A page sends the visitor to sign in; a fragment (fetched by htmx) answers 401 and
        // tells htmx to go to sign in (HX-Redirect), so a polling page does not go stale.
        let to_sign_in =
            |r: &Resp| r.status == 303 && r.header("location") == Some("/console/login");
        let htmx_to_sign_in =
            |r: &Resp| r.status == 401 && r.header("hx-redirect") == Some("/console/login");
        if *method == "get" {
            let r = send(api.get(&path)).await;
            assert!(
                to_sign_in(&r) || htmx_to_sign_in(&r),
                "GET {path} without a session: {} {}",
                r.status,
                r.text
            );
            // As htmx asks (the job page polls itself): never a redirect to a page it would
            // swap in.
            let polled = send(api.get(&path).header("hx-request", "true")).await;
            if path.contains("/detail") || path.contains("/rows") || path.contains("/jobs/") {
                assert!(
                    htmx_to_sign_in(&polled),
                    "GET {path} by htmx: {}",
                    polled.status
                );
            }
            continue;
        }
        let form = |rb: reqwest::RequestBuilder| {
            rb.header("content-type", "application/x-www-form-urlencoded")
                .body("csrf=forged&name=x")
        };
        let foreign = send(form(api.post(&path)).header("origin", "https://evil.example")).await;
        assert_eq!(foreign.status, 403, "POST {path} from another site");
        let anonymous = send(form(api.post(&path)).header("origin", &origin)).await;
        assert!(
            to_sign_in(&anonymous) || anonymous.status == 401,
            "POST {path} without a session: {}",
            anonymous.status
        );
        let tokenless = send(
            form(api.post(&path))
                .header("origin", &origin)
                .header("cookie", format!("berth_session={session}")),
        )
        .await;
        assert_eq!(
            tokenless.status, 403,
            "POST {path} with a session but a forged form token: {}",
            tokenless.text
        );
        assert!(tokenless.text.contains("The form is stale"), "POST {path}");
    }
}
