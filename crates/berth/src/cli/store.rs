//! The CLI's credentials: where they live (`$BERTH_CONFIG_DIR`, else `$XDG_CONFIG_HOME/berth`,
//! else `~/.config/berth`), the `credentials.json` format, and the lock that serialises every
//! read-modify-write of it. Refresh tokens rotate on use, so two processes refreshing from the
//! same file would look like token theft to the server; holding `credentials.lock` (flock)
//! across read → refresh → write prevents that. The file is only ever replaced whole (temp file
//! + rename), mode 0600 in a 0700 directory.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const CREDENTIALS_FILE: &str = "credentials.json";
pub const LOCK_FILE: &str = "credentials.lock";

/// How long to wait for another `berth` process to finish with the credentials. Every network
/// call made under the lock has a 30 s timeout, so a live holder finishes well within this.
const LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// The directory that holds the credentials, from the environment `var` describes.
pub fn config_dir_from(var: impl Fn(&str) -> Option<OsString>) -> anyhow::Result<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("BERTH_CONFIG_DIR") {
        return Ok(dir);
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(dir) = set("XDG_CONFIG_HOME").filter(|d| d.is_absolute()) {
        return Ok(dir.join("berth"));
    }
    if let Some(home) = set("HOME") {
        return Ok(home.join(".config").join("berth"));
    }
    anyhow::bail!("cannot find a configuration directory: set BERTH_CONFIG_DIR or HOME")
}

/// What `berth login` stored: enough to get a fresh access token without asking again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credentials {
    /// The Berth server's base URL, without a trailing slash.
    pub server: String,
    pub client_id: String,
    /// Only for client-credentials logins, to request a new token when this one expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub token_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    pub access_token: String,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Extra root certificate given to `berth login --ca-cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn from_env() -> anyhow::Result<Store> {
        Ok(Store::new(config_dir_from(|name| std::env::var_os(name))?))
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    /// The configuration directory itself (it may not exist yet).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Takes the exclusive lock (creating the directory if needed), waiting for another
    /// `berth` process that holds it. Reading and writing the credentials needs the guard.
    pub fn lock(&self) -> anyhow::Result<Locked<'_>> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        let started = Instant::now();
        let mut said_waiting = false;
        loop {
            match try_flock(&file) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("locking {}", path.display()));
                }
            }
            let waited = started.elapsed();
            if waited >= LOCK_TIMEOUT {
                anyhow::bail!(
                    "another berth process has held {} for {} s; giving up",
                    path.display(),
                    waited.as_secs()
                );
            }
            if !said_waiting && waited >= Duration::from_secs(2) {
                eprintln!(
                    "berth: waiting for another berth process to finish with the credentials…"
                );
                said_waiting = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Locked {
            store: self,
            _lock: file,
        })
    }
}

/// Non-blocking exclusive flock: Ok(false) when someone else holds it.
fn try_flock(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor this File owns for its whole lifetime.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) => return Ok(false),
            _ => return Err(err),
        }
    }
}

/// The credentials while this process holds the lock; dropping it releases the lock.
pub struct Locked<'a> {
    store: &'a Store,
    _lock: File,
}

impl Locked<'_> {
    pub fn path(&self) -> PathBuf {
        self.store.path()
    }

    /// None when nobody is logged in.
    pub fn load(&self) -> anyhow::Result<Option<Credentials>> {
        let path = self.path();
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let credentials = serde_json::from_slice(&text).with_context(|| {
            format!(
                "{} is damaged; run `berth logout` and `berth login --server URL` again",
                path.display()
            )
        })?;
        Ok(Some(credentials))
    }

    /// Replaces the file atomically: a reader sees the old credentials or the new, never half.
    pub fn save(&self, credentials: &Credentials) -> anyhow::Result<()> {
        let mut json = serde_json::to_vec_pretty(credentials).context("encoding credentials")?;
        json.push(b'\n');
        write_atomic(&self.store.dir, CREDENTIALS_FILE, &json)
            .with_context(|| format!("writing {}", self.path().display()))
    }

    /// Deletes the credentials; false when there were none.
    pub fn remove(&self) -> anyhow::Result<bool> {
        match fs::remove_file(self.path()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("deleting {}", self.path().display())),
        }
    }
}

