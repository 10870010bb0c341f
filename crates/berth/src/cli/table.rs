//! Output for people and for scripts: aligned text tables and `key: value` blocks by default,
//! the server's JSON with `-o json`.

use std::time::Duration;

/// `-o text|json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables and plain text for people.
    Text,
    /// The API's JSON, for scripts.
    Json,
}

/// Columns separated by two spaces, each as wide as its widest cell; no trailing spaces.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; empty cells show as `-` so columns stay readable (and `awk`-able).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.headers.len());
        let cells = cells
            .into_iter()
            .map(|c| {
                let c = c.replace(['\n', '\r', '\t'], " ");
                if c.is_empty() {
                    "-".to_owned()
                } else {
                    c
                }
            })
            .collect();
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    out.push_str("  ");
                }
                out.push_str(cell);
                if i + 1 < cells.len() {
                    out.extend(std::iter::repeat_n(' ', w - width(cell)));
                }
            }
            out.trim_end().to_owned()
        };
        let mut lines = vec![line(&self.headers)];
        lines.extend(self.rows.iter().map(|r| line(r)));
        lines.join("\n")
    }
}

/// `Label:  value` lines with the values aligned; rows without a value are left out.
pub fn fields(rows: &[(&str, Option<String>)]) -> String {
    let width = rows
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.chars().count() + 1)
        .max()
        .unwrap_or(0);
    rows.iter()
        .filter_map(|(k, v)| {
            v.as_ref().map(|v| {
                format!("{:<width$}  {v}", format!("{k}:"))
                    .trim_end()
                    .to_owned()
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// "0.4s", "12.0s", "2m05s", for elapsed times.
pub fn elapsed(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Parses "300", "300s", "5m", "1h", "500ms" (for `--timeout`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 300s, 5m or 1h)"))?;
    let d = match unit.trim() {
        "" | "s" | "sec" | "secs" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ms, s, m or h)"
            ))
        }
    };
    if d.is_zero() {
        return Err("the duration must be more than zero".into());
    }
    Ok(d)
}

/// Pretty JSON for `-o json`.
pub fn json(value: &serde_json::Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let mut t = Table::new(&["NAME", "STATUS", "ID"]);
        t.row(vec!["db1".into(), "running".into(), "0190-a".into()]);
        t.row(vec![
            "a-much-longer-name".into(),
            "".into(),
            "0190-b".into(),
        ]);
        t.row(vec!["é".into(), "paused\nx".into(), "".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "NAME                STATUS    ID",
                "db1                 running   0190-a",
                "a-much-longer-name  -         0190-b",
                "é                   paused x  -",
            ]
        );
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }

    #[test]
    fn fields_align_and_skip_missing_values() {
        let text = fields(&[
            ("Name", Some("db1".into())),
            ("Status message", None),
            ("Connection URL", Some("postgresql://app@h:1/app".into())),
        ]);
        assert_eq!(
            text,
            "Name:            db1\nConnection URL:  postgresql://app@h:1/app"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("-5s").is_err());

        assert_eq!(elapsed(Duration::from_millis(430)), "0.4s");
        assert_eq!(elapsed(Duration::from_secs(125)), "2m05s");
    }
}
