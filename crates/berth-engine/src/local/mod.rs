//! The local engine: each instance is a PostgreSQL cluster under `<root>/<id>/`, copied from a
//! template cluster made once per PostgreSQL major version (copying is much faster than
//! initdb), started by Berth as the `postgres` user when Berth runs as root.
//!
//! Layout of one instance: `pgdata/` (PGDATA), `tls/server.{crt,key}`, `postgres.log`, and a
//! Unix socket directory only the PostgreSQL user can reach, through which Berth administers
//! the instance as its superuser (`trust` for that user on the socket only). None of that
//! shows through the [`Engine`] trait: callers name instances by id and spec only.
//!
//! Every instance archives its WAL from its first start into its own pgBackRest stanza
//! ([`pgbackrest`]); the stanza outlives the instance's directory ([`Engine::destroy`] keeps
//! it) so a deleted instance can be restored until its retention runs out.

mod config;
mod copies;
mod import;
mod logs;
mod pgbackrest;
mod restore;
mod roles;
mod stats;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_pg::{socket_dir_for, Cluster, ClusterSpec, PgBinaries, RunAs};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::{
    io, ArchiveState, BackupRecord, Engine, EngineError, EngineFuture, ExternalDatabase, Imported,
    InstanceSpec, LiveParameter, LogRequest, LogSlice, ManagedDatabase, ManagedRole, Observed,
    Owner, Priority, ProbeFailure, Probed, Progress, Recovered, RecoveryTarget, Retention, Sample,
    Sealed, Tls,
};
use pgbackrest::PgBackRest;

const SUPERUSER: &str = "postgres";
/// Berth's own sessions (and its tools') ignore the timeouts users may set
/// ([`config`]): a checkpoint, a backup's start or a `CREATE DATABASE` may take longer, and a
/// kept session may sit idle.
pub(crate) const UNLIMITED_SESSION_OPTIONS: &str = "-c statement_timeout=0 -c lock_timeout=0 \
     -c idle_in_transaction_session_timeout=0 -c idle_session_timeout=0";
const UNLIMITED_SESSION: [(&str, &str); 4] = [
    ("statement_timeout", "0"),
    ("lock_timeout", "0"),
    ("idle_in_transaction_session_timeout", "0"),
    ("idle_session_timeout", "0"),
];
const START_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct LocalEngineConfig {
    /// Where instance directories live.
    pub root: PathBuf,
    /// Where template clusters live.
    pub templates: PathBuf,
    /// `listen_addresses` of every instance.
    pub listen_addresses: String,
    pub run_as: Option<RunAs>,
    pub backups: BackupSettings,
}

/// Where backups and archived WAL go, and how often WAL is archived when little is written.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// The pgBackRest repository (a directory).
    pub repository: PathBuf,
    /// pgBackRest's configuration, locks, logs and spool.
    pub work_dir: PathBuf,
    /// `archive_timeout`: a WAL segment with any committed transaction in it is archived at
    /// most this long after it was begun. This bounds the recovery point objective.
    pub archive_timeout_secs: u32,
    /// Processes a backup, a restore or a batch of archiving uses.
    pub process_max: u32,
}

pub struct LocalEngine {
    cfg: LocalEngineConfig,
    backrest: PgBackRest,
    bins: Vec<PgBinaries>,
    /// Handles of the clusters this process started or adopted.
    clusters: Mutex<HashMap<Uuid, Cluster>>,
    template_lock: Mutex<()>,
    /// Held while a template copy is made ahead of time (`copies`).
    copies_lock: Mutex<()>,
    /// The statistics connection of each running instance (`stats`).
    samplers: stats::Samplers,
}

impl LocalEngine {
    /// Fails when the backup tool is missing or its directories cannot be made.
    pub fn new(cfg: LocalEngineConfig) -> Result<LocalEngine, EngineError> {
        let mut backrest = PgBackRest::prepare(&cfg.backups, cfg.run_as.as_ref())?;
        backrest.redact(&cfg.root, "<instances>");
        Ok(LocalEngine {
            cfg,
            backrest,
            bins: PgBinaries::discover_all(),
            clusters: Mutex::new(HashMap::new()),
            template_lock: Mutex::new(()),
            copies_lock: Mutex::new(()),
            samplers: stats::Samplers::default(),
        })
    }

