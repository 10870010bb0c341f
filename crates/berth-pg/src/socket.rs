//! Choosing a Unix socket directory. A socket path is limited to 107 bytes (`sun_path` is 108
//! bytes including the NUL), and PostgreSQL names its socket `<dir>/.s.PGSQL.<port>`, so deep
//! data directories cannot hold their own socket.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Longest socket path the kernel accepts.
const MAX_SOCKET_PATH: usize = 107;

/// `base` itself when `base/.s.PGSQL.65535` fits in a socket path, otherwise
/// `/tmp/berth-<hash of base>`: short, and the same for the same `base` across runs and builds
/// (the hash is FNV-1a, not std's `DefaultHasher`, whose algorithm may change between Rust
/// releases and would move sockets after an upgrade). The fallback lives in a shared directory, so
/// the cluster code creates it 0700 and refuses one that is a symlink or owned by someone else.
pub fn socket_dir_for(base: &Path) -> PathBuf {
    let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    if base.join(".s.PGSQL.65535").as_os_str().len() <= MAX_SOCKET_PATH {
        return base;
    }
    PathBuf::from(format!(
        "/tmp/berth-{:016x}",
        fnv1a(base.as_os_str().as_bytes())
    ))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_base_is_kept() {
        assert_eq!(
            socket_dir_for(Path::new("/var/lib/berth/run")),
            PathBuf::from("/var/lib/berth/run")
        );
    }

    #[test]
    fn long_base_falls_back_to_stable_tmp_dir() {
        let long = PathBuf::from(format!("/var/lib/berth/{}", "x".repeat(100)));
        let dir = socket_dir_for(&long);
        assert!(dir.starts_with("/tmp"));
        assert!(dir.join(".s.PGSQL.65535").as_os_str().len() <= MAX_SOCKET_PATH);
        assert_eq!(dir, socket_dir_for(&long));
        assert_ne!(dir, socket_dir_for(&long.join("y")));
        // Pinned so an accidental change of hash (which would move sockets) fails a test.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
