//! The PostgreSQL parameters users may set, and how a value is checked and written. An
//! allow-list, not a deny-list: a parameter is settable only if it is listed here with its
//! type and a range Berth chose (often narrower than PostgreSQL's), so nothing that would let
//! a user reach outside the instance (archiving, TLS, files, where it listens, libraries
//! beyond a short list) can be set, and no accepted value stops the server from starting.
//!
//! Values are written as PostgreSQL itself shows them (`8MB`, `5min`, `on`), so what a user
//! set and what `current_setting()` says compare equal.

use berth_engine::MemoryClass;

use crate::AppError;

/// What a number written without a unit means, per parameter (PostgreSQL's base units).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    None,
    Kb,
    /// 8 kB pages (shared_buffers, effective_cache_size, temp_buffers).
    Pages,
    Mb,
    Ms,
    S,
}

impl Unit {
    /// The unit as `pg_settings` names it.
    fn label(self) -> Option<&'static str> {
        match self {
            Unit::None => None,
            Unit::Kb => Some("kB"),
            Unit::Pages => Some("8kB"),
            Unit::Mb => Some("MB"),
            Unit::Ms => Some("ms"),
            Unit::S => Some("s"),
        }
    }

    /// One base unit in kB (sizes) or ms (durations).
    fn scale(self) -> i64 {
        match self {
            Unit::None | Unit::Kb | Unit::Ms => 1,
            Unit::Pages => 8,
            Unit::Mb => 1024,
            Unit::S => 1000,
        }
    }

    fn is_size(self) -> bool {
        matches!(self, Unit::Kb | Unit::Pages | Unit::Mb)
    }

    fn is_duration(self) -> bool {
        matches!(self, Unit::Ms | Unit::S)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Bool,
    /// Bounds in kB for sizes, ms for durations, plain otherwise; -1 may be a bound (off).
    Int {
        unit: Unit,
        min: i64,
        max: i64,
    },
    Real {
        min: f64,
        max: f64,
    },
    Enum(&'static [&'static str]),
    /// A comma-separated subset.
    List(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum DefaultValue {
    Fixed(&'static str),
    /// The memory class decides.
    Class(fn(&MemoryClass) -> String),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Param {
    pub name: &'static str,
    pub kind: Kind,
    /// Takes effect only at a restart (`postmaster` context).
    pub restart: bool,
    pub default: DefaultValue,
    pub description: &'static str,
}

impl Param {
    pub fn default_for(&self, class: &MemoryClass) -> String {
        match self.default {
            DefaultValue::Fixed(v) => v.to_owned(),
            DefaultValue::Class(f) => f(class),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Bool => "bool",
            Kind::Int { .. } => "integer",
            Kind::Real { .. } => "real",
            Kind::Enum(_) => "enum",
            Kind::List(_) => "string",
        }
    }

    pub fn unit(&self) -> Option<&'static str> {
        match self.kind {
            Kind::Int { unit, .. } => unit.label(),
            _ => None,
        }
    }

    pub fn bounds(&self) -> (Option<String>, Option<String>) {
        match self.kind {
            Kind::Int { unit, min, max } => (Some(show_int(unit, min)), Some(show_int(unit, max))),
            Kind::Real { min, max } => (Some(show_real(min)), Some(show_real(max))),
            _ => (None, None),
        }
    }

    pub fn allowed_values(&self) -> Option<Vec<String>> {
        match self.kind {
            Kind::Bool => Some(vec!["on".into(), "off".into()]),
            Kind::Enum(v) | Kind::List(v) => Some(v.iter().map(|s| (*s).to_owned()).collect()),
            _ => None,
        }
    }

    /// The value as Berth writes it, or a 400 that names the parameter and what it accepts.
    pub fn check(&self, value: &serde_json::Value) -> Result<String, AppError> {
        let text = match value {
            serde_json::Value::String(s) => s.trim().to_owned(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => (if *b { "on" } else { "off" }).to_owned(),
            _ => {
                return Err(self.invalid("a string, a number or a boolean"));
            }
        };
        let shown: String = text.chars().take(40).collect();
        let bad = |what: String| AppError::Validation(format!("{}: `{shown}` {what}", self.name));
        match self.kind {
            Kind::Bool => match text.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" | "1" => Ok("on".into()),
                "off" | "false" | "no" | "0" => Ok("off".into()),
                _ => Err(bad("is not a boolean (on or off)".into())),
            },
            Kind::Int { unit, min, max } => {
                let v = parse_int(&text, unit).map_err(bad)?;
                if v < min || v > max {
                    return Err(bad(format!(
                        "is out of range ({} to {})",
                        show_int(unit, min),
                        show_int(unit, max)
                    )));
                }
                Ok(show_int(unit, v))
            }
            Kind::Real { min, max } => {
                let v: f64 = text
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| bad("is not a number".into()))?;
                if v < min || v > max {
                    return Err(bad(format!(
                        "is out of range ({} to {})",
                        show_real(min),
                        show_real(max)
                    )));
                }
                Ok(show_real(v))
            }
            Kind::Enum(values) => {
                let lower = text.to_ascii_lowercase();
                values
                    .iter()
                    .find(|v| **v == lower)
                    .map(|v| (*v).to_owned())
                    .ok_or_else(|| bad(format!("is not one of {}", values.join(", "))))
            }
            Kind::List(values) => {
                let mut chosen: Vec<&str> = Vec::new();
                for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let known = values.iter().find(|v| **v == item).ok_or_else(|| {
                        bad(format!(
                            "names `{}`, which is not allowed (allowed: {})",
                            item.chars().take(40).collect::<String>(),
                            values.join(", ")
                        ))
                    })?;
                    if !chosen.contains(known) {
                        chosen.push(known);
                    }
                }
                Ok(chosen.join(","))
            }
        }
    }

    fn invalid(&self, what: &str) -> AppError {
        AppError::Validation(format!("{}: the value must be {what}", self.name))
    }
}

