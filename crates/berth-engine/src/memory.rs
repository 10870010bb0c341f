//! Memory sizes an instance can have and the PostgreSQL settings each one means. The smallest
//! class is sized so that hundreds of idle instances fit on one machine.

/// One memory size and its PostgreSQL settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryClass {
    pub name: &'static str,
    pub shared_buffers: &'static str,
    pub effective_cache_size: &'static str,
    pub work_mem: &'static str,
    pub maintenance_work_mem: &'static str,
    pub max_connections: u32,
}

pub const MEMORY_CLASSES: &[MemoryClass] = &[
    MemoryClass {
        name: "256MB",
        shared_buffers: "64MB",
        effective_cache_size: "192MB",
        work_mem: "2MB",
        maintenance_work_mem: "16MB",
        max_connections: 25,
    },
    MemoryClass {
        name: "512MB",
        shared_buffers: "128MB",
        effective_cache_size: "384MB",
        work_mem: "4MB",
        maintenance_work_mem: "32MB",
        max_connections: 50,
    },
    MemoryClass {
        name: "1GB",
        shared_buffers: "256MB",
        effective_cache_size: "768MB",
        work_mem: "4MB",
        maintenance_work_mem: "64MB",
        max_connections: 100,
    },
    MemoryClass {
        name: "2GB",
        shared_buffers: "512MB",
        effective_cache_size: "1536MB",
        work_mem: "8MB",
        maintenance_work_mem: "128MB",
        max_connections: 100,
    },
    MemoryClass {
        name: "4GB",
        shared_buffers: "1GB",
        effective_cache_size: "3GB",
        work_mem: "16MB",
        maintenance_work_mem: "256MB",
        max_connections: 200,
    },
    MemoryClass {
        name: "8GB",
        shared_buffers: "2GB",
        effective_cache_size: "6GB",
        work_mem: "32MB",
        maintenance_work_mem: "512MB",
        max_connections: 200,
    },
];

pub fn memory_class(name: &str) -> Option<&'static MemoryClass> {
    MEMORY_CLASSES
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
}

impl MemoryClass {
    /// The size in bytes (`256MB` is 256 MiB, as PostgreSQL reads its units).
    pub fn bytes(&self) -> u64 {
        parse_size(self.name).unwrap_or(0)
    }

    /// The `-c name=value` settings for this class.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("shared_buffers", self.shared_buffers.to_owned()),
            ("effective_cache_size", self.effective_cache_size.to_owned()),
            ("work_mem", self.work_mem.to_owned()),
            ("maintenance_work_mem", self.maintenance_work_mem.to_owned()),
            ("max_connections", self.max_connections.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

/// `256MB`, `4GB`, `512kB` as PostgreSQL reads them (powers of 1024), in bytes.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n: u64 = text[..digits].parse().ok()?;
    let unit = match text[digits..].trim() {
        "B" | "" => 1,
        "kB" | "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(unit)
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes_read_as_postgres_reads_them() {
        assert_eq!(parse_size("256MB"), Some(256 << 20));
        assert_eq!(parse_size("4GB"), Some(4 << 30));
        assert_eq!(parse_size("512 kB"), Some(512 << 10));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("GB"), None);
        assert_eq!(parse_size("1XB"), None);
        assert_eq!(parse_size("99999999999TB"), None);
        assert!(MEMORY_CLASSES.iter().all(|c| c.bytes() > 0));
    }
}