/// Writes `dir/name` via a 0600 temporary file in the same directory and a rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    // A leftover from a crashed run with the same pid; we hold the lock, so nobody else's.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above is filtered by the umask; make it exactly 0600 either way.
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the rename itself durable; not every filesystem supports syncing a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    /// A fresh directory under the system temp dir, removed on drop.
    pub struct TempDir(pub PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "berth-cli-test-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    pub fn sample() -> Credentials {
        Credentials {
            server: "https://berth.example".into(),
            client_id: "berth-cli".into(),
            client_secret: None,
            token_endpoint: "https://berth.example/oauth/token".into(),
            revocation_endpoint: Some("https://berth.example/oauth/revoke".into()),
            access_token: "eyJ.access".into(),
            expires_at: "2030-01-01T00:00:00Z".parse().unwrap(),
            refresh_token: Some("berth_rt_x".into()),
            scope: Some("projects:read".into()),
            ca_cert: None,
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn config_dir_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        const ALL: &[(&str, &str)] = &[
            ("BERTH_CONFIG_DIR", "/etc/b"),
            ("XDG_CONFIG_HOME", "/x"),
            ("HOME", "/home/u"),
        ];
        assert_eq!(config_dir_from(env(ALL)).unwrap(), PathBuf::from("/etc/b"));
        assert_eq!(
            config_dir_from(env(&[("BERTH_CONFIG_DIR", ""), ("XDG_CONFIG_HOME", "/x")])).unwrap(),
            PathBuf::from("/x/berth")
        );
        assert_eq!(
            config_dir_from(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/home/u")])).unwrap(),
            PathBuf::from("/home/u/.config/berth")
        );
        assert_eq!(
            config_dir_from(env(&[("HOME", "/home/u")])).unwrap(),
            PathBuf::from("/home/u/.config/berth")
        );
        assert!(config_dir_from(env(&[])).is_err());
    }

    #[test]
    fn save_is_private_atomic_and_round_trips() {
        let tmp = TempDir::new();
        let dir = tmp.0.join("nested").join("berth");
        let store = Store::new(dir.clone());
        let locked = store.lock().unwrap();
        assert_eq!(locked.load().unwrap(), None);
        assert_eq!(mode(&dir), 0o700);

        let mut creds = sample();
        locked.save(&creds).unwrap();
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
        assert_eq!(locked.load().unwrap(), Some(creds.clone()));

        // Replacing goes through a new inode (rename), never an in-place rewrite.
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
        let before = inode(&store.path());
        creds.access_token = "eyJ.second".into();
        creds.client_secret = Some("berth_cs_secret".into());
        locked.save(&creds).unwrap();
        assert_ne!(inode(&store.path()), before);
        assert_eq!(mode(&store.path()), 0o600);
        assert_eq!(locked.load().unwrap(), Some(creds));

        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, [CREDENTIALS_FILE, LOCK_FILE]);

        assert!(locked.remove().unwrap());
        assert!(!locked.remove().unwrap());
        assert_eq!(locked.load().unwrap(), None);
    }

    #[test]
    fn damaged_file_is_a_clear_error() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.0.clone());
        fs::write(store.path(), b"{not json").unwrap();
        let err = store.lock().unwrap().load().unwrap_err();
        assert!(format!("{err:#}").contains("berth login"), "{err:#}");
    }

    #[test]
    fn lock_is_exclusive_across_descriptors() {
        let tmp = TempDir::new();
        let store = Store::new(tmp.0.clone());
        let held = store.lock().unwrap();
        // flock locks belong to the open file description, so a second open in this process
        // conflicts just as another process would.
        let other = File::open(tmp.0.join(LOCK_FILE)).unwrap();
        assert!(!try_flock(&other).unwrap());
        drop(held);
        assert!(try_flock(&other).unwrap());
    }

    #[test]
    fn concurrent_read_modify_write_never_loses_an_update() {
        let tmp = TempDir::new();
        let dir = tmp.0.clone();
        let mut creds = sample();
        creds.access_token = "0".into();
        Store::new(dir.clone())
            .lock()
            .unwrap()
            .save(&creds)
            .unwrap();

        let threads = 8;
        let rounds = 20;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let dir = dir.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let store = Store::new(dir);
                    barrier.wait();
                    for _ in 0..rounds {
                        let locked = store.lock().unwrap();
                        let mut c = locked.load().unwrap().unwrap();
                        let n: usize = c.access_token.parse().unwrap();
                        std::thread::yield_now();
                        c.access_token = (n + 1).to_string();
                        locked.save(&c).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let last = Store::new(dir).lock().unwrap().load().unwrap().unwrap();
        assert_eq!(last.access_token, (threads * rounds).to_string());
    }
}
