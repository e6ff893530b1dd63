//! Where results go: stdout for results (text or JSON), stderr for notes and summaries.

use std::io::Write as _;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::failure::Failure;
use crate::items::one_line;

/// The output settings of a run.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
    quiet: bool,
}

impl Output {
    /// Text output, or JSON when `json`; no notes on stderr when `quiet`.
    pub fn new(json: bool, quiet: bool) -> Self {
        Output { json, quiet }
    }

    /// Whether results are JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Whether status lines and summaries go to stderr (not with `--quiet` or `--json`).
    pub fn notes(&self) -> bool {
        !self.quiet && !self.json
    }

    /// Writes `bytes` to stdout.
    pub fn raw(&self, bytes: &[u8]) -> Result<(), Failure> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(bytes)
            .and_then(|()| stdout.flush())
            .map_err(|e| Failure::stdout(&e))
    }

    /// Writes one line to stdout.
    pub fn line(&self, text: &str) -> Result<(), Failure> {
        self.raw(format!("{text}\n").as_bytes())
    }

    /// Writes a JSON value on one line to stdout.
    pub fn value(&self, value: &Value) -> Result<(), Failure> {
        self.line(&value.to_string())
    }

    /// A result: `json` with `--json`, else `text`.
    pub fn result(&self, json: &Value, text: &str) -> Result<(), Failure> {
        if self.json {
            self.value(json)
        } else {
            self.line(text)
        }
    }

    /// A note or summary on stderr, unless `--quiet` or `--json`.
    pub fn note(&self, text: &str) {
        if self.notes() {
            // A note is not worth failing over.
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    /// Items: JSON Lines, or one JSON array with `--json`.
    pub fn items(&self, items: &[String]) -> Result<(), Failure> {
        let text = if self.json {
            json_array(items, false)
        } else {
            json_lines(items)
        };
        self.raw(text.as_bytes())
    }
}

/// `items` as a JSON array, each item's text kept as stored; on lines of their own when
/// `pretty`. An item that is not valid JSON (never expected) becomes `null`.
pub fn json_array(items: &[String], pretty: bool) -> String {
    let (open, sep, close) = if pretty {
        ("[\n", ",\n", "\n]\n")
    } else {
        ("[", ",", "]\n")
    };
    if items.is_empty() {
        return "[]\n".to_string();
    }
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 2).sum::<usize>() + 4);
    out.push_str(open);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        match RawValue::from_string(item.clone()) {
            Ok(raw) => out.push_str(raw.get()),
            Err(_) => out.push_str("null"),
        }
    }
    out.push_str(close);
    out
}

/// `items` as JSON Lines, one item per line.
pub fn json_lines(items: &[String]) -> String {
    let mut out = String::with_capacity(items.iter().map(|i| i.len() + 1).sum());
    for item in items {
        out.push_str(&one_line(item));
        out.push('\n');
    }
    out
}

/// An item's JSON value (`null` if it is not valid JSON, which the component never returns).
pub fn item_value(item: &str) -> Value {
    serde_json::from_str(item).unwrap_or(Value::Null)
}

/// A time in milliseconds since the Unix epoch as UTC, e.g. `2026-05-01T12:00:00.123Z`.
pub fn utc(ms: u64) -> String {
    let days = ms / 86_400_000;
    let in_day = ms % 86_400_000;
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::{json_array, json_lines, utc};

    #[test]
    fn utc_formats_epoch_milliseconds() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_795_252_059_617), "2026-11-21T09:07:39.617Z");
    }

    #[test]
    fn arrays_and_lines_keep_item_text() {
        let items = vec![
            "{\"b\":1,\"a\":2}".to_string(),
            "{\n \"c\": 3\n}".to_string(),
        ];
        assert_eq!(
            json_array(&items, false),
            "[{\"b\":1,\"a\":2},{\n \"c\": 3\n}]\n"
        );
        assert_eq!(json_array(&[], true), "[]\n");
        assert_eq!(json_lines(&items), "{\"b\":1,\"a\":2}\n{\"c\":3}\n");
    }
}
