//! Finding PostgreSQL server binaries: the directories that hold `postgres` and `initdb`, and the
//! version they report. Discovery is synchronous and runs `postgres --version` once per
//! candidate directory; call it once at startup, not per instance.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::PgError;

/// A PostgreSQL installation's server binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    /// Canonical directory holding `postgres` and `initdb`.
    pub bindir: PathBuf,
    /// Major version (15 for 15.10).
    pub major: u32,
    /// Version number as reported by `postgres --version`, e.g. `15.10`.
    pub version: String,
}

impl PgBinaries {
    /// All installations found, newest first, each once (a directory of symlinks into an
    /// installation counts as that installation): `postgres` (with `initdb` beside it) on PATH, `pg_config --bindir`, `/usr/lib/postgresql/*/bin` (Debian,
    /// Ubuntu) and `/usr/pgsql-*/bin` (RHEL and friends).
    pub fn discover_all() -> Vec<PgBinaries> {
        let mut seen = HashSet::new();
        let mut found = Vec::new();
        for dir in candidate_bindirs() {
            // Keyed by the real `postgres` binary, so a bin dir of symlinks (e.g. /usr/local/bin)
            // and the installation it points into count once.
            let Ok(real_postgres) = dir.join("postgres").canonicalize() else {
                continue;
            };
            if !seen.insert(real_postgres) {
                continue;
            }
            match PgBinaries::from_bindir(&dir) {
                Ok(bins) => found.push(bins),
                Err(e) => {
                    tracing::debug!(error = %e, "skipping PostgreSQL bin directory candidate")
                }
            }
        }
        // Stable sort: among equal versions, the earlier source (PATH first) wins.
        found.sort_by_key(|b| std::cmp::Reverse(version_key(&b.version)));
        found
    }

    /// The newest installation, or [`PgError::BinariesNotFound`] saying what to install.
    pub fn discover() -> Result<PgBinaries, PgError> {
        PgBinaries::discover_all()
            .into_iter()
            .next()
            .ok_or(PgError::BinariesNotFound)
    }

    /// The installation in `bindir` (e.g. from a `--pg-bindir` option), checked to hold
    /// executable `postgres` and `initdb`.
    pub fn from_bindir(bindir: &Path) -> Result<PgBinaries, PgError> {
        let invalid = |reason: String| PgError::InvalidBinaries {
            bindir: bindir.to_path_buf(),
            reason,
        };
        let canonical = bindir.canonicalize().map_err(|e| invalid(e.to_string()))?;
        for exe in ["postgres", "initdb"] {
            if !is_executable(&canonical.join(exe)) {
                return Err(invalid(format!("no executable `{exe}`")));
            }
        }
        let postgres = canonical.join("postgres");
        let out = Command::new(&postgres)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map_err(|e| invalid(format!("running `postgres --version`: {e}")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(invalid(format!(
                "`postgres --version` failed ({})",
                out.status
            )));
        }
        let version = parse_version(&text)
            .ok_or_else(|| invalid(format!("unrecognised `postgres --version` output {text:?}")))?;
        let major = version_key(&version).first().copied().unwrap_or(0);
        Ok(PgBinaries {
            bindir: canonical,
            major,
            version,
        })
    }

    pub fn postgres(&self) -> PathBuf {
        self.bindir.join("postgres")
    }

    pub fn initdb(&self) -> PathBuf {
        self.bindir.join("initdb")
    }
}

/// Candidate directories in preference order; duplicates and non-installations are fine.
fn candidate_bindirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for dir in &path_dirs {
        let postgres = dir.join("postgres");
        if is_executable(&postgres) {
            // A symlinked `postgres` (e.g. /usr/local/bin/postgres) points into the real bindir,
            // which also has pg_ctl, psql and friends: prefer that one.
            if let Some(parent) = postgres
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                dirs.push(parent);
            }
            dirs.push(dir.clone());
        }
    }
    if let Some(pg_config) = path_dirs
        .iter()
        .map(|d| d.join("pg_config"))
        .find(|p| is_executable(p))
    {
        if let Ok(out) = Command::new(pg_config)
            .arg("--bindir")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !dir.is_empty() {
                dirs.push(PathBuf::from(dir));
            }
        }
    }
    dirs.extend(glob_bindirs(Path::new("/usr/lib/postgresql"), "", "bin"));
    dirs.extend(glob_bindirs(Path::new("/usr"), "pgsql-", "bin"));
    dirs
}

/// `<root>/<prefix>*/<sub>` for each entry of `root` whose name starts with `prefix`.
fn glob_bindirs(root: &Path, prefix: &str, sub: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path().join(sub))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `postgres (PostgreSQL) 15.10 (Debian 15.10-1.pgdg120+1)` => `15.10`.
fn parse_version(output: &str) -> Option<String> {
    let line = output.lines().next()?;
    let rest = line.split("(PostgreSQL)").nth(1)?;
    let token = rest.split_whitespace().next()?;
    // Development builds print e.g. `17devel` or `16beta2`: keep the leading numeric part.
    let numeric: String = token
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let numeric = numeric.trim_end_matches('.');
    (!numeric.is_empty()).then(|| numeric.to_string())
}

fn version_key(version: &str) -> Vec<u32> {
    version.split('.').filter_map(|p| p.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            parse_version("postgres (PostgreSQL) 15.10 (Debian 15.10-1.pgdg120+1)\n").as_deref(),
            Some("15.10")
        );
        assert_eq!(
            parse_version("postgres (PostgreSQL) 17devel").as_deref(),
            Some("17")
        );
        assert_eq!(
            parse_version("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6.24")
        );
        assert_eq!(parse_version("something else"), None);
        assert!(version_key("16.1") > version_key("15.10"));
        assert!(version_key("15.10") > version_key("15.9"));
    }
}
