//! Reading a PostgreSQL log as entries, and paging through them with a cursor.
//!
//! PostgreSQL writes one line per message with the prefix `%m [%p] ` (its default
//! `log_line_prefix`): `2025-01-01 12:00:00.123 UTC [4242] ERROR:  division by zero`. A
//! message's own further lines follow with a leading tab, and the lines it adds about the same
//! event (`DETAIL`, `HINT`, `CONTEXT`, `STATEMENT`, `QUERY`) come next with a prefix of their
//! own; both are attached to the entry they belong to. Lines without a prefix (what a program
//! the server runs, such as the archive command, writes to its stderr) are entries of their own,
//! dated like the entry before them.
//!
//! Positions are times, not byte offsets: the log is rotated by copying and truncating, so an
//! offset means something else after a rotation, while a time does not. Several entries often
//! share a millisecond, so a [`LogCursor`] is a time plus how many entries of exactly that time
//! were already returned: paging with it loses no entry and repeats none.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

pub use berth_types::LogEntry;

/// The longest text kept of one field of an entry (a huge statement is cut).
const MAX_FIELD: usize = 8 * 1024;

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStart {
    /// The most recent `limit` entries.
    Recent,
    /// Entries logged at or after this moment.
    Since(DateTime<Utc>),
    /// Entries after those an earlier page returned.
    After(LogCursor),
}

/// The position after a page: entries later than `time`, and those at exactly `time` beyond
/// the first `seen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogCursor {
    pub time: DateTime<Utc>,
    pub seen: u32,
}

impl LogCursor {
    /// `<microseconds since 1970>-<seen>`: opaque to clients.
    pub fn encode(&self) -> String {
        format!("{}-{}", self.time.timestamp_micros(), self.seen)
    }

    pub fn decode(text: &str) -> Option<LogCursor> {
        let (micros, seen) = text.split_once('-')?;
        if micros.is_empty() || micros.len() > 19 || !micros.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(LogCursor {
            time: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            seen: seen.parse().ok()?,
        })
    }
}

/// What a log read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRequest {
    pub start: LogStart,
    /// At least 1.
    pub limit: usize,
}

/// One page of entries, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSlice {
    pub entries: Vec<LogEntry>,
    /// Entries from the page's start to the end of the log.
    pub count: usize,
    /// More entries follow this page already.
    pub more: bool,
    /// The position after this page (for the next page, or to poll for new entries).
    pub cursor: LogCursor,
}

const SEVERITIES: &[&str] = &[
    "LOG", "ERROR", "WARNING", "FATAL", "PANIC", "INFO", "NOTICE", "DEBUG", "DEBUG1", "DEBUG2",
    "DEBUG3", "DEBUG4", "DEBUG5",
];
const ATTACHED: &[&str] = &[
    "DETAIL",
    "HINT",
    "CONTEXT",
    "STATEMENT",
    "QUERY",
    "LOCATION",
];

/// A prefixed line: its time, pid, severity and text.
struct Line<'a> {
    time: DateTime<Utc>,
    pid: Option<i32>,
    severity: &'a str,
    text: &'a str,
}

/// `YYYY-MM-DD HH:MM:SS[.fff] TZ [pid] SEVERITY:  text`.
fn parse_line(line: &str) -> Option<Line<'_>> {
    let (date, rest) = line.split_at_checked(10)?;
    let rest = rest.strip_prefix(' ')?;
    let (clock, rest) = rest.split_once(' ')?;
    let naive =
        NaiveDateTime::parse_from_str(&format!("{date} {clock}"), "%Y-%m-%d %H:%M:%S%.f").ok()?;
    let (zone, rest) = rest.split_once(' ')?;
    let time = Utc.from_utc_datetime(&(naive - zone_offset(zone)?));
    let (pid, rest) = match rest.strip_prefix('[') {
        Some(r) => {
            let (pid, r) = r.split_once("] ")?;
            (pid.parse().ok(), r)
        }
        None => (None, rest),
    };
    let (severity, text) = rest.split_once(':')?;
    if !SEVERITIES.contains(&severity) && !ATTACHED.contains(&severity) {
        return None;
    }
    Some(Line {
        time,
        pid,
        severity,
        text: text.trim_start_matches(' '),
    })
}