    fn bins(&self, major: u32) -> Result<&PgBinaries, EngineError> {
        self.bins
            .iter()
            .find(|b| b.major == major)
            .ok_or(EngineError::VersionNotInstalled(major))
    }

    fn dir(&self, id: Uuid) -> PathBuf {
        self.cfg.root.join(id.to_string())
    }

    fn spec(&self, id: Uuid, port: u16) -> ClusterSpec {
        let dir = self.dir(id);
        let mut spec = ClusterSpec::new(
            dir.join("pgdata"),
            socket_dir_for(&dir.join("run")),
            port,
            dir.join("postgres.log"),
        );
        spec.listen_addresses = self.cfg.listen_addresses.clone();
        let tls = dir.join("tls");
        // Only what users must never change: the memory class's settings and theirs are in
        // files (`config`), which these beat.
        spec.settings = [
            ("ssl", "on".to_owned()),
            (
                "ssl_cert_file",
                tls.join("server.crt").display().to_string(),
            ),
            ("ssl_key_file", tls.join("server.key").display().to_string()),
            ("ssl_min_protocol_version", "TLSv1.2".to_owned()),
            ("password_encryption", "scram-sha-256".to_owned()),
            ("huge_pages", "off".to_owned()),
            ("max_worker_processes", "4".to_owned()),
            ("max_parallel_workers", "2".to_owned()),
            ("log_min_messages", "warning".to_owned()),
            ("wal_level", "replica".to_owned()),
            ("archive_mode", "on".to_owned()),
            (
                "archive_command",
                self.backrest.archive_command(id, &dir.join("pgdata")),
            ),
            (
                "archive_timeout",
                format!("{}s", self.cfg.backups.archive_timeout_secs.max(1)),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        spec
    }

    /// Makes the template cluster of `major` if it does not exist yet.
    ///
    /// The template already holds the owner role (unable to log in until an instance sets its
    /// password) and its database, so an instance needs no `CREATE DATABASE`, which costs
    /// hundreds of milliseconds and leaves the template's pages resident in every instance.
    async fn ensure_template(
        &self,
        major: u32,
        owner: &str,
        database: &str,
    ) -> Result<PathBuf, EngineError> {
        let bins = self.bins(major)?;
        let dir = self.cfg.templates.join(major.to_string());
        let spec = ClusterSpec::new(
            dir.join("pgdata"),
            socket_dir_for(&dir.join("run")),
            5432,
            dir.join("template.log"),
        );
        let prepared = dir.join(format!("prepared-{owner}-{database}"));
        let _guard = self.template_lock.lock().await;
        if prepared.is_file() && spec.data_dir.join("PG_VERSION").is_file() {
            return Ok(spec.data_dir);
        }
        // Said once per template made: what copying costs here.
        std::fs::create_dir_all(&self.cfg.templates)
            .map_err(io(format!("creating {}", self.cfg.templates.display())))?;
        let shared = copies::reflinks_work(&self.cfg.templates);
        tracing::info!(
            reflinks = shared,
            "making the PostgreSQL {major} template; copies of it {}",
            if shared {
                "share blocks with it (reflinks)"
            } else {
                "are full copies (this filesystem has no reflinks: XFS or btrfs would)"
            }
        );
        // Copies made of an earlier template go with it.
        let copies = dir.join("copies");
        if copies.exists() {
            std::fs::remove_dir_all(&copies).map_err(io("removing copies of an old template"))?;
        }
        Cluster::init(bins, &spec, self.cfg.run_as.as_ref(), SUPERUSER).await?;
        let mut cluster =
            Cluster::start(bins, &spec, self.cfg.run_as.as_ref(), START_TIMEOUT).await?;
        let created = create_owner_and_database(&spec, owner, database).await;
        // A clean shutdown checkpoints, so copies of the stopped template are consistent.
        cluster.stop(STOP_TIMEOUT).await?;
        created?;
        std::fs::write(&prepared, b"").map_err(io(format!("writing {}", prepared.display())))?;
        Ok(spec.data_dir)
    }

    /// Brings an instance up: its data directory (from the template), TLS material, access
    /// rules, the running server, and the owner role and database. Safe to repeat.
    async fn provision_cluster(
        &self,
        s: &InstanceSpec,
        owner: Owner<'_>,
        tls: Tls<'_>,
    ) -> Result<(), EngineError> {
        let template = self
            .ensure_template(s.major, owner.username, owner.database)
            .await?;
        let dir = self.dir(s.id);
        let pgdata = dir.join("pgdata");
        std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
        // Reachable by the PostgreSQL user, not listable by anyone else.
        std::fs::set_permissions(&self.cfg.root, std::fs::Permissions::from_mode(0o711))
            .map_err(io("securing the instances directory"))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711))
            .map_err(io("securing the instance directory"))?;
        let began = std::time::Instant::now();
        let copied = !pgdata.join("PG_VERSION").is_file();
        let mut made_ahead = false;
        if copied {
            made_ahead = self.take_copy(s.major, &pgdata);
            if !made_ahead {
                copy_template(&template, &dir).await?;
            }
        }
        let copy_ms = began.elapsed().as_millis();
        self.write_certificate(s.id, tls)?;
        // Until `set_access` says from where, nobody over TCP (a claimed spare's rules were
        // the pool's).
        self.write_access_rules(&pgdata, &[])?;
        // The stanza and the start at once: a new cluster fills its first segment (and
        // archives it) only well after both are done, and each costs a process start.
        let (stanza, started) = tokio::join!(
            async {
                let t = std::time::Instant::now();
                // Once made, not asked about again (asking starts pgBackRest): a claimed
                // spare has its stanza.
                let marker = dir.join("stanza-created");
                let mut r = Ok(());
                if !marker.is_file() {
                    r = self.backrest.create_stanza(s.id, &pgdata).await;
                    if r.is_ok() {
                        r = std::fs::write(&marker, b"").map_err(io("marking the stanza made"));
                    }
                }
                (r, t.elapsed().as_millis())
            },
            async {
                let t = std::time::Instant::now();
                let r = self.start_cluster(s).await;
                (r, t.elapsed().as_millis())
            }
        );
        stanza.0?;
        started.0?;
        let t = std::time::Instant::now();
        self.configure_owner(s, owner).await?;
        tracing::debug!(
            instance = %s.id,
            copied,
            made_ahead,
            copy_ms,
            stanza_ms = stanza.1,
            start_ms = started.1,
            owner_ms = t.elapsed().as_millis(),
            total_ms = began.elapsed().as_millis(),
            "provisioned"
        );
        Ok(())
    }

