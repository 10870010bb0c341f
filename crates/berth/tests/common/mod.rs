//! Test harness: spawns the real `berth` binary on its own PostgreSQL and talks HTTP to it.
//!
//! One server is shared by every test of the process (started lazily, from a thread that lives
//! as long as the process so `PR_SET_PDEATHSIG` only fires when the test process exits); a few
//! more are shared the same way by the tests that need other settings ([`static_server`]: the
//! OAuth ones in `oauth.rs`). Tests that stop and restart the server start a [`Dedicated`] one.
//! Every test creates its own users and projects with [`unique`] names, and tests that fail
//! logins on purpose use their own loopback source address so per-IP throttling does not leak.

#![allow(dead_code)]

mod oauth;
mod tenant;
pub use oauth::*;
pub use tenant::*;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "integration-admin-password-0";
/// Every test user gets this password (≥ 12 characters).
pub const USER_PASSWORD: &str = "correct horse battery staple";

pub const MAX_FAILURES_PER_ACCOUNT: usize = 5;
pub const MAX_FAILURES_PER_IP: usize = 20;
pub const THROTTLE_WINDOW_SECS: u64 = 900;

/// Weak argon2 parameters (tests only) and low throttle limits so throttling is testable.
pub fn base_config() -> String {
    // Every server of this run gets its own instance ports, so two servers never hand out
    // the same port at the same time (a run starts some 25 servers per process: each process
    // has 39 blocks of 40). All of them lie below 32768, where Linux starts handing out
    // ephemeral ports: a server's HTTP listener (port 0) or a client's connection must never
    // take a port a paused instance needs back (seen in CI: "could not bind … already in use").
    static SERVERS: AtomicU32 = AtomicU32::new(0);
    let n = SERVERS.fetch_add(1, Ordering::Relaxed);
    let first_port = 20_000 + (std::process::id() % 8) * 1_560 + (n % 39) * 40;
    let last_port = first_port + 39;
    format!(
        r#"
[auth]
password_hash = {{ memory_kib = 8192, iterations = 1, parallelism = 1 }}

[auth.throttle]
max_failures_per_account = {MAX_FAILURES_PER_ACCOUNT}
max_failures_per_ip = {MAX_FAILURES_PER_IP}
window_secs = {THROTTLE_WINDOW_SECS}

[instances]
spares = 0
spare_copies = 0
stop_on_shutdown = true
data_source_timeout_seconds = 2
first_port = {first_port}
last_port = {last_port}
"#
    )
}

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const DIR_PREFIX: &str = "berth-it-";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A lowercase name that no other test of this process uses (valid as a username).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Processes and directories
// ---------------------------------------------------------------------------------------------

/// A fresh directory under /tmp that the `postgres` user can traverse (tests run as root).
pub fn temp_dir(tag: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = PathBuf::from("/tmp").join(format!(
        "{DIR_PREFIX}{}-{tag}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// Removes the directories of earlier test processes that are gone (a shared server's directory
/// cannot be removed by the process that used it, since it never knows when it is done).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        if processes_mentioning(&path.to_string_lossy()).is_empty() {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// Pids of live processes whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != std::process::id() as i32)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|raw| {
                let cmdline: Vec<u8> = raw.iter().map(|&b| if b == 0 { b' ' } else { b }).collect();
                String::from_utf8_lossy(&cmdline).contains(needle)
            })
        })
        .collect()
}

/// Processes of the system PostgreSQL of `data_dir` (the postmaster carries `-D <dir>`).
pub fn system_postgres_processes(data_dir: &Path) -> Vec<i32> {
    processes_mentioning(&data_dir.join("system-pg").to_string_lossy())
}

/// The pid in the first line of a PostgreSQL `postmaster.pid`, if the file is there.
pub fn read_pid_file(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The postmaster of Berth's own PostgreSQL under `data_dir`.
pub fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    read_pid_file(&data_dir.join("system-pg/postmaster.pid"))
}

pub fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

pub fn send_signal(pid: u32, signal: libc::c_int) {
    // SAFETY: plain syscall on a pid we own.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `berth serve` in `dir` (data in `dir/data`, config `dir/berth.toml`), logging to `log`.
/// The child gets SIGTERM when the spawning thread exits, so nothing outlives the tests.
pub fn spawn_berth(dir: &Path, port: u16, admin_password: &str, log: &Path) -> Child {
    spawn_berth_with(dir, port, admin_password, log, None)
}

/// [`spawn_berth`], with the open-file limit (soft and hard) set to `nofile` when given.
pub fn spawn_berth_with(
    dir: &Path,
    port: u16,
    admin_password: &str,
    log: &Path,
    nofile: Option<u64>,
) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(dir.join("berth.toml"))
        .env("BERTH_ADMIN_PASSWORD", admin_password)
        .env("BERTH_LOG_FORMAT", "json")
        // The test clock (debug builds only): see `Server::advance_clock`.
        .env("BERTH_TEST_CLOCK_FILE", dir.join(CLOCK_FILE))
        .env_remove("BERTH_DATABASE_URL")
        .env_remove("BERTH_PUBLIC_URL")
        .env_remove("BERTH_MASTER_KEY")
        .env_remove("BERTH_CONFIG")
        .env_remove("BERTH_LISTEN")
        .env_remove("BERTH_DATA_DIR")
        .env_remove("BERTH_LOG")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(n) = nofile {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.spawn().expect("spawning berth")
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| format!("<cannot read {}: {e}>", path.display()))
}