/// `8MB`, `5min`, `-1`, `200`: the number in kB, ms or plain (`unit` says which, and what a
/// bare number means).
fn parse_int(text: &str, unit: Unit) -> Result<i64, String> {
    let digits_end = text
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    let suffix = suffix.trim();
    let hint = if unit.is_size() {
        "is not a size (a whole number with an optional unit kB, MB, GB or TB, e.g. 8MB)"
    } else if unit.is_duration() {
        "is not a duration (a whole number with an optional unit ms, s, min, h or d, e.g. 30s)"
    } else {
        "is not a whole number"
    };
    if number.is_empty() || number == "-" || number.len() > 18 {
        return Err(hint.into());
    }
    let n: i64 = number.parse().map_err(|_| hint.to_owned())?;
    if n < 0 {
        // -1 (switched off) is the only negative value any parameter takes, and has no unit.
        return if n == -1 && suffix.is_empty() {
            Ok(-1)
        } else {
            Err("is out of range (the only negative value is -1)".into())
        };
    }
    let factor = match (suffix, unit) {
        ("", u) => u.scale(),
        ("kB", u) if u.is_size() => 1,
        ("MB", u) if u.is_size() => 1024,
        ("GB", u) if u.is_size() => 1024 * 1024,
        ("TB", u) if u.is_size() => 1024 * 1024 * 1024,
        ("ms", u) if u.is_duration() => 1,
        ("s", u) if u.is_duration() => 1000,
        ("min", u) if u.is_duration() => 60_000,
        ("h", u) if u.is_duration() => 3_600_000,
        ("d", u) if u.is_duration() => 86_400_000,
        _ => return Err(hint.into()),
    };
    let v = n.checked_mul(factor).ok_or_else(|| hint.to_owned())?;
    if v % unit.scale() != 0 {
        return Err(format!(
            "is not a whole number of {}",
            unit.label().unwrap_or("units")
        ));
    }
    Ok(v)
}

