//! Runs real PostgreSQL clusters with the server binaries installed on this machine (PostgreSQL 15
//! under /usr/lib/postgresql/15/bin). When run as root, clusters run as the `postgres` user, so
//! each test works in its own 0755 directory under /tmp.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_pg::{
    run_as_for_current_process, stop_data_dir, Cluster, ClusterSpec, PgBinaries, PgError, RunAs,
};

const TIMEOUT: Duration = Duration::from_secs(60);
const PORT: u16 = 5432; // socket-only clusters in separate socket dirs cannot clash

fn bins() -> PgBinaries {
    PgBinaries::discover_all()
        .into_iter()
        .find(|b| b.major == 15)
        .expect("PostgreSQL 15 server binaries")
}

fn run_as() -> Option<RunAs> {
    run_as_for_current_process().expect("postgres user exists when running as root")
}

/// A fresh directory for one test; kills a leftover postmaster and removes everything on drop.
struct TestDir {
    path: PathBuf,
}

impl TestDir {
    fn new(name: &str) -> TestDir {
        let path = PathBuf::from(format!("/tmp/berth-pg-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod test dir");
        TestDir { path }
    }

    fn spec(&self) -> ClusterSpec {
        ClusterSpec::new(
            self.path.join("data"),
            self.path.join("run"),
            PORT,
            self.path.join("log/postgres.log"),
        )
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        // Only if a test failed half-way: never leave a postmaster behind.
        let data = self.path.join("data");
        if let Ok(text) = std::fs::read_to_string(data.join("postmaster.pid")) {
            if let Some(pid) = text
                .lines()
                .next()
                .and_then(|l| l.trim().parse::<i32>().ok())
            {
                let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).ok();
                if cwd.is_some_and(|c| c == data) {
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

async fn init(spec: &ClusterSpec) {
    Cluster::init(&bins(), spec, run_as().as_ref(), "postgres")
        .await
        .expect("initdb");
}

async fn start(spec: &ClusterSpec) -> Cluster {
    Cluster::start(&bins(), spec, run_as().as_ref(), TIMEOUT)
        .await
        .expect("start")
}

fn pid_file_status(spec: &ClusterSpec) -> Option<String> {
    let text = std::fs::read_to_string(spec.data_dir.join("postmaster.pid")).ok()?;
    text.lines().nth(7).map(|s| s.trim().to_string())
}

/// Ready in the pid file, socket present, and a real query through psql.
fn assert_accepts_connections(spec: &ClusterSpec) {
    assert_eq!(pid_file_status(spec).as_deref(), Some("ready"));
    assert!(spec
        .socket_dir
        .join(format!(".s.PGSQL.{}", spec.port))
        .exists());
    let psql = bins().bindir.join("psql");
    let psql = if psql.exists() {
        psql
    } else {
        PathBuf::from("psql")
    };
    let out = Command::new(psql)
        .arg("-h")
        .arg(&spec.socket_dir)
        .args([
            "-p",
            &spec.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-Atc",
            "select 1",
        ])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}

fn process_exists(pid: u32) -> bool {
    // Zombies count as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    })
}

#[test]
fn discovers_postgres_15() {
    let all = PgBinaries::discover_all();
    let pg15 = all
        .iter()
        .find(|b| b.major == 15)
        .expect("finds PostgreSQL 15");
    assert_eq!(pg15.bindir, PathBuf::from("/usr/lib/postgresql/15/bin"));
    assert!(pg15.version.starts_with("15."), "{}", pg15.version);
    assert!(pg15.postgres().is_file() && pg15.initdb().is_file());
    let newest = PgBinaries::discover().expect("discover");
    assert!(newest.major >= 15);
    // Deduplicated by canonical bindir.
    let mut dirs: Vec<_> = all.iter().map(|b| &b.bindir).collect();
    dirs.dedup();
    assert_eq!(dirs.len(), all.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn init_start_stop_and_start_again() {
    let dir = TestDir::new("lifecycle");
    let spec = dir.spec();
    init(&spec).await;
    assert!(spec.data_dir.join("PG_VERSION").is_file());
    let mode = std::fs::metadata(&spec.data_dir)
        .expect("data dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    let mut cluster = start(&spec).await;
    assert!(cluster.is_running());
    assert!(!cluster.is_adopted());
    assert_accepts_connections(&spec);
    cluster.stop(TIMEOUT).await.expect("stop");
    assert!(!cluster.is_running());
    assert!(!spec.data_dir.join("postmaster.pid").exists());
    cluster.stop(TIMEOUT).await.expect("stopping twice is fine");

    // A second init is a no-op; the initialised directory starts again.
    init(&spec).await;
    let mut again = start(&spec).await;
    assert_ne!(again.pid(), cluster.pid());
    assert_accepts_connections(&spec);
    again.stop(TIMEOUT).await.expect("stop");
    assert!(!stop_data_dir(&spec.data_dir, TIMEOUT)
        .await
        .expect("stop_data_dir"));
}

#[tokio::test(flavor = "multi_thread")]
async fn adopts_a_running_postmaster() {
    let dir = TestDir::new("adopt");
    let spec = dir.spec();
    init(&spec).await;
    let pid = start(&spec).await.detach();

    let mut adopted = start(&spec).await;
    assert_eq!(adopted.pid(), pid);
    assert!(adopted.is_adopted());
    assert!(adopted.is_running());
    assert_accepts_connections(&spec);
    adopted.stop(TIMEOUT).await.expect("stop adopted");
    assert!(!adopted.is_running());
    assert!(!process_exists(pid));

    // Without a handle at all.
    let pid = start(&spec).await.detach();
    assert!(stop_data_dir(&spec.data_dir, TIMEOUT)
        .await
        .expect("stop_data_dir"));
    assert!(!process_exists(pid));
    assert!(!stop_data_dir(&spec.data_dir, TIMEOUT)
        .await
        .expect("stop_data_dir"));
}

#[tokio::test(flavor = "multi_thread")]
async fn removes_stale_lock_files() {
    let dir = TestDir::new("stale");
    let spec = dir.spec();
    init(&spec).await;
    let mut dead_pid = 999_999;
    while process_exists(dead_pid) {
        dead_pid += 1;
    }
    let data = spec.data_dir.display();
    let live_non_postgres = std::process::id();
    for pid in [dead_pid, live_non_postgres] {
        let pid_file = format!("{pid}\n{data}\n1700000000\n{PORT}\n/tmp\n\n  0 0\nready   \n");
        std::fs::write(spec.data_dir.join("postmaster.pid"), pid_file).expect("write pid file");
        std::fs::create_dir_all(&spec.socket_dir).expect("socket dir");
        let lock = format!("{pid}\n{data}\n1700000000\n{PORT}\n/tmp\n");
        std::fs::write(spec.socket_dir.join(format!(".s.PGSQL.{PORT}.lock")), lock)
            .expect("write socket lock");

        let mut cluster = start(&spec).await;
        assert_ne!(cluster.pid(), pid);
        assert!(!cluster.is_adopted());
        assert_accepts_connections(&spec);
        cluster.stop(TIMEOUT).await.expect("stop");
    }
    // A stale pid file is no reason for stop_data_dir to signal anything.
    let pid_file =
        format!("{live_non_postgres}\n{data}\n1700000000\n{PORT}\n/tmp\n\n  0 0\nready   \n");
    std::fs::write(spec.data_dir.join("postmaster.pid"), pid_file).expect("write pid file");
    assert!(!stop_data_dir(&spec.data_dir, TIMEOUT)
        .await
        .expect("stop_data_dir"));
}

#[tokio::test(flavor = "multi_thread")]
async fn recovers_after_sigkill() {
    let dir = TestDir::new("sigkill");
    let spec = dir.spec();
    init(&spec).await;
    let mut cluster = start(&spec).await;
    let pid = cluster.pid();
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    for _ in 0..200 {
        if !cluster.is_running() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!cluster.is_running());
    assert!(
        spec.data_dir.join("postmaster.pid").exists(),
        "SIGKILL leaves the pid file"
    );

    let mut recovered = start(&spec).await;
    assert_ne!(recovered.pid(), pid);
    assert_accepts_connections(&spec);
    recovered.stop(TIMEOUT).await.expect("stop");
    let log = std::fs::read_to_string(&spec.log_file).expect("log");
    assert!(
        log.contains("not properly shut down"),
        "crash recovery expected in log:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redoes_interrupted_initdb_but_never_deletes_foreign_files() {
    let dir = TestDir::new("interrupted");
    let spec = dir.spec();
    // What a killed initdb leaves: PGDATA layout without PG_VERSION.
    std::fs::create_dir_all(spec.data_dir.join("base/1")).expect("mkdir");
    std::fs::create_dir_all(spec.data_dir.join("pg_wal")).expect("mkdir");
    std::fs::write(spec.data_dir.join("postgresql.conf"), "# half written").expect("write");
    init(&spec).await;
    let mut cluster = start(&spec).await;
    assert_accepts_connections(&spec);
    cluster.stop(TIMEOUT).await.expect("stop");

    let other = ClusterSpec::new(
        dir.path.join("home"),
        dir.path.join("run2"),
        PORT,
        dir.path.join("log/2.log"),
    );
    std::fs::create_dir_all(&other.data_dir).expect("mkdir");
    std::fs::write(other.data_dir.join("thesis.tex"), "precious").expect("write");
    let err = Cluster::init(&bins(), &other, run_as().as_ref(), "postgres")
        .await
        .expect_err("refuses");
    assert!(matches!(err, PgError::DataDirNotEmpty { .. }), "{err}");
    assert!(other.data_dir.join("thesis.tex").exists());

    let err = Cluster::start(&bins(), &other, run_as().as_ref(), TIMEOUT)
        .await
        .expect_err("not initialised");
    assert!(matches!(err, PgError::NotInitialized { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_a_data_dir_the_postgres_user_cannot_reach() {
    let Some(user) = run_as() else {
        return; // only meaningful when clusters run as another user
    };
    let dir = TestDir::new("unreachable");
    let private = dir.path.join("private");
    std::fs::create_dir(&private).expect("mkdir");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let spec = ClusterSpec::new(
        private.join("data"),
        dir.path.join("run"),
        PORT,
        dir.path.join("pg.log"),
    );
    let err = Cluster::init(&bins(), &spec, Some(&user), "postgres")
        .await
        .expect_err("unreachable");
    match &err {
        PgError::DirNotReachable { dir, .. } => assert_eq!(dir, &private),
        other => panic!("unexpected error: {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("chmod o+x") && message.contains(&*private.to_string_lossy()),
        "{message}"
    );
    assert!(!Path::new(&spec.data_dir).join("PG_VERSION").exists());
}