/// Polls `GET /readyz` until it answers 200. `exited` reports an early death of the server.
fn wait_ready(
    addr: SocketAddr,
    log: &Path,
    mut exited: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok((200, _)) = raw_http(
            addr,
            b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) {
            return Ok(());
        }
        if let Some(status) = exited() {
            return Err(format!(
                "berth exited ({status}) before becoming ready; its log ({}):\n{}",
                log.display(),
                read_log(log)
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "berth did not become ready within {READY_TIMEOUT:?}; its log ({}):\n{}",
                log.display(),
                read_log(log)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where a running server is.
#[derive(Debug, Clone)]
pub struct Server {
    /// `http://127.0.0.1:<port>`: also the server's origin and its tokens' issuer.
    pub base: String,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    fn at(dir: &Path, port: u16, log: PathBuf) -> Server {
        Server {
            base: format!("http://127.0.0.1:{port}"),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: dir.to_owned(),
            log,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_text(&self) -> String {
        read_log(&self.log)
    }

    /// Moves the server's clock `secs` seconds forward (for every expiry decision it makes),
    /// instead of waiting. Only on a server of the test's own ([`Dedicated`]): a shared one
    /// would shift time under every other test.
    pub fn advance_clock(&self, secs: i64) {
        let path = self.dir.join(CLOCK_FILE);
        let now: i64 = std::fs::read_to_string(&path)
            .map(|s| s.trim().parse().expect("the clock file holds seconds"))
            .unwrap_or(0);
        // Written whole and renamed, so the server never reads half of it.
        let tmp = self.dir.join(format!("{CLOCK_FILE}.tmp"));
        std::fs::write(&tmp, (now + secs).to_string()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
}

/// In a server's directory: the offset (seconds) its clock runs ahead of the system's, read
/// by `berth serve` through `BERTH_TEST_CLOCK_FILE` in debug builds.
const CLOCK_FILE: &str = "test-clock-offset";

static SHARED: OnceLock<Result<Server, String>> = OnceLock::new();

/// The server shared by every test of this process, started on first use.
pub fn shared() -> &'static Server {
    static_server(&SHARED, "shared", base_config)
}

/// A server started on first use and shared by every test of this process that asks `cell`
/// for it: like [`shared`], with its own settings. Several of these keep the number of
/// dedicated servers (each costs a PostgreSQL start) small.
pub fn static_server(
    cell: &'static OnceLock<Result<Server, String>>,
    tag: &str,
    config: impl FnOnce() -> String,
) -> &'static Server {
    match cell.get_or_init(|| start_static(tag, &config())) {
        Ok(s) => s,
        Err(e) => panic!("the {tag} server did not start: {e}"),
    }
}

fn start_static(tag: &str, config: &str) -> Result<Server, String> {
    static CLEANED: std::sync::Once = std::sync::Once::new();
    CLEANED.call_once(remove_stale_dirs);
    let dir = temp_dir(tag);
    std::fs::write(dir.join("berth.toml"), config).unwrap();
    let port = free_port();
    let server = Server::at(&dir, port, dir.join("berth.log"));
    let exit: Arc<Mutex<Option<String>>> = Arc::default();
    let (tx, rx) = mpsc::channel();
    {
        let (dir, log, exit) = (dir.clone(), server.log.clone(), exit.clone());
        // This thread must outlive every test: the child's PDEATHSIG fires when it exits.
        std::thread::Builder::new()
            .name(format!("berth-{tag}-server"))
            .spawn(move || {
                let mut child = spawn_berth(&dir, port, ADMIN_PASSWORD, &log);
                let _ = tx.send(child.id());
                let status = child.wait();
                *exit.lock().unwrap() = Some(format!("{status:?}"));
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
    }
    rx.recv().map_err(|_| "the server thread died".to_owned())?;
    wait_ready(server.addr, &server.log, || exit.lock().unwrap().clone())?;
    Ok(server)
}

/// A server of one test's own, with its own data directory, that the test stops and restarts.
pub struct Dedicated {
    pub server: Server,
    child: Option<Child>,
    starts: u32,
    /// The server's open-file limit, when the test sets one.
    nofile: Option<u64>,
}

impl Dedicated {
    /// A new directory with `config` as the config file.
    pub fn new_dir(tag: &str, config: &str) -> PathBuf {
        let dir = temp_dir(tag);
        std::fs::write(dir.join("berth.toml"), config).unwrap();
        dir
    }

    /// Starts a server on `dir` (on a fresh port, logging to a fresh file) and waits until ready.
    pub fn start(dir: &Path, admin_password: &str) -> Dedicated {
        Dedicated::start_with_nofile(dir, admin_password, None)
    }

    /// [`Dedicated::start`] with the server's open-file limit (soft and hard) set to `nofile`.
    pub fn start_with_nofile(dir: &Path, admin_password: &str, nofile: Option<u64>) -> Dedicated {
        let mut d = Dedicated {
            server: Server::at(dir, 0, PathBuf::new()),
            child: None,
            starts: 0,
            nofile,
        };
        d.restart(admin_password);
        d
    }

    /// Starts the server again on the same directory; the previous one must be stopped.
    pub fn restart(&mut self, admin_password: &str) {
        assert!(self.child.is_none(), "the previous server is still running");
        self.starts += 1;
        let port = free_port();
        let log = self.server.dir.join(format!("berth-{}.log", self.starts));
        self.server = Server::at(&self.server.dir, port, log);
        let mut child = spawn_berth_with(
            &self.server.dir,
            port,
            admin_password,
            &self.server.log,
            self.nofile,
        );
        let ready = wait_ready(self.server.addr, &self.server.log, || {
            child.try_wait().ok().flatten().map(|s| s.to_string())
        });
        self.child = Some(child);
        if let Err(e) = ready {
            panic!("{e}");
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    /// Sends `signal` and waits for the server to exit.
    pub fn stop_with(&mut self, signal: libc::c_int) -> ExitStatus {
        let mut child = self.child.take().expect("server running");
        send_signal(child.id(), signal);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "berth did not exit after signal {signal}; its log:\n{}",
                    self.server.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn terminate(&mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Removes the directory (after a successful test; a failed one leaves it for inspection).
    /// SIGTERM, expecting a clean exit and Berth's own PostgreSQL gone with it (within 10 s).
    pub async fn terminate_cleanly(&mut self, when: &str) {
        let status = self.terminate();
        assert!(
            status.success(),
            "{when}: exit status {status}; log:\n{}",
            self.server.log_text()
        );
        let data = self.server.data_dir();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !system_postgres_processes(&data).is_empty() {
            assert!(
                Instant::now() < deadline,
                "{when}: PostgreSQL of {} still runs: pids {:?}",
                data.display(),
                system_postgres_processes(&data)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn remove_dir(self) {
        let dir = self.server.dir.clone();
        drop(self);
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl Drop for Dedicated {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            send_signal(child.id(), libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            // A PostgreSQL orphaned by a SIGKILLed berth would outlive the test: stop it.
            for pid in system_postgres_processes(&self.server.data_dir()) {
                send_signal(pid as u32, libc::SIGQUIT);
            }
            eprintln!(
                "dedicated server directory left for inspection: {}",
                self.server.dir.display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP, for what a well-behaved client cannot send
// ---------------------------------------------------------------------------------------------

/// Sends `request` verbatim and returns the status and the whole response.
pub fn raw_http(addr: SocketAddr, request: &[u8]) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    // The server may answer (and close) before reading everything: keep what it said.
    let _ = stream.write_all(request);
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no HTTP status in {:?}", &text[..text.len().min(200)]),
            )
        })?;
    Ok((status, text))
}

// ---------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------

/// An HTTP client for one server. Make one per test: a client must not outlive the test's
/// runtime.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(server: &Server) -> Api {
        Api::build(server, None)
    }

    /// A client whose connections come from `127.0.0.<last>`, so failed logins it makes are
    /// counted against an address of its own.
    pub fn from_ip(server: &Server, last: u8) -> Api {
        assert!(last > 1, "127.0.0.1 is shared by every test");
        Api::build(server, Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))))
    }

    fn build(server: &Server, local: Option<IpAddr>) -> Api {
        let http = reqwest::Client::builder()
            .local_address(local)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            // Below the server's idle timeout (75 s): a pooled connection the server has just
            // closed is never reused (that request fails with IncompleteMessage; it did once,
            // after a long schemathesis run).
            .pool_idle_timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Api {
            http,
            base: server.base.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> RequestBuilder {
        self.post(path).json(body)
    }

    pub fn put_json(&self, path: &str, body: &Value) -> RequestBuilder {
        self.request(Method::PUT, path).json(body)
    }

    pub fn patch_json(&self, path: &str, body: &Value) -> RequestBuilder {
        self.request(Method::PATCH, path).json(body)
    }
}

/// Credentials on a request.
pub trait Creds: Sized {
    fn api_key(self, key: &str) -> Self;
    fn session(self, cookie: &str) -> Self;
    fn origin(self, origin: &str) -> Self;
}

impl Creds for RequestBuilder {
    fn api_key(self, key: &str) -> Self {
        self.header("authorization", format!("Api-Key {key}"))
    }

    fn session(self, cookie: &str) -> Self {
        self.header("cookie", format!("berth_session={cookie}"))
    }

    fn origin(self, origin: &str) -> Self {
        self.header("origin", origin)
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body as JSON, or `Null` when it is not JSON.
    pub json: Value,
}

pub async fn send(rb: RequestBuilder) -> Resp {
    let resp = rb.send().await.expect("sending the request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("reading the body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn request_id(&self) -> Option<&str> {
        self.header("x-request-id")
    }

    /// Asserts the status; the message shows the whole response.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Self {
        assert_eq!(
            self.status, status,
            "unexpected status; response: {self:#?}"
        );
        self
    }

    /// Asserts the status and the standard error body `{error, message, request_id}`, whose
    /// request id must be the response's `x-request-id`.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) -> &Self {
        self.expect(status);
        if let Err(e) = self.check_error_body(code) {
            panic!("{e}; response: {self:#?}");
        }
        self
    }

    /// Checks the error body without panicking (for table-driven tests).
    pub fn check_error_body(&self, code: &str) -> Result<(), String> {
        let body = self
            .json
            .as_object()
            .ok_or_else(|| format!("error body is not a JSON object: {:?}", self.text))?;
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort();
        if keys != ["error", "message", "request_id"] {
            return Err(format!("error body keys are {keys:?}"));
        }
        if self.json["error"] != code {
            return Err(format!(
                "error is {}, expected {code:?}",
                self.json["error"]
            ));
        }
        if self.json["message"].as_str().is_none_or(str::is_empty) {
            return Err("error message is empty".into());
        }
        let rid = self.json["request_id"].as_str().unwrap_or_default();
        if rid.is_empty() || Some(rid) != self.request_id() {
            return Err(format!(
                "body request_id {rid:?} differs from x-request-id {:?}",
                self.request_id()
            ));
        }
        Ok(())
    }

    /// The session cookie this response sets: its value and its attributes.
    pub fn set_cookie(&self) -> Option<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.trim_start().starts_with("berth_session="))
            .map(SetCookie::parse)
    }
}

#[derive(Debug, Clone)]
pub struct SetCookie {
    pub value: String,
    /// Attribute names and values, names lowercased (`httponly` → `""`).
    pub attrs: Vec<(String, String)>,
}

impl SetCookie {
    fn parse(header: &str) -> SetCookie {
        let mut parts = header.split(';');
        let (_, value) = parts.next().unwrap().trim().split_once('=').unwrap();
        let attrs = parts
            .map(|p| {
                let p = p.trim();
                match p.split_once('=') {
                    Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
                    None => (p.to_ascii_lowercase(), String::new()),
                }
            })
            .collect();
        SetCookie {
            value: value.to_owned(),
            attrs,
        }
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Common flows
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password: String,
}

/// The JSON body of a password sign-in (`/auth/token`, `/auth/login`).
pub fn login_body(login: &str, password: &str) -> Value {
    json!({"username": login, "password": password})
}

/// A token pair from `POST /api/v1/auth/token` (must succeed).
pub async fn token_pair(api: &Api, username: &str, password: &str) -> Value {
    let r = send(api.post_json(
        "/api/v1/auth/token",
        &json!({"username": username, "password": password}),
    ))
    .await;
    r.expect(200);
    r.json.clone()
}

/// A browser session for `login`: the cookie value.
pub async fn session_of(api: &Api, login: &str, password: &str) -> String {
    let r = send(api.post_json(
        "/api/v1/auth/login",
        &json!({"login": login, "password": password}),
    ))
    .await;
    r.expect(200);
    r.set_cookie().expect("login sets the session cookie").value
}

/// Decodes one base64url part of a JWT as JSON.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("JWT part");
    serde_json::from_slice(&B64.decode(part).expect("base64url")).expect("JSON")
}

pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

pub fn b64_decode(s: &str) -> Vec<u8> {
    B64.decode(s).expect("base64url")
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `unix` seconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(unix: i64) -> String {
    // Days to civil date (H. Hinnant's algorithm).
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The ids of a list page's results.
pub fn ids(page: &Value) -> Vec<String> {
    page["results"]
        .as_array()
        .expect("a list page")
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}