/// As PostgreSQL shows it: the largest unit that divides the value.
fn show_int(unit: Unit, v: i64) -> String {
    if v <= 0 || unit == Unit::None {
        return v.to_string();
    }
    let units: &[(&str, i64)] = if unit.is_size() {
        &[
            ("TB", 1024 * 1024 * 1024),
            ("GB", 1024 * 1024),
            ("MB", 1024),
            ("kB", 1),
        ]
    } else {
        &[
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("min", 60_000),
            ("s", 1000),
            ("ms", 1),
        ]
    };
    let (label, size) = units
        .iter()
        .find(|(_, size)| v % size == 0)
        .copied()
        .unwrap_or(("", 1));
    format!("{}{label}", v / size)
}

fn show_real(v: f64) -> String {
    v.to_string()
}

const KB: i64 = 1;
const MB: i64 = 1024;
const GB: i64 = 1024 * 1024;
const TB: i64 = 1024 * 1024 * 1024;
const MS: i64 = 1;
const S: i64 = 1000;
const MIN: i64 = 60 * S;
const H: i64 = 60 * MIN;
const D: i64 = 24 * H;

const fn int(unit: Unit, min: i64, max: i64) -> Kind {
    Kind::Int { unit, min, max }
}

const fn p(
    name: &'static str,
    kind: Kind,
    restart: bool,
    default: DefaultValue,
    description: &'static str,
) -> Param {
    Param {
        name,
        kind,
        restart,
        default,
        description,
    }
}

use DefaultValue::{Class, Fixed};
use Unit::{Kb, Mb, Ms, Pages};

