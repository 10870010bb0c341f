//! The local engine driven only through the `Engine` trait, as the job code drives it, on the
//! PostgreSQL 15 binaries installed on this machine: provision, observe, stop, start with a new
//! certificate, destroy, each repeated to show it is idempotent. When run as root, clusters run
//! as the `postgres` user, so the test works in its own 0755 directory under /tmp.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::{
    memory_class, BackupSettings, Engine, InstanceSpec, LocalEngine, LocalEngineConfig, Observed,
    Owner, RecoveryTarget, Retention, Tls,
};
use sqlx::{ConnectOptions, Connection};
use uuid::Uuid;

/// A fresh directory; kills a postmaster a failed test left in it and removes it on drop.
struct TestDir {
    path: PathBuf,
}

impl TestDir {
    fn new(name: &str) -> TestDir {
        let path = PathBuf::from(format!("/tmp/berth-engine-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create test dir");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("chmod test dir");
        TestDir { path }
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let Ok(dirs) = std::fs::read_dir(self.path.join("instances")) else {
            let _ = std::fs::remove_dir_all(&self.path);
            return;
        };
        for data in dirs.flatten().map(|e| e.path().join("pgdata")) {
            let pid = std::fs::read_to_string(data.join("postmaster.pid"))
                .ok()
                .and_then(|t| t.lines().next()?.trim().parse::<i32>().ok());
            // Only a process that is that cluster's postmaster (never a reused pid).
            if let Some(pid) = pid.filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c == data)
            }) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Signs in as the owner over TLS and answers `current_user`.
async fn whoami(port: u16, password: &str) -> Result<String, sqlx::Error> {
    let mut conn = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("app")
        .password(password)
        .database("app")
        .ssl_mode(sqlx::postgres::PgSslMode::Require)
        .disable_statement_logging()
        .connect()
        .await?;
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(user)
}

fn engine(dir: &TestDir) -> Arc<dyn Engine> {
    Arc::new(
        LocalEngine::new(LocalEngineConfig {
            root: dir.path.join("instances"),
            templates: dir.path.join("templates"),
            listen_addresses: "127.0.0.1".into(),
            run_as: berth_pg::run_as_for_current_process().expect("postgres user when root"),
            backups: BackupSettings {
                repository: dir.path.join("backups/repository"),
                work_dir: dir.path.join("backups"),
                archive_timeout_secs: 1,
                process_max: 2,
            },
        })
        .expect("pgBackRest installed"),
    )
}

#[tokio::test]
async fn local_engine_through_the_trait() {
    let dir = TestDir::new("trait");
    let engine = engine(&dir);
    assert!(engine.versions().contains(&15), "{:?}", engine.versions());

    let ca = berth_tls::CertificateAuthority::generate("test CA").unwrap();
    let localhost = [std::net::Ipv4Addr::LOCALHOST.into()];
    let cert = ca
        .issue_server_cert("test", &["localhost".to_owned()], &localhost)
        .unwrap();
    let tls = Tls {
        cert_pem: &cert.cert_pem,
        key_pem: &cert.key_pem,
    };
    let password = berth_tls::generate_password();
    let verifier = berth_tls::scram_sha256_verifier(&password);
    let owner = Owner {
        username: "app",
        database: "app",
        password_verifier: &verifier,
    };
    let spec = InstanceSpec {
        id: Uuid::now_v7(),
        major: 15,
        port: free_port(),
        memory: memory_class("256MB").unwrap(),
    };
    let id = spec.id;

    // Nothing yet: stopping or destroying what is not there is not an error.
    assert_eq!(engine.observe(id).await.unwrap(), Observed::Stopped);
    engine.stop(id).await.unwrap();
    assert!(engine.inventory().await.unwrap().is_empty());

    engine.provision(&spec, owner, tls).await.unwrap();
    assert_eq!(engine.observe(id).await.unwrap(), Observed::Running);
    // Nobody over TCP until told from where.
    assert!(whoami(spec.port, &password).await.is_err());
    let here = ["127.0.0.1/32".to_owned()];
    engine.set_access(id, &here).await.unwrap();
    assert_eq!(whoami(spec.port, &password).await.unwrap(), "app");
    // Provisioning again (a job interrupted after it), then access again, changes nothing.
    engine.provision(&spec, owner, tls).await.unwrap();
    engine.set_access(id, &here).await.unwrap();
    assert_eq!(whoami(spec.port, &password).await.unwrap(), "app");
    assert_eq!(engine.inventory().await.unwrap(), vec![id]);

    engine.stop(id).await.unwrap();
    assert_eq!(engine.observe(id).await.unwrap(), Observed::Stopped);
    assert!(whoami(spec.port, &password).await.is_err());
    engine.stop(id).await.unwrap();

    // Started with another certificate and a bigger memory class: the data stays.
    let cert2 = ca
        .issue_server_cert("test", &["localhost".to_owned()], &localhost)
        .unwrap();
    let tls2 = Tls {
        cert_pem: &cert2.cert_pem,
        key_pem: &cert2.key_pem,
    };
    let bigger = InstanceSpec {
        memory: memory_class("512MB").unwrap(),
        ..spec
    };
    engine.start(&bigger, tls2).await.unwrap();
    engine.start(&bigger, tls2).await.unwrap();
    assert_eq!(engine.observe(id).await.unwrap(), Observed::Running);
    assert_eq!(whoami(spec.port, &password).await.unwrap(), "app");

    // Parameters over the memory class's: reloaded at once, or waiting for a restart; a value
    // PostgreSQL refuses leaves the previous ones, also for the next start.
    let live = |names: &'static [&'static str]| {
        let engine = &engine;
        let bigger = &bigger;
        async move {
            let mut got = engine.parameters(bigger, names).await.unwrap();
            got.sort_by(|a, b| a.name.cmp(&b.name));
            got.into_iter()
                .map(|p| (p.name, p.current, p.pending_restart))
                .collect::<Vec<_>>()
        }
    };
    let setting = |n: &str, v: &str| (n.to_owned(), v.to_owned());
    assert_eq!(
        live(&["shared_buffers", "work_mem"]).await,
        [
            ("shared_buffers".into(), "128MB".into(), false),
            ("work_mem".into(), "4MB".into(), false)
        ],
        "the 512MB class's"
    );
    // Refused before any user setting existed: nothing of it stays for the next start.
    assert!(engine
        .set_parameters(&bigger, &[setting("work_mem", "lots")])
        .await
        .is_err());
    let user_file = dir
        .path
        .join("instances")
        .join(id.to_string())
        .join("pgdata/berth.user.conf");
    let left = std::fs::read_to_string(&user_file).unwrap_or_default();
    assert!(!left.contains("lots"), "{left}");
    let mine = [
        setting("work_mem", "12MB"),
        setting("shared_buffers", "96MB"),
    ];
    engine.set_parameters(&bigger, &mine).await.unwrap();
    assert_eq!(
        live(&["shared_buffers", "work_mem"]).await,
        [
            ("shared_buffers".into(), "128MB".into(), true),
            ("work_mem".into(), "12MB".into(), false)
        ]
    );
    let refused = engine
        .set_parameters(&bigger, &[setting("work_mem", "plenty")])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("PostgreSQL refused") && refused.contains("work_mem"),
        "{refused}"
    );
    let missing = engine
        .set_parameters(
            &bigger,
            &[setting("shared_preload_libraries", "no_such_lib")],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(missing.contains("not installed"), "{missing}");
    engine.stop(id).await.unwrap();
    engine.start(&bigger, tls2).await.unwrap();
    assert_eq!(
        live(&["shared_buffers", "work_mem"]).await,
        [
            ("shared_buffers".into(), "96MB".into(), false),
            ("work_mem".into(), "12MB".into(), false)
        ]
    );

    engine.destroy(id).await.unwrap();
    assert_eq!(engine.observe(id).await.unwrap(), Observed::Stopped);
    assert!(engine.inventory().await.unwrap().is_empty());
    engine.destroy(id).await.unwrap();
}