/// The offset of a zone as `%m` prints it: `UTC`, `GMT`, `+03`, `-0530`, `+05:30`. Other
/// abbreviations are taken as UTC (Berth's clusters log in UTC unless the host's zone differs).
fn zone_offset(zone: &str) -> Option<chrono::Duration> {
    let Some((sign, digits)) = zone
        .strip_prefix('+')
        .map(|d| (1, d))
        .or_else(|| zone.strip_prefix('-').map(|d| (-1, d)))
    else {
        return zone
            .bytes()
            .all(|b| b.is_ascii_alphabetic())
            .then(chrono::Duration::zero);
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = if digits.len() == 4 {
        digits[2..].parse().ok()?
    } else {
        0
    };
    Some(chrono::Duration::minutes(sign * (hours * 60 + minutes)))
}

fn capped(mut s: String) -> String {
    if s.len() > MAX_FIELD {
        let mut cut = MAX_FIELD;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn append(field: &mut String, text: &str) {
    if field.len() <= MAX_FIELD {
        field.push('\n');
        field.push_str(text);
    }
}

/// Which part of the last entry a tab-continued line extends.
#[derive(Clone, Copy)]
enum Part {
    Message,
    Attached(&'static str),
}

fn slot<'e>(e: &'e mut LogEntry, name: &str) -> &'e mut Option<String> {
    match name {
        "DETAIL" => &mut e.detail,
        "HINT" => &mut e.hint,
        "STATEMENT" | "QUERY" => &mut e.statement,
        _ => &mut e.context,
    }
}

/// Parses the text of one log file into entries, in file order. `redact` hides what tenants
/// must not read (host paths). A last line without its newline is being written: left out.
pub fn parse_log(text: &str, redact: &dyn Fn(&str) -> String) -> Vec<LogEntry> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    let mut out: Vec<LogEntry> = Vec::new();
    let mut part = Part::Message;
    // Entries before the first dated one (all at the start of `out`) take its time.
    let mut undated = 0usize;
    let mut dated = false;
    for raw in complete.split('\n') {
        let line = raw.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('\t') {
            if let Some(last) = out.last_mut() {
                let text = redact(rest);
                match part {
                    Part::Message => append(&mut last.message, &text),
                    Part::Attached(name) => {
                        if let Some(f) = slot(last, name).as_mut() {
                            append(f, &text);
                        }
                    }
                }
                continue;
            }
        }
        let Some(l) = parse_line(line) else {
            let time = if dated {
                out.last().map_or(DateTime::UNIX_EPOCH, |e| e.time)
            } else {
                undated += 1;
                DateTime::UNIX_EPOCH
            };
            out.push(entry(time, "LOG", None, redact(line)));
            part = Part::Message;
            continue;
        };
        if let Some(name) = ATTACHED.iter().find(|a| **a == l.severity).copied() {
            if let Some(last) = out.last_mut().filter(|last| dated && last.pid == l.pid) {
                let text = redact(l.text);
                let field = slot(last, name);
                match field {
                    Some(f) => append(f, &text),
                    None => *field = Some(capped(text)),
                }
                part = Part::Attached(name);
                continue;
            }
        }
        for e in &mut out[..undated] {
            e.time = l.time;
        }
        undated = 0;
        dated = true;
        out.push(entry(l.time, l.severity, l.pid, redact(l.text)));
        part = Part::Message;
    }
    for e in &mut out {
        e.message = capped(std::mem::take(&mut e.message));
    }
    out
}

fn entry(time: DateTime<Utc>, severity: &str, pid: Option<i32>, message: String) -> LogEntry {
    LogEntry {
        time,
        severity: severity.to_owned(),
        pid,
        message,
        detail: None,
        hint: None,
        context: None,
        statement: None,
    }
}

/// The page `req` asks for out of `all` (every entry, in time order).
pub fn page(all: &[LogEntry], req: &LogRequest) -> LogSlice {
    let limit = req.limit.max(1);
    let before = |t: DateTime<Utc>| all.partition_point(|e| e.time < t);
    let start = match req.start {
        LogStart::Recent => all.len().saturating_sub(limit),
        LogStart::Since(t) => before(t),
        LogStart::After(c) => {
            let lt = before(c.time);
            let le = all.partition_point(|e| e.time <= c.time);
            lt + (c.seen as usize).min(le - lt)
        }
    };
    let end = start.saturating_add(limit).min(all.len());
    let cursor = match (end > start, req.start) {
        (true, _) => {
            let t = all[end - 1].time;
            LogCursor {
                time: t,
                seen: u32::try_from(end - before(t)).unwrap_or(u32::MAX),
            }
        }
        (false, LogStart::After(c)) => c,
        (false, LogStart::Since(t)) => LogCursor { time: t, seen: 0 },
        (false, LogStart::Recent) => LogCursor {
            time: DateTime::UNIX_EPOCH,
            seen: 0,
        },
    };
    LogSlice {
        entries: all[start..end].to_vec(),
        count: all.len() - start,
        more: end < all.len(),
        cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(s: &str) -> String {
        s.replace("/srv/berth/instances", "<instances>")
    }

    const LOG: &str = "\
2025-01-01 12:00:00.100 UTC [10] LOG:  database system is ready to accept connections
2025-01-01 12:00:01.000 UTC [20] ERROR:  division by zero
2025-01-01 12:00:01.000 UTC [20] STATEMENT:  SELECT 1/0
\tFROM nowhere
2025-01-01 12:00:01.000 UTC [21] ERROR:  relation \"x\" does not exist at character 15
2025-01-01 12:00:01.000 UTC [21] HINT:  Perhaps you meant \"y\".
2025-01-01 12:00:02.500 +02 [10] LOG:  configuration file \"/srv/berth/instances/a/pgdata/postgresql.conf\" contains errors
ERROR: [082]: an archive tool's own line
2025-01-01 10:00:03.000 UTC [10] LOG:  line one
\tline two
2025-01-01 10:00:04.000 UTC [10] LOG:  half a li";

    #[test]
    fn entries_carry_their_attached_lines_and_lose_host_paths() {
        let all = parse_log(LOG, &plain);
        assert_eq!(all.len(), 6, "{all:#?}");
        assert_eq!(all[1].severity, "ERROR");
        assert_eq!(all[1].message, "division by zero");
        assert_eq!(
            all[1].statement.as_deref(),
            Some("SELECT 1/0\nFROM nowhere")
        );
        assert_eq!(all[1].pid, Some(20));
        assert_eq!(all[2].hint.as_deref(), Some("Perhaps you meant \"y\"."));
        // +02: two hours behind in UTC.
        assert_eq!(
            all[3].time,
            Utc.with_ymd_and_hms(2025, 1, 1, 10, 0, 2).unwrap()
                + chrono::Duration::milliseconds(500)
        );
        assert!(all[3].message.contains("<instances>/a/pgdata"));
        assert!(!all[3].message.contains("/srv"));
        assert_eq!(all[4].message, "ERROR: [082]: an archive tool's own line");
        assert_eq!(all[4].time, all[3].time);
        assert_eq!(all[5].message, "line one\nline two");
    }

    #[test]
    fn undated_lines_before_the_first_entry_take_its_time() {
        let all = parse_log(
            "orphan\n2025-01-01 12:00:00.000 GMT [1] FATAL:  x\n",
            &plain,
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].time, all[1].time);
        assert_eq!(all[1].severity, "FATAL");
    }

    #[test]
    fn a_cursor_loses_and_repeats_nothing_when_times_repeat() {
        let t = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        let mut all: Vec<LogEntry> = (0..7)
            .map(|i| {
                entry(
                    t + chrono::Duration::seconds(i / 3),
                    "LOG",
                    None,
                    i.to_string(),
                )
            })
            .collect();
        let mut seen = Vec::new();
        let mut req = LogRequest {
            start: LogStart::Since(t),
            limit: 2,
        };
        loop {
            let p = page(&all, &req);
            seen.extend(p.entries.iter().map(|e| e.message.clone()));
            assert_eq!(LogCursor::decode(&p.cursor.encode()), Some(p.cursor));
            req.start = LogStart::After(p.cursor);
            if !p.more {
                break;
            }
        }
        assert_eq!(seen, ["0", "1", "2", "3", "4", "5", "6"]);
        // Written later, at the same time as the last: returned once, by the next poll.
        all.push(entry(
            t + chrono::Duration::seconds(2),
            "LOG",
            None,
            "7".into(),
        ));
        let p = page(&all, &req);
        assert_eq!(p.entries.len(), 1);
        assert_eq!(p.entries[0].message, "7");
        let p = page(
            &all,
            &LogRequest {
                start: LogStart::After(p.cursor),
                limit: 2,
            },
        );
        assert!(p.entries.is_empty() && !p.more && p.count == 0);
        // Recent: the last two.
        let p = page(
            &all,
            &LogRequest {
                start: LogStart::Recent,
                limit: 2,
            },
        );
        assert_eq!(p.entries[0].message, "6");
        for bad in [
            "",
            "-1",
            "x-1",
            "1-",
            "1-x",
            "99999999999999999999-1",
            "+1-2",
        ] {
            assert_eq!(LogCursor::decode(bad), None, "{bad}");
        }
    }
}