/// Every parameter users may set, by name. Defaults are PostgreSQL 15's (or the memory
/// class's); a test checks each against a fresh instance.
#[rustfmt::skip]
pub(crate) const PARAMETERS: &[Param] = &[
    // Memory and connections.
    p("shared_buffers", int(Pages, 16 * MB, 32 * GB), true, Class(|c| c.shared_buffers.into()),
        "Memory for caching data pages, shared by all sessions."),
    p("effective_cache_size", int(Pages, 8 * MB, 256 * GB), false, Class(|c| c.effective_cache_size.into()),
        "The planner's assumption of how much data the operating system and PostgreSQL cache."),
    p("work_mem", int(Kb, 64 * KB, 2 * GB), false, Class(|c| c.work_mem.into()),
        "Memory for each sort or hash step of a query before it spills to disk."),
    p("maintenance_work_mem", int(Kb, MB, 8 * GB), false, Class(|c| c.maintenance_work_mem.into()),
        "Memory for VACUUM, CREATE INDEX and similar maintenance."),
    p("max_connections", int(Unit::None, 10, 1000), true, Class(|c| c.max_connections.to_string()),
        "The most concurrent connections (three more are kept for Berth)."),
    p("temp_buffers", int(Pages, 800 * KB, GB), false, Fixed("8MB"),
        "Memory for temporary tables, per session."),
    p("hash_mem_multiplier", Kind::Real { min: 1.0, max: 1000.0 }, false, Fixed("2"),
        "How many times work_mem hash tables may use."),
    p("logical_decoding_work_mem", int(Kb, 64 * KB, 4 * GB), false, Fixed("64MB"),
        "Memory for logical decoding before it spills to disk."),
    p("max_locks_per_transaction", int(Unit::None, 10, 10_000), true, Fixed("64"),
        "Locks per transaction the shared lock table is sized for."),
    p("max_prepared_transactions", int(Unit::None, 0, 1000), true, Fixed("0"),
        "The most transactions in the prepared state at once (two-phase commit)."),
    p("shared_preload_libraries", Kind::List(&["pg_stat_statements", "auto_explain"]), true, Fixed(""),
        "Libraries loaded at server start."),
    // Write-ahead log and checkpoints.
    // (initdb's values for Berth's 1 MB WAL segments.)
    p("max_wal_size", int(Mb, 16 * MB, 256 * GB), false, Fixed("64MB"),
        "WAL size that triggers a checkpoint."),
    p("min_wal_size", int(Mb, 2 * MB, 64 * GB), false, Fixed("5MB"),
        "WAL kept for reuse instead of removed."),
    p("wal_keep_size", int(Mb, 0, 64 * GB), false, Fixed("0"),
        "WAL kept for standby servers."),
    p("checkpoint_timeout", int(Unit::S, 30 * S, D), false, Fixed("5min"),
        "The longest time between automatic checkpoints."),
    p("checkpoint_completion_target", Kind::Real { min: 0.0, max: 1.0 }, false, Fixed("0.9"),
        "Fraction of the checkpoint interval to spread writes over."),
    p("synchronous_commit", Kind::Enum(&["on", "off", "local", "remote_write", "remote_apply"]), false, Fixed("on"),
        "Whether a commit waits for its WAL to be flushed."),
    // Sessions.
    p("statement_timeout", int(Ms, 0, D), false, Fixed("0"),
        "Cancels statements that run longer (0: never)."),
    p("lock_timeout", int(Ms, 0, D), false, Fixed("0"),
        "Cancels statements that wait longer for a lock (0: never)."),
    p("idle_in_transaction_session_timeout", int(Ms, 0, D), false, Fixed("0"),
        "Ends sessions idle this long inside a transaction (0: never)."),
    p("idle_session_timeout", int(Ms, 0, D), false, Fixed("0"),
        "Ends sessions idle this long outside a transaction (0: never)."),
    p("deadlock_timeout", int(Ms, MS, H), false, Fixed("1s"),
        "How long to wait on a lock before checking for a deadlock."),
    p("default_transaction_isolation",
        Kind::Enum(&["read committed", "repeatable read", "serializable", "read uncommitted"]), false, Fixed("read committed"),
        "The isolation level of new transactions."),
    // The planner.
    p("random_page_cost", Kind::Real { min: 0.0, max: 1000.0 }, false, Fixed("4"),
        "The planner's cost of a page fetched out of order."),
    p("seq_page_cost", Kind::Real { min: 0.0, max: 1000.0 }, false, Fixed("1"),
        "The planner's cost of a page fetched in order."),
    p("effective_io_concurrency", int(Unit::None, 0, 1000), false, Fixed("1"),
        "Concurrent disk reads the storage handles well."),
    p("default_statistics_target", int(Unit::None, 1, 10_000), false, Fixed("100"),
        "How detailed ANALYZE's statistics are."),
    p("max_parallel_workers_per_gather", int(Unit::None, 0, 4), false, Fixed("2"),
        "Parallel workers one query step may use."),
    p("from_collapse_limit", int(Unit::None, 1, 100), false, Fixed("8"),
        "FROM list size beyond which subqueries are not merged."),
    p("join_collapse_limit", int(Unit::None, 1, 100), false, Fixed("8"),
        "FROM list size beyond which explicit JOINs are not reordered."),
    p("jit", Kind::Bool, false, Fixed("on"),
        "Whether queries may be compiled just in time."),
    // Autovacuum.
    p("autovacuum", Kind::Bool, false, Fixed("on"),
        "Whether autovacuum runs."),
    p("autovacuum_max_workers", int(Unit::None, 1, 10), true, Fixed("3"),
        "Autovacuum workers at once."),
    p("autovacuum_naptime", int(Unit::S, S, D), false, Fixed("1min"),
        "Time between autovacuum runs on each database."),
    p("autovacuum_vacuum_scale_factor", Kind::Real { min: 0.0, max: 100.0 }, false, Fixed("0.2"),
        "Fraction of a table changed before it is vacuumed."),
    p("autovacuum_vacuum_insert_scale_factor", Kind::Real { min: 0.0, max: 100.0 }, false, Fixed("0.2"),
        "Fraction of a table inserted before it is vacuumed."),
    p("autovacuum_analyze_scale_factor", Kind::Real { min: 0.0, max: 100.0 }, false, Fixed("0.1"),
        "Fraction of a table changed before it is analyzed."),
    p("autovacuum_vacuum_cost_limit", int(Unit::None, -1, 10_000), false, Fixed("-1"),
        "Work autovacuum does before it pauses (-1: vacuum_cost_limit)."),
    p("vacuum_cost_limit", int(Unit::None, 1, 10_000), false, Fixed("200"),
        "Work a vacuum does before it pauses."),
    // What the log records.
    p("log_min_duration_statement", int(Ms, -1, D), false, Fixed("-1"),
        "Logs statements that run at least this long (-1: none, 0: all)."),
    p("log_autovacuum_min_duration", int(Ms, -1, D), false, Fixed("10min"),
        "Logs autovacuum runs that take at least this long (-1: none)."),
    p("log_temp_files", int(Kb, -1, TB), false, Fixed("-1"),
        "Logs temporary files at least this large (-1: none)."),
    p("log_statement", Kind::Enum(&["none", "ddl", "mod", "all"]), false, Fixed("none"),
        "Which statements are logged."),
    p("log_lock_waits", Kind::Bool, false, Fixed("off"),
        "Logs waits for a lock longer than deadlock_timeout."),
    p("log_checkpoints", Kind::Bool, false, Fixed("on"),
        "Logs each checkpoint."),
    p("log_connections", Kind::Bool, false, Fixed("off"),
        "Logs each connection."),
    p("log_disconnections", Kind::Bool, false, Fixed("off"),
        "Logs each session's end and duration."),
    p("track_io_timing", Kind::Bool, false, Fixed("off"),
        "Collects timing of disk reads and writes."),
    p("track_functions", Kind::Enum(&["none", "pl", "all"]), false, Fixed("none"),
        "Collects statistics of function calls."),
];