    /// Locally, only Berth (as the superuser, through a socket directory nobody else can
    /// reach); remote logins from `networks` only, with TLS and SCRAM.
    fn write_access_rules(&self, pgdata: &Path, networks: &[String]) -> Result<(), EngineError> {
        let mut hba = format!("local all {SUPERUSER} trust\n");
        for net in networks {
            // The caller validated them; a stray character must still never reach the file.
            if !net
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b"./:".contains(&b))
            {
                return Err(EngineError::Failed(format!("not a network: {net:?}")));
            }
            hba.push_str(&format!("hostssl all all {net} scram-sha-256\n"));
        }
        self.write_owned(pgdata, "pg_hba.conf", hba.as_bytes(), 0o600)
    }

    /// The error, as tenants may read it (in a failed job's reason and the instance's status
    /// message): without this host's paths.
    fn redacted(&self, e: EngineError) -> EngineError {
        let hide = |text: &str| {
            text.replace(&self.cfg.root.display().to_string(), "<instances>")
                .replace(&self.cfg.templates.display().to_string(), "<templates>")
                .replace(
                    &self.cfg.backups.work_dir.display().to_string(),
                    "<backups>",
                )
        };
        match e {
            EngineError::Busy(m) => EngineError::Busy(hide(&m)),
            EngineError::VersionNotInstalled(v) => EngineError::VersionNotInstalled(v),
            e => EngineError::Failed(hide(&e.to_string())),
        }
    }

    /// Writes the access rules and makes a running server reread them.
    async fn apply_access(&self, id: Uuid, networks: &[String]) -> Result<(), EngineError> {
        let pgdata = self.dir(id).join("pgdata");
        if !pgdata.join("PG_VERSION").is_file() {
            return Err(EngineError::Failed(format!(
                "instance {id} has no data directory"
            )));
        }
        self.write_access_rules(&pgdata, networks)?;
        let mut clusters = self.clusters.lock().await;
        if let Some(c) = clusters.get_mut(&id) {
            if c.is_running() {
                reload(c.pid());
            }
        }
        // (A server not known here rereads the file when it is started or adopted.)
        Ok(())
    }

    /// A superuser connection over the instance's private socket.
    async fn admin_connection(&self, s: &InstanceSpec) -> Result<sqlx::PgConnection, EngineError> {
        let spec = self.spec(s.id, s.port);
        Ok(sqlx::postgres::PgConnectOptions::new()
            .host(&spec.socket_dir.to_string_lossy())
            .port(s.port)
            .username(SUPERUSER)
            .database("postgres")
            .options(UNLIMITED_SESSION)
            .disable_statement_logging()
            .connect()
            .await?)
    }

    /// Replaces the instance's server certificate and key (a running server picks them up at
    /// its next reload, which `start_cluster` sends).
    fn write_certificate(&self, id: Uuid, tls: Tls<'_>) -> Result<(), EngineError> {
        let dir = self.dir(id).join("tls");
        self.write_owned(&dir, "server.crt", tls.cert_pem.as_bytes(), 0o644)?;
        self.write_owned(&dir, "server.key", tls.key_pem.as_bytes(), 0o600)
    }

    /// Starts the instance's server, or adopts it if it is already running.
    async fn start_cluster(&self, s: &InstanceSpec) -> Result<(), EngineError> {
        self.start_cluster_within(s, START_TIMEOUT).await
    }

    /// [`Self::start_cluster`], waiting up to `timeout` for the server to accept connections
    /// (a restored server does so only once it has replayed to a consistent state).
    async fn start_cluster_within(
        &self,
        s: &InstanceSpec,
        timeout: Duration,
    ) -> Result<(), EngineError> {
        let (id, major) = (s.id, s.major);
        let spec = self.spec(id, s.port);
        self.write_memory_settings(&spec.data_dir, s.memory)?;
        if let Some(c) = self.clusters.lock().await.get_mut(&id) {
            if c.is_running() {
                reload(c.pid());
                return Ok(());
            }
        }
        // Not under the lock: a slow crash recovery must not hold up every other instance.
        // (Jobs run one operation per instance at a time, so nobody starts this one meanwhile.)
        let cluster =
            Cluster::start(self.bins(major)?, &spec, self.cfg.run_as.as_ref(), timeout).await?;
        let pid = cluster.pid();
        if cluster.is_adopted() {
            reload(pid);
        }
        self.clusters.lock().await.insert(id, cluster);
        Ok(())
    }

    /// Stops the instance's server (fast shutdown); its data stays.
    async fn stop_cluster(&self, id: Uuid) -> Result<(), EngineError> {
        self.samplers.forget(id);
        let handle = self.clusters.lock().await.remove(&id);
        match handle {
            Some(mut c) => c.stop(STOP_TIMEOUT).await?,
            None => {
                berth_pg::stop_data_dir(&self.dir(id).join("pgdata"), STOP_TIMEOUT).await?;
            }
        }
        Ok(())
    }

    /// Stops the instance and removes everything it had on disk.
    async fn destroy_cluster(&self, id: Uuid) -> Result<(), EngineError> {
        self.stop_cluster(id).await?;
        let dir = self.dir(id);
        // Again if something still wrote into it meanwhile (a server that was only now
        // stopping, a copy of a killed Berth's dying).
        let mut attempt = 0;
        loop {
            match tokio::fs::remove_dir_all(&dir).await {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(io(format!("removing {}", dir.display()))(e)),
            }
        }
        let socket = socket_dir_for(&dir.join("run"));
        if !socket.starts_with(&dir) {
            let _ = std::fs::remove_dir_all(socket);
        }
        Ok(())
    }

    /// Is the instance's postmaster alive? (Reaps it if it died.)
    async fn is_running(&self, id: Uuid) -> bool {
        let mut clusters = self.clusters.lock().await;
        clusters.get_mut(&id).is_some_and(Cluster::is_running)
    }

    /// Ids of the instance directories on disk.
    fn directories(&self) -> Vec<Uuid> {
        std::fs::read_dir(&self.cfg.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn configure_owner(&self, s: &InstanceSpec, o: Owner<'_>) -> Result<(), EngineError> {
        // (A server that was already running, a claimed spare, was told to reread its
        // certificate when it was adopted.)
        let mut conn = self.admin_connection(s).await?;
        // Not CREATEROLE: up to PostgreSQL 15 it lets a role grant itself
        // pg_execute_server_program and run commands as the server's OS user.
        let owner = quote_ident(o.username);
        let verifier = quote_literal(o.password_verifier);
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(o.username)
                .fetch_one(&mut conn)
                .await?;
        let verb = if exists { "ALTER" } else { "CREATE" };
        sqlx::query(&format!(
            "{verb} ROLE {owner} LOGIN CREATEDB NOCREATEROLE NOSUPERUSER PASSWORD {verifier}"
        ))
        .execute(&mut conn)
        .await?;
        let db_exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(o.database)
                .fetch_one(&mut conn)
                .await?;
        if !db_exists {
            sqlx::query(&format!(
                "CREATE DATABASE {} OWNER {owner}",
                quote_ident(o.database)
            ))
            .execute(&mut conn)
            .await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// A pgBackRest backup of the running instance.
    async fn run_backup(
        &self,
        spec: &InstanceSpec,
        kind: berth_types::BackupType,
        retention: Retention,
        progress: &Progress<'_>,
        priority: Priority,
    ) -> Result<(), EngineError> {
        let cs = self.spec(spec.id, spec.port);
        let server = pgbackrest::Server {
            data_dir: &cs.data_dir,
            socket_dir: &cs.socket_dir,
            port: spec.port,
        };
        self.backrest
            .backup(spec.id, &server, kind, retention, progress, priority)
            .await
    }

    /// Writes a file the PostgreSQL user owns.
    fn write_owned(
        &self,
        dir: &Path,
        name: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), EngineError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let path = dir.join(name);
        if self.is_written(&path, contents, mode) {
            return Ok(()); // (Creating a file is what costs, on some filesystems a millisecond.)
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, contents).map_err(io(format!("writing {}", tmp.display())))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(io("setting permissions"))?;
        if let Some(u) = &self.cfg.run_as {
            std::os::unix::fs::chown(&tmp, Some(u.uid), Some(u.gid))
                .map_err(io("changing owner"))?;
            std::os::unix::fs::chown(dir, Some(u.uid), Some(u.gid))
                .map_err(io("changing owner"))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(format!("replacing {}", path.display())))
    }
}

impl LocalEngine {
    /// Does `path` hold exactly this, with this mode and owner?
    fn is_written(&self, path: &Path, contents: &[u8], mode: u32) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(path) else {
            return false;
        };
        let owner_ok = self.cfg.run_as.as_ref().is_none_or(|u| meta.uid() == u.uid);
        owner_ok
            && meta.mode() & 0o7777 == mode
            && meta.len() == contents.len() as u64
            && std::fs::read(path).is_ok_and(|now| now == contents)
    }
}

impl Engine for LocalEngine {
    fn versions(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.bins.iter().map(|b| b.major).collect();
        v.dedup();
        v
    }

    fn provision<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        owner: Owner<'a>,
        tls: Tls<'a>,
    ) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.provision_cluster(spec, owner, tls)
                .await
                .map_err(|e| self.redacted(e))
        })
    }

    fn start<'a>(&'a self, spec: &'a InstanceSpec, tls: Tls<'a>) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.write_certificate(spec.id, tls)?;
            self.start_cluster(spec).await
        })
    }

    fn stop(&self, id: Uuid) -> EngineFuture<'_, ()> {
        Box::pin(self.stop_cluster(id))
    }

    fn set_access<'a>(&'a self, id: Uuid, networks: &'a [String]) -> EngineFuture<'a, ()> {
        Box::pin(self.apply_access(id, networks))
    }

    fn destroy(&self, id: Uuid) -> EngineFuture<'_, ()> {
        Box::pin(self.destroy_cluster(id))
    }

    fn observe(&self, id: Uuid) -> EngineFuture<'_, Observed> {
        Box::pin(async move {
            Ok(if self.is_running(id).await {
                Observed::Running
            } else {
                Observed::Stopped
            })
        })
    }

    fn stock_copy<'a>(
        &'a self,
        major: u32,
        owner: &'a str,
        database: &'a str,
        want: usize,
    ) -> EngineFuture<'a, usize> {
        Box::pin(async move {
            self.stock_one_copy(major, owner, database, want)
                .await
                .map_err(|e| self.redacted(e))
        })
    }

    fn inventory(&self) -> EngineFuture<'_, Vec<Uuid>> {
        Box::pin(async move { Ok(self.directories()) })
    }

    fn backup<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        kind: berth_types::BackupType,
        retention: Retention,
        progress: &'a Progress<'a>,
        priority: Priority,
    ) -> EngineFuture<'a, ()> {
        Box::pin(self.run_backup(spec, kind, retention, progress, priority))
    }

    fn backups(&self, id: Uuid) -> EngineFuture<'_, Vec<BackupRecord>> {
        Box::pin(self.backrest.info(id))
    }

    fn expire(&self, id: Uuid, retention: Retention) -> EngineFuture<'_, ()> {
        Box::pin(self.backrest.expire(id, retention))
    }

    fn delete_backup<'a>(&'a self, id: Uuid, label: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(self.backrest.expire_backup(id, label))
    }

    fn archive_state<'a>(&'a self, spec: &'a InstanceSpec) -> EngineFuture<'a, ArchiveState> {
        Box::pin(async move {
            let mut conn = self.admin_connection(spec).await?;
            let state = archive_state(&mut conn).await;
            let _ = conn.close().await;
            state
        })
    }

    fn seal_archive<'a>(&'a self, spec: &'a InstanceSpec) -> EngineFuture<'a, Sealed> {
        Box::pin(async move {
            let mut conn = self.admin_connection(spec).await?;
            let sealed = seal_archive(&mut conn).await;
            let _ = conn.close().await;
            sealed
        })
    }

    fn restore<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        source: Uuid,
        target: &'a RecoveryTarget,
        owner: Owner<'a>,
        tls: Tls<'a>,
        progress: &'a Progress<'a>,
    ) -> EngineFuture<'a, Recovered> {
        Box::pin(async move {
            self.restore_cluster(spec, source, target, owner, tls, progress)
                .await
                .map_err(|e| self.redacted(e))
        })
    }

    fn forget_backups(&self, id: Uuid) -> EngineFuture<'_, ()> {
        Box::pin(async move {
            self.backrest
                .delete_stanza(id, &self.dir(id).join("pgdata"))
                .await
        })
    }

    fn set_parameters<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        settings: &'a [(String, String)],
    ) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.apply_parameters(spec, settings)
                .await
                .map_err(|e| self.redacted(e))
        })
    }

    fn parameters<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        names: &'a [&'a str],
    ) -> EngineFuture<'a, Vec<LiveParameter>> {
        Box::pin(self.live_parameters(spec, names))
    }

    fn sync_roles<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        owner: &'a str,
        owner_verifier: Option<&'a str>,
        roles: &'a [ManagedRole<'a>],
    ) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.sync_roles_in(spec, owner, owner_verifier, roles)
                .await
                .map_err(|e| self.redacted(e))
        })
    }

    fn sync_databases<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        databases: &'a [ManagedDatabase<'a>],
    ) -> EngineFuture<'a, ()> {
        Box::pin(async move {
            self.sync_databases_in(spec, databases)
                .await
                .map_err(|e| self.redacted(e))
        })
    }

    fn sample<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        database_size: bool,
    ) -> EngineFuture<'a, Sample> {
        Box::pin(async move {
            self.sample_instance(spec, database_size)
                .await
                .map_err(|e| self.redacted(e))
        })
    }

    fn logs<'a>(&'a self, id: Uuid, req: &'a LogRequest) -> EngineFuture<'a, LogSlice> {
        Box::pin(async move { self.read_logs(id, req).await.map_err(|e| self.redacted(e)) })
    }

    fn probe<'a>(
        &'a self,
        source: ExternalDatabase<'a>,
        timeout: Duration,
    ) -> EngineFuture<'a, Result<Probed, ProbeFailure>> {
        Box::pin(async move { Ok(self.probe_external(source, timeout).await) })
    }

    fn import<'a>(
        &'a self,
        spec: &'a InstanceSpec,
        source: ExternalDatabase<'a>,
        owner: &'a str,
        database: &'a str,
        progress: &'a Progress<'a>,
    ) -> EngineFuture<'a, Imported> {
        Box::pin(async move {
            self.import_database(spec, source, owner, database, progress)
                .await
                .map_err(|e| self.redacted(e))
        })
    }
}