async fn owner_connection(port: u16, password: &str) -> sqlx::PgConnection {
    sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("app")
        .password(password)
        .database("app")
        .ssl_mode(sqlx::postgres::PgSslMode::Require)
        .disable_statement_logging()
        .connect()
        .await
        .expect("owner connects")
}

/// Backups, the archive and a point-in-time restore into a second instance, through the trait.
#[tokio::test]
async fn backup_and_point_in_time_restore_through_the_trait() {
    let dir = TestDir::new("backup");
    let engine = engine(&dir);
    let ca = berth_tls::CertificateAuthority::generate("test CA").unwrap();
    let localhost = [std::net::Ipv4Addr::LOCALHOST.into()];
    let cert = ca
        .issue_server_cert("test", &["localhost".to_owned()], &localhost)
        .unwrap();
    let tls = Tls {
        cert_pem: &cert.cert_pem,
        key_pem: &cert.key_pem,
    };
    let password = berth_tls::generate_password();
    let verifier = berth_tls::scram_sha256_verifier(&password);
    let owner = Owner {
        username: "app",
        database: "app",
        password_verifier: &verifier,
    };
    let spec = InstanceSpec {
        id: Uuid::now_v7(),
        major: 15,
        port: free_port(),
        memory: memory_class("256MB").unwrap(),
    };
    engine.provision(&spec, owner, tls).await.unwrap();
    let here = ["127.0.0.1/32".to_owned()];
    engine.set_access(spec.id, &here).await.unwrap();
    assert!(engine.backups(spec.id).await.unwrap().is_empty());
    let noop = |_: f32| {};
    engine
        .backup(
            &spec,
            berth_types::BackupType::Full,
            Retention::FullBackups(2),
            &noop,
            berth_engine::Priority::Background,
        )
        .await
        .unwrap();
    let backups = engine.backups(spec.id).await.unwrap();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let full = backups[0].label.clone();

    let mut conn = owner_connection(spec.port, &password).await;
    sqlx::query("CREATE TABLE t (x int)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (1), (2)")
        .execute(&mut conn)
        .await
        .unwrap();
    let noted: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO t VALUES (3)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("DROP TABLE t")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let sealed = engine.seal_archive(&spec).await.unwrap();
    assert!(sealed.at > noted);
    assert!(engine
        .archive_state(&spec)
        .await
        .unwrap()
        .last_archived_wal
        .is_some());

    let new_password = berth_tls::generate_password();
    let new_verifier = berth_tls::scram_sha256_verifier(&new_password);
    let new_owner = Owner {
        password_verifier: &new_verifier,
        ..owner
    };
    let restored = InstanceSpec {
        id: Uuid::now_v7(),
        port: free_port(),
        ..spec
    };
    let target = RecoveryTarget::Time {
        at: noted,
        from: full.clone(),
    };
    let seen = std::sync::Mutex::new(Vec::new());
    let progress = |p: f32| seen.lock().unwrap().push(p);
    let recovered = engine
        .restore(&restored, spec.id, &target, new_owner, tls, &progress)
        .await
        .unwrap();
    assert!(recovered.time.is_some_and(|t| t <= noted), "{recovered:?}");
    assert!(recovered.lsn.is_some());
    assert!(
        seen.lock().unwrap().iter().any(|p| *p > 99.0),
        "progress reported"
    );
    engine.set_access(restored.id, &here).await.unwrap();
    let mut conn = owner_connection(restored.port, &new_password).await;
    let rows: Vec<i32> = sqlx::query_scalar("SELECT x FROM t ORDER BY x")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows, vec![1, 2]);
    conn.close().await.unwrap();
    // Repeating it (a job interrupted after it) changes nothing.
    engine
        .restore(&restored, spec.id, &target, new_owner, tls, &progress)
        .await
        .unwrap();

    // The source's backups outlive it until they are forgotten.
    engine.destroy(spec.id).await.unwrap();
    assert_eq!(engine.backups(spec.id).await.unwrap().len(), 1);
    engine.forget_backups(spec.id).await.unwrap();
    assert!(engine.backups(spec.id).await.unwrap().is_empty());
    engine.forget_backups(spec.id).await.unwrap();
    engine.destroy(restored.id).await.unwrap();
    engine.forget_backups(restored.id).await.unwrap();
}
