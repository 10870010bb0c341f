//! The device flow at speed (the `fast` server polls every second): `slow_down` arithmetic,
//! the `oauth2` crate as the device, and the activation page in a real browser — headless
//! Chromium driven over ChromeDriver's W3C WebDriver protocol — approving `berth login` and
//! denying another device, and refusing a decision posted from another origin.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oauth2::TokenResponse;
use serde_json::{json, Value};

use crate::common::*;

/// The integers in `s` (to read the interval out of a `slow_down` description).
fn numbers(s: &str) -> Vec<i64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[tokio::test]
async fn slow_down_adds_five_seconds_and_the_new_cadence_is_not_punished() {
    let s = fast();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "slowdown").await;
    let cookie = session_of(&api, &u.username, &u.password).await;

    let a = device_code(&api, None).await;
    let b = device_code(&api, None).await;
    assert_eq!(a["interval"], 1, "the fast server polls every second: {a}");
    for d in [&a, &b] {
        let code = str_of(d, "device_code");
        poll(&api, code)
            .await
            .expect_oauth_error(400, "authorization_pending");
        // Sooner than the interval: slow_down, and the interval grows from 1 to 6 seconds.
        // (Polls at once until told so: on a loaded machine two requests may be a second
        // apart, which is a poll at the cadence, answered as pending.)
        let mut r = poll(&api, code).await;
        for _ in 0..5 {
            if r.json["error"] != "authorization_pending" {
                break;
            }
            r = poll(&api, code).await;
        }
        r.expect_oauth_error(400, "slow_down");
        let said = numbers(str_of(&r.json, "error_description"));
        assert!(said.contains(&6), "interval 1 + 5 = 6: {r:#?}");
    }
    decide(&api, &cookie, str_of(&a, "user_code"), true)
        .await
        .expect(200);

    let cadence = async {
        // A device that keeps the new cadence (6 s) is served, not punished again.
        tokio::time::sleep(Duration::from_millis(6_300)).await;
        let r = poll(&api, str_of(&a, "device_code")).await;
        r.expect_token();
        // Tokens once only.
        poll(&api, str_of(&a, "device_code"))
            .await
            .expect_oauth_error(400, "invalid_grant");
    };
    let too_soon = async {
        // Three seconds would have been fine at the old interval; now it is too soon, and
        // the interval grows again, by five.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let r = poll(&api, str_of(&b, "device_code")).await;
        r.expect_oauth_error(400, "slow_down");
        let said = numbers(str_of(&r.json, "error_description"));
        assert!(said.contains(&11), "interval 6 + 5 = 11: {r:#?}");
    };
    tokio::join!(cadence, too_soon);
}

// ---------------------------------------------------------------------------------------------
// The oauth2 crate as the device
// ---------------------------------------------------------------------------------------------

type DeviceClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// The CLI's public client as the `oauth2` crate sees it, from the server's metadata.
async fn device_client(api: &Api) -> DeviceClient {
    let m = send(api.get("/.well-known/oauth-authorization-server")).await;
    m.expect(200);
    oauth2::basic::BasicClient::new(oauth2::ClientId::new(CLI_CLIENT.into()))
        .set_device_authorization_url(
            oauth2::DeviceAuthorizationUrl::new(
                str_of(&m.json, "device_authorization_endpoint").to_owned(),
            )
            .unwrap(),
        )
        .set_token_uri(oauth2::TokenUrl::new(str_of(&m.json, "token_endpoint").to_owned()).unwrap())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn start_device(
    client: &DeviceClient,
    http: &reqwest::Client,
    scope: &str,
) -> oauth2::StandardDeviceAuthorizationResponse {
    client
        .exchange_device_code()
        .add_scope(oauth2::Scope::new(scope.into()))
        .request_async(http)
        .await
        .expect("device authorization")
}

/// Polls (as the crate does: honouring interval and slow_down) until the device gets an answer.
async fn wait_for_tokens(
    client: &DeviceClient,
    http: &reqwest::Client,
    details: &oauth2::StandardDeviceAuthorizationResponse,
) -> Result<
    oauth2::basic::BasicTokenResponse,
    oauth2::RequestTokenError<
        oauth2::HttpClientError<reqwest::Error>,
        oauth2::DeviceCodeErrorResponse,
    >,
> {
    client
        .exchange_device_access_token(details)
        .request_async(http, tokio::time::sleep, Some(Duration::from_secs(120)))
        .await
}

#[tokio::test]
async fn oauth2_crate_device_flow_approved_over_http_then_refreshed() {
    let s = fast();
    let api = Api::new(s);
    let http = no_redirects();
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "oauth2-device").await;
    let client = device_client(&api).await;

    let details = start_device(&client, &http, "projects:read").await;
    assert_eq!(details.interval(), Duration::from_secs(1));
    assert_eq!(details.expires_in(), Duration::from_secs(900));
    assert_eq!(
        details.verification_uri().as_str(),
        format!("{}/activate", s.base)
    );
    let code = details.user_code().secret().clone();
    assert_eq!(
        details
            .verification_uri_complete()
            .map(|u| u.secret().clone()),
        Some(format!("{}/activate?user_code={code}", s.base))
    );

    // The person approves while the device polls.
    let approve = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let cookie = session_of(&api, &u.username, &u.password).await;
        decide(&api, &cookie, &code, true).await.expect(200);
    };
    let (token, ()) = tokio::join!(wait_for_tokens(&client, &http, &details), approve);
    let token = token.expect("the device gets its tokens");
    assert_eq!(
        token
            .scopes()
            .map(|s| s.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        Some(vec!["projects:read".to_owned()])
    );
    let who = check(&api, token.access_token().secret()).await;
    who.expect(200);
    assert_eq!(who.json["user"]["id"], u.id.as_str());

    let refreshed = client
        .exchange_refresh_token(token.refresh_token().expect("a refresh token"))
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        token.refresh_token().unwrap().secret()
    );
    check(&api, refreshed.access_token().secret())
        .await
        .expect(200);
}

// ---------------------------------------------------------------------------------------------
// Headless Chromium over WebDriver
// ---------------------------------------------------------------------------------------------

pub(crate) const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(30);

