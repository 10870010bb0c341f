//! Checks this crate's output against a real PostgreSQL 15 and libpq: roles created with our
//! SCRAM verifiers log in with their passwords (and only with them), and a cluster serving a
//! certificate from our CA, TLS-only, is reachable with `sslmode=verify-full` and our `ca.pem`,
//! and not without TLS, with another CA, or under a host name the certificate does not name.
//!
//! One test, one cluster: starting PostgreSQL dominates the cost. Runs as the `postgres` user
//! when the tests run as root, so everything lives under a 0755 directory in /tmp.

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use berth_pg::{run_as_for_current_process, stop_data_dir, Cluster, ClusterSpec, PgBinaries};
use berth_tls::{generate_password, scram_sha256_verifier, CertificateAuthority};

const TIMEOUT: Duration = Duration::from_secs(60);
const PSQL: &str = "/usr/bin/psql";
const PUBLIC_HOST: &str = "db.example.com";

/// A fresh directory; stops a postmaster left behind by a failed assertion and removes
/// everything on drop.
struct TestDir {
    path: PathBuf,
}

impl TestDir {
    fn new() -> TestDir {
        let path = PathBuf::from(format!("/tmp/berth-tls-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod test dir");
        TestDir { path }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let data = self.path.join("data");
        // Drop may run on a runtime worker, where a new runtime cannot block: use a thread.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(stop_data_dir(&data, TIMEOUT));
            }
        })
        .join();
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Runs one statement through psql; stdout on success, stderr on failure. Inherited `PG*`
/// variables are dropped so only `conninfo` and `password` count.
fn psql(conninfo: &str, password: Option<&str>, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(PSQL);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            cmd.env_remove(name);
        }
    }
    cmd.env("PGCONNECT_TIMEOUT", "10")
        .env("PGPASSFILE", "/dev/null")
        .args(["-X", "-w", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .arg(conninfo);
    if let Some(password) = password {
        cmd.env("PGPASSWORD", password);
    }
    let out = cmd.output().expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

fn write_file(path: &Path, contents: &str, mode: u32, owner: Option<(u32, u32)>) {
    std::fs::write(path, contents).expect("write file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_accepts_our_verifiers_and_certificates() {
    let bins = PgBinaries::discover_all()
        .into_iter()
        .find(|b| b.major == 15)
        .expect("PostgreSQL 15 server binaries");
    let run_as = run_as_for_current_process().expect("postgres user exists when running as root");
    let owner = run_as.as_ref().map(|u| (u.uid, u.gid));
    let dir = TestDir::new();
    let port = free_port();
    let mut spec = ClusterSpec::new(
        dir.path.join("data"),
        dir.path.join("run"),
        port,
        dir.path.join("postgres.log"),
    );
    Cluster::init(&bins, &spec, run_as.as_ref(), "postgres")
        .await
        .expect("initdb");

    // TLS from our CA, TLS-only scram-sha-256 over TCP; the Unix socket stays trusted for setup.
    let ca = CertificateAuthority::generate("Berth test CA").expect("CA");
    let issued = ca
        .issue_server_cert(
            "instance.berth",
            &["localhost".to_string(), PUBLIC_HOST.to_string()],
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
        )
        .expect("server certificate");
    let data = &spec.data_dir;
    write_file(&data.join("server.crt"), &issued.cert_pem, 0o644, owner);
    write_file(&data.join("server.key"), &issued.key_pem, 0o600, owner);
    write_file(
        &data.join("pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
        0o600,
        owner,
    );
    let ca_pem = dir.path.join("ca.pem");
    write_file(&ca_pem, ca.cert_pem(), 0o644, None);
    let other_ca = CertificateAuthority::generate("Berth test CA").expect("other CA");
    let other_ca_pem = dir.path.join("other-ca.pem");
    write_file(&other_ca_pem, other_ca.cert_pem(), 0o644, None);

    spec.listen_addresses = "127.0.0.1".into();
    spec.settings = [
        ("ssl", "on"),
        ("ssl_cert_file", "server.crt"),
        ("ssl_key_file", "server.key"),
        ("password_encryption", "scram-sha-256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut cluster = Cluster::start(&bins, &spec, run_as.as_ref(), TIMEOUT)
        .await
        .expect("start with TLS");

    let admin = format!(
        "host={} port={port} user=postgres dbname=postgres",
        spec.socket_dir.display()
    );
    let sql = |statement: &str| {
        psql(&admin, None, statement).unwrap_or_else(|e| panic!("{statement}: {e}"))
    };
    let tls = |user: &str, extra: &str| {
        format!(
            "host=127.0.0.1 port={port} user={user} dbname=postgres sslmode=verify-full \
             sslrootcert={} {extra}",
            ca_pem.display()
        )
    };

    // The owner role: a generated password, set through its verifier only.
    let password = generate_password();
    let verifier = scram_sha256_verifier(&password);
    assert!(!verifier.contains('\''));
    sql(&format!("CREATE ROLE alice LOGIN PASSWORD '{verifier}'"));
    assert_eq!(
        sql("SELECT rolpassword FROM pg_authid WHERE rolname = 'alice'"),
        verifier,
        "stored as given, not hashed again"
    );
    assert_eq!(
        psql(
            &tls("alice", ""),
            Some(&password),
            "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ),
        Ok("t|TLSv1.3".to_string())
    );
    assert_eq!(
        psql(&tls("alice", ""), Some(&password), "select 1"),
        Ok("1".into())
    );

    // The connection URL form Berth hands out, password inline: it needs no escaping.
    let url = format!(
        "postgresql://alice:{password}@127.0.0.1:{port}/postgres?sslmode=verify-full&sslrootcert={}",
        ca_pem.display()
    );
    assert_eq!(psql(&url, None, "select 1"), Ok("1".into()));

    // The DNS names in the certificate verify too (libpq checks `host`, connects to hostaddr).
    for host in ["localhost", PUBLIC_HOST] {
        let conninfo = tls("alice", &format!("host={host} hostaddr=127.0.0.1"));
        assert_eq!(
            psql(&conninfo, Some(&password), "select 1"),
            Ok("1".into()),
            "{host}"
        );
    }

    // Wrong password, no password.
    let err = psql(&tls("alice", ""), Some("not-the-password"), "select 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");
    let err = psql(&tls("alice", ""), Some(&generate_password()), "select 1").unwrap_err();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(psql(&tls("alice", ""), None, "select 1").is_err());

    // No TLS, no entry.
    let plain = format!("host=127.0.0.1 port={port} user=alice dbname=postgres sslmode=disable");
    let err = psql(&plain, Some(&password), "select 1").unwrap_err();
    assert!(
        err.contains("no pg_hba.conf entry") && err.contains("no encryption"),
        "{err}"
    );

    // A certificate from another CA, and a host name the certificate does not name.
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=alice dbname=postgres sslmode=verify-full sslrootcert={}",
        other_ca_pem.display()
    );
    let err = psql(&conninfo, Some(&password), "select 1").unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    let conninfo = tls("alice", "host=other.example.com hostaddr=127.0.0.1");
    let err = psql(&conninfo, Some(&password), "select 1").unwrap_err();
    assert!(err.contains("does not match host name"), "{err}");

    // Re-credentialing: the old password stops working.
    let new_password = generate_password();
    sql(&format!(
        "ALTER ROLE alice PASSWORD '{}'",
        scram_sha256_verifier(&new_password)
    ));
    assert_eq!(
        psql(&tls("alice", ""), Some(&new_password), "select 1"),
        Ok("1".into())
    );
    assert!(psql(&tls("alice", ""), Some(&password), "select 1").is_err());

    // Passwords people type: quotes and backslashes, and non-ASCII text that libpq normalises
    // with SASLprep (no-break space, soft hyphen, the "fi" ligature) or, when SASLprep refuses
    // it (a control character), sends as raw bytes: our verifier agrees with libpq every time.
    let typed = [
        "it's a \\ \"test\" $1",
        "p\u{00E4}ss w\u{00F6}rd",
        "no\u{00A0}break soft\u{00AD}hyphen \u{FB01}sh",
        "bell\u{7}char",
    ];
    for (i, typed_password) in typed.iter().enumerate() {
        let role = format!("typed{i}");
        sql(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{}'",
            scram_sha256_verifier(typed_password)
        ));
        assert_eq!(
            psql(&tls(&role, ""), Some(typed_password), "select 1"),
            Ok("1".into()),
            "{typed_password:?}"
        );
    }
    // SASLprep equivalents log in too; a merely similar password does not.
    assert_eq!(
        psql(
            &tls("typed2", ""),
            Some("no break softhyphen fish"),
            "select 1"
        ),
        Ok("1".into())
    );
    assert!(psql(
        &tls("typed0", ""),
        Some("it's a \\ \"test\" $2"),
        "select 1"
    )
    .is_err());

    cluster.stop(TIMEOUT).await.expect("stop");
}