/// How long [`seal_archive`] waits for the segment it closed to reach the archive.
const SEAL_TIMEOUT: Duration = Duration::from_secs(60);

async fn archive_state(conn: &mut sqlx::PgConnection) -> Result<ArchiveState, EngineError> {
    let (last_archived_wal, last_archived_at, last_failed_wal, last_failed_at) = sqlx::query_as(
        "SELECT last_archived_wal, last_archived_time, last_failed_wal, last_failed_time
             FROM pg_stat_archiver",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(ArchiveState {
        last_archived_wal,
        last_archived_at,
        last_failed_wal,
        last_failed_at,
    })
}

/// A marker commit (so a restore to any moment before it has a commit to stop at), a WAL
/// switch, and a wait until the closed segment is archived.
async fn seal_archive(conn: &mut sqlx::PgConnection) -> Result<Sealed, EngineError> {
    let at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&mut *conn)
        .await?;
    // Assigning a transaction id makes the commit write a commit record; nothing else changes.
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *conn)
        .await?;
    let segment: String = sqlx::query_scalar("SELECT pg_walfile_name(pg_switch_wal())")
        .fetch_one(&mut *conn)
        .await?;
    let give_up = tokio::time::Instant::now() + SEAL_TIMEOUT;
    loop {
        let state = archive_state(conn).await?;
        // (A backup's history file, `<segment>.<offset>.backup`, may be the last archived:
        // its segment part counts.)
        if state
            .last_archived_wal
            .as_deref()
            .and_then(|w| w.get(..segment.len()))
            .is_some_and(|w| w >= segment.as_str())
        {
            return Ok(Sealed { at });
        }
        if tokio::time::Instant::now() >= give_up {
            return Err(EngineError::Failed(format!(
                "WAL segment {segment} did not reach the archive within {} s (last failure: {})",
                SEAL_TIMEOUT.as_secs(),
                state.last_failed_wal.as_deref().unwrap_or("none")
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The owner role, without login until an instance gives it a password, and its database.
async fn create_owner_and_database(
    spec: &ClusterSpec,
    owner: &str,
    database: &str,
) -> Result<(), EngineError> {
    let mut conn = sqlx::postgres::PgConnectOptions::new()
        .host(&spec.socket_dir.to_string_lossy())
        .port(spec.port)
        .username(SUPERUSER)
        .database("postgres")
        .disable_statement_logging()
        .connect()
        .await?;
    let role_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(owner)
            .fetch_one(&mut conn)
            .await?;
    if !role_exists {
        sqlx::query(&format!("CREATE ROLE {} NOLOGIN", quote_ident(owner)))
            .execute(&mut conn)
            .await?;
    }
    let db_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
    if !db_exists {
        sqlx::query(&format!(
            "CREATE DATABASE {} OWNER {}",
            quote_ident(database),
            quote_ident(owner)
        ))
        .execute(&mut conn)
        .await?;
    }
    conn.close().await?;
    Ok(())
}

/// Copies the template cluster beside the instance's data directory and renames it into place,
/// so a crash mid-copy never leaves a half-copied PGDATA that looks complete.
async fn copy_template(template: &Path, dir: &Path) -> Result<(), EngineError> {
    let staging = dir.join(".pgdata.copy");
    if staging.exists() {
        tokio::fs::remove_dir_all(&staging)
            .await
            .map_err(io("removing an interrupted copy"))?;
    }
    copy_tree(template, &staging).await?;
    std::fs::rename(&staging, dir.join("pgdata")).map_err(io("moving the new cluster into place"))
}

/// A copy of a stopped cluster at `to` (which must not exist), sharing blocks with the original
/// where the filesystem can (`--reflink=auto`: XFS, btrfs), without its postmaster files.
pub(super) async fn copy_tree(from: &Path, to: &Path) -> Result<(), EngineError> {
    let mut cp = tokio::process::Command::new("cp");
    cp.arg("-a").arg("--reflink=auto").arg(from).arg(to);
    // Dies with Berth: a copy left running by a killed Berth would go on writing into a
    // directory the next start is removing.
    // SAFETY: prctl is async-signal-safe and touches only the child being set up.
    unsafe {
        cp.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let status = cp.status().await.map_err(io("running cp"))?;
    if !status.success() {
        return Err(EngineError::Failed(format!(
            "copying the template cluster failed ({status})"
        )));
    }
    for stale in ["postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(to.join(stale));
    }
    Ok(())
}

/// Asks a postmaster to reread its configuration and certificate files.
fn reload(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: plain signal delivery to a process this engine started or verified.
        unsafe {
            libc::kill(pid, libc::SIGHUP);
        }
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