fn find_program(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A ChromeDriver process and one headless Chromium session (the console tests use it too).
pub(crate) struct Browser {
    driver: Child,
    http: reqwest::Client,
    base: String,
    session: String,
    dir: PathBuf,
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        let missing = "headless-browser tests need Debian's `chromium` and `chromium-driver` \
                       (run scripts/prereqs.sh --test)";
        let chromedriver = find_program("chromedriver").expect(missing);
        let chromium = ["chromium", "chromium-browser"]
            .iter()
            .find_map(|n| find_program(n))
            .expect(missing);
        let dir = temp_dir("chromium");
        let port = free_port();
        let log = std::fs::File::create(dir.join("chromedriver.log")).unwrap();
        let mut cmd = Command::new(chromedriver);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; ChromeDriver dies with the test process.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let driver = cmd.spawn().expect("starting chromedriver");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == true {
                        break;
                    }
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = dir.join("profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let r = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new WebDriver session");
        let v: Value = r.json().await.unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Browser {
            driver,
            http,
            base,
            session,
            dir,
        }
    }

    pub(crate) async fn cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut rb = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub(crate) async fn try_find(&self, css: &str) -> Option<String> {
        let url = format!("{}/session/{}/element", self.base, self.session);
        let r = self
            .http
            .post(&url)
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["value"][ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits for an element to appear (pages load after clicks), then returns it.
    pub(crate) async fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.try_find(css).await {
                return e;
            }
            if Instant::now() > deadline {
                panic!("no {css} on {}:\n{}", self.url().await, self.source().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Empties a text field.
    pub(crate) async fn clear(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
    }

    pub(crate) async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) async fn cookies(&self) -> Vec<Value> {
        self.cmd(reqwest::Method::GET, "/cookie", None)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Signs in on the activation page's form (it must be showing).
    pub(crate) async fn sign_in(&self, user: &TestUser) {
        self.type_into("#login", &user.username).await;
        self.type_into("#password", &user.password).await;
        self.click("#sign-in").await;
        // Back on a page of a signed-in user; the session cookie must have been kept.
        let deadline = Instant::now() + WAIT;
        while self.try_find("#sign-in").await.is_some() || self.try_find(".who").await.is_none() {
            if Instant::now() > deadline {
                panic!(
                    "still not signed in after the sign-in form: cookies {:?}, page {}:\n{}",
                    self.cookies().await,
                    self.url().await,
                    self.source().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An attribute of the first element matching `css` (None: no such element or attribute).
    /// (None too when the page replaced the element between finding and reading it, as live
    /// updates do.)
    pub(crate) async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.try_find(css).await?;
        let url = format!(
            "{}/session/{}/element/{e}/attribute/{name}",
            self.base, self.session
        );
        let v: Value = self.http.get(&url).send().await.ok()?.json().await.ok()?;
        v["value"].as_str().map(str::to_owned)
    }

    /// Saves a PNG of the window as `target/screenshots/<name>.png` (kept as CI artefacts).
    pub(crate) async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            png.as_str().unwrap_or_default(),
        )
        .expect("a base64 screenshot");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Sets the window's size (a phone is about 390 × 844).
    pub(crate) async fn resize(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    pub(crate) async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        self.stop_driver();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    pub(crate) fn stop_driver(&mut self) {
        send_signal(self.driver.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.driver.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.driver.try_wait().ok().flatten().is_none() {
            // A failed test: chromedriver ends its browser when it is told to stop.
            let _ = std::process::Command::new("curl")
                .args(["-s", "-m", "5", "-X", "DELETE"])
                .arg(format!("{}/session/{}", self.base, self.session))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.stop_driver();
            eprintln!("chromium files left in {}", self.dir.display());
        }
    }
}

#[tokio::test]
async fn activation_page_in_headless_chromium_approves_berth_login_and_denies_a_device() {
    let s = fast();
    let api = Api::new(s);
    let http = no_redirects();
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "chromium").await;
    let browser = Browser::start().await;

    // `berth login` prints the page to open; the browser opens it, signs in, confirms.
    let config = temp_dir("cli-browser");
    let mut login = crate::cli::Login::start(s, &config);
    let (url, code) = login.url_and_code();
    assert!(
        url.starts_with(&format!("{}/activate?user_code=", s.base)),
        "{url}"
    );

    browser.goto(&url).await;
    // Signed out: the sign-in form first, the code kept.
    browser.find("#login").await;
    browser.sign_in(&u).await;
    let session = browser
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "berth_session")
        .unwrap_or_else(|| panic!("Chromium did not keep the session cookie"));
    assert_eq!(session["secure"], true, "{session}");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(browser.text("#client-name").await, "Berth CLI");
    assert_eq!(browser.text("#user-code").await, code);
    let scopes = browser.text("ul.scopes").await;
    for scope in ["projects:read", "projects:create", "audit:read"] {
        assert!(scopes.contains(scope), "{scope} not shown: {scopes}");
    }
    assert!(browser.text(".who").await.contains(&u.username));
    browser.screenshot("activate-confirm").await;
    browser.click("#confirm").await;
    assert_eq!(browser.text("#result").await, "Device approved");

    let (ok, output) = login.finish().await;
    assert!(ok, "berth login failed: {output}");
    assert!(
        output.contains(&format!("Logged in to {} as {}", s.base, u.username)),
        "{output}"
    );
    let token = crate::cli::berth_ok(&config, &["token"]).await;
    let who = check(&api, token.trim()).await;
    who.expect(200);
    assert_eq!(who.json["user"]["id"], u.id.as_str());
    assert_eq!(who.json["client_id"], CLI_CLIENT);

    // A device the person does not recognise: Deny (the browser is still signed in); the
    // device, polling with the oauth2 crate, is told access_denied.
    let client = device_client(&api).await;
    let details = start_device(&client, &http, "projects:read").await;
    let deny = async {
        let url = details
            .verification_uri_complete()
            .unwrap()
            .secret()
            .clone();
        browser.goto(&url).await;
        assert_eq!(
            browser.text("#user-code").await,
            details.user_code().secret().as_str()
        );
        browser.click("#deny").await;
        assert_eq!(browser.text("#result").await, "Request denied");
    };
    let (result, ()) = tokio::join!(wait_for_tokens(&client, &http, &details), deny);
    match result {
        Err(oauth2::RequestTokenError::ServerResponse(e)) => {
            assert_eq!(
                *e.error(),
                oauth2::DeviceCodeErrorResponseType::AccessDenied
            )
        }
        other => panic!("expected access_denied, got {other:?}"),
    }

    // The plain verification_uri: type the code (lowercase, no dash) into the page's form.
    let details = start_device(&client, &http, "projects:read").await;
    let approve = async {
        browser.goto(details.verification_uri().as_str()).await;
        let typed = details.user_code().secret().replace('-', "").to_lowercase();
        browser.type_into("#user_code", &typed).await;
        browser.click("#continue").await;
        assert_eq!(
            browser.text("#user-code").await,
            details.user_code().secret().as_str()
        );
        browser.click("#confirm").await;
        assert_eq!(browser.text("#result").await, "Device approved");
    };
    let (result, ()) = tokio::join!(wait_for_tokens(&client, &http, &details), approve);
    let t = result.expect("tokens after approval by typed code");
    check(&api, t.access_token().secret()).await.expect(200);

    browser.quit().await;
    let _ = std::fs::remove_dir_all(config);
}

/// Serves one HTML page (to play a site of another origin) until the process ends.
fn serve_page(html: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 8192];
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.read(&mut buf);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    base
}

#[tokio::test]
async fn chromium_refuses_a_decision_posted_from_another_origin() {
    let s = fast();
    let api = Api::new(s);
    let admin = admin_token(&api).await;
    let u = create_user(&api, &admin, "csrf-chromium").await;
    let d = device_code(&api, Some("projects:read")).await;
    let code = str_of(&d, "user_code").to_owned();
    let browser = Browser::start().await;

    // The person is signed in, looking at the request.
    browser.goto(str_of(&d, "verification_uri_complete")).await;
    browser.sign_in(&u).await;
    let page = browser.source().await;
    let csrf = html_input(&page, "csrf").expect("form token");

    // Another origin on the same host (so the same site: SameSite=Lax still sends the
    // cookie) posts the decision — even knowing the form token. The Origin check refuses it.
    let evil = serve_page(format!(
        r#"<!doctype html><html><body><form method="post" action="{}/activate/decision">
<input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="user_code" value="{code}">
<button id="go" type="submit" name="decision" value="approve">Win a prize</button>
</form></body></html>"#,
        s.base
    ));
    browser.goto(&format!("{evil}/prize")).await;
    browser.click("#go").await;
    assert_eq!(browser.text("h1").await, "Request refused");
    assert!(browser
        .source()
        .await
        .contains("did not come from this site"));
    poll(&api, str_of(&d, "device_code"))
        .await
        .expect_oauth_error(400, "authorization_pending");

    // From the page itself the same decision goes through.
    browser.goto(str_of(&d, "verification_uri_complete")).await;
    browser.click("#confirm").await;
    assert_eq!(browser.text("#result").await, "Device approved");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    poll(&api, str_of(&d, "device_code")).await.expect_token();
    browser.quit().await;
}