/// Parameters PostgreSQL has that Berth sets itself: named, a request gets a clearer answer
/// than "unknown".
#[rustfmt::skip]
const MANAGED_BY_BERTH: &[&str] = &[
    "archive_command", "archive_library", "archive_mode", "archive_timeout", "restore_command",
    "listen_addresses", "port", "hba_file", "ident_file", "config_file", "data_directory",
    "unix_socket_directories", "unix_socket_group", "unix_socket_permissions",
    "local_preload_libraries", "session_preload_libraries", "dynamic_library_path",
    "log_destination", "logging_collector", "log_directory", "log_filename", "log_min_messages",
    "wal_level", "max_worker_processes", "max_parallel_workers", "password_encryption",
    "huge_pages", "max_wal_senders", "primary_conninfo", "primary_slot_name", "cluster_name",
    "external_pid_file", "krb_server_keyfile", "data_sync_retry", "fsync", "full_page_writes",
    "wal_segment_size",
];

/// The parameter named `name`, or a 400 saying why it cannot be set.
pub(crate) fn find(name: &str) -> Result<&'static Param, AppError> {
    if let Some(p) = PARAMETERS.iter().find(|p| p.name == name) {
        return Ok(p);
    }
    let shown: String = name.chars().take(64).collect();
    if name.starts_with("ssl") || MANAGED_BY_BERTH.contains(&name) {
        return Err(AppError::Validation(format!(
            "`{shown}` is managed by Berth and cannot be set"
        )));
    }
    Err(AppError::Validation(format!(
        "unknown parameter `{shown}`; GET …/config lists the {} parameters that can be set",
        PARAMETERS.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(name: &str, v: serde_json::Value) -> Result<String, String> {
        find(name)
            .and_then(|p| p.check(&v))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn values_are_written_as_postgresql_shows_them() {
        assert_eq!(check("work_mem", json!("8192kB")).unwrap(), "8MB");
        assert_eq!(check("work_mem", json!(8192)).unwrap(), "8MB");
        assert_eq!(check("work_mem", json!("1GB")).unwrap(), "1GB");
        assert_eq!(check("shared_buffers", json!(16384)).unwrap(), "128MB");
        assert_eq!(
            check("shared_buffers", json!("16392kB")).unwrap(),
            "16392kB"
        );
        assert_eq!(check("max_wal_size", json!(2048)).unwrap(), "2GB");
        assert_eq!(check("statement_timeout", json!("30000")).unwrap(), "30s");
        assert_eq!(check("statement_timeout", json!("90s")).unwrap(), "90s");
        assert_eq!(check("statement_timeout", json!("120s")).unwrap(), "2min");
        assert_eq!(check("checkpoint_timeout", json!(300)).unwrap(), "5min");
        assert_eq!(
            check("log_min_duration_statement", json!(-1)).unwrap(),
            "-1"
        );
        assert_eq!(
            check("log_min_duration_statement", json!("0")).unwrap(),
            "0"
        );
        assert_eq!(check("jit", json!(false)).unwrap(), "off");
        assert_eq!(check("jit", json!("TRUE")).unwrap(), "on");
        assert_eq!(check("random_page_cost", json!(1.1)).unwrap(), "1.1");
        assert_eq!(check("random_page_cost", json!("4")).unwrap(), "4");
        assert_eq!(check("log_statement", json!("DDL")).unwrap(), "ddl");
        assert_eq!(
            check("default_transaction_isolation", json!("serializable")).unwrap(),
            "serializable"
        );
        assert_eq!(
            check(
                "shared_preload_libraries",
                json!("pg_stat_statements, auto_explain,pg_stat_statements")
            )
            .unwrap(),
            "pg_stat_statements,auto_explain"
        );
        assert_eq!(check("shared_preload_libraries", json!("")).unwrap(), "");
    }

    #[test]
    fn bad_values_name_the_parameter_and_what_it_takes() {
        let e = check("work_mem", json!("4TB")).unwrap_err();
        assert!(e.contains("work_mem") && e.contains("64kB to 2GB"), "{e}");
        let e = check("max_connections", json!(5)).unwrap_err();
        assert!(e.contains("10 to 1000"), "{e}");
        for (name, v) in [
            ("work_mem", json!("8 MiB")),
            ("work_mem", json!("8mb")),
            ("work_mem", json!("-8MB")),
            ("work_mem", json!("8.5MB")),
            ("work_mem", json!("99999999999999999999999")),
            ("work_mem", json!(null)),
            ("work_mem", json!(["8MB"])),
            ("statement_timeout", json!("30 parsecs")),
            ("statement_timeout", json!("-5")),
            ("statement_timeout", json!("8MB")),
            ("shared_buffers", json!("12kB")),
            ("checkpoint_timeout", json!("1500ms")),
            ("jit", json!("maybe")),
            ("random_page_cost", json!("NaN")),
            ("random_page_cost", json!(-1)),
            ("checkpoint_completion_target", json!(1.5)),
            ("log_statement", json!("everything")),
            (
                "shared_preload_libraries",
                json!("pg_stat_statements,/tmp/evil"),
            ),
            ("shared_preload_libraries", json!("plpython3u")),
        ] {
            assert!(check(name, v.clone()).is_err(), "{name} = {v}");
        }
        for (name, why) in [
            ("archive_command", "managed by Berth"),
            ("ssl_key_file", "managed by Berth"),
            ("listen_addresses", "managed by Berth"),
            ("hba_file", "managed by Berth"),
            ("session_preload_libraries", "managed by Berth"),
            ("work_mem ", "unknown parameter"),
            ("no_such_thing", "unknown parameter"),
        ] {
            let e = find(name).unwrap_err().to_string();
            assert!(e.contains(why), "{name}: {e}");
        }
    }

    #[test]
    fn every_default_is_a_value_its_parameter_accepts() {
        for class in berth_engine::MEMORY_CLASSES {
            for p in PARAMETERS {
                let d = p.default_for(class);
                assert_eq!(p.check(&json!(d)).unwrap(), d, "{}", p.name);
            }
        }
        let mut names: Vec<&str> = PARAMETERS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PARAMETERS.len());
    }
}
