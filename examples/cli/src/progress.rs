//! A status line on stderr for long-running commands.
//!
//! On a terminal the line is redrawn in place (`\r`); otherwise a line is printed at most
//! about once a second or every 10% of the work, so logs stay short.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// How often a terminal line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(100);
/// How often a log line is printed at most (besides every 10%).
const LOG_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    Terminal,
    Log,
}

/// Progress of `verb`ing `total` items.
pub struct Progress {
    mode: Mode,
    verb: &'static str,
    total: usize,
    last: Option<Instant>,
    last_tenth: usize,
    drawn: bool,
}

impl Progress {
    /// A status line for `verb`ing `total` items; prints nothing unless `enabled`.
    pub fn new(verb: &'static str, total: usize, enabled: bool) -> Self {
        let mode = match (enabled, std::io::stderr().is_terminal()) {
            (false, _) => Mode::Off,
            (true, true) => Mode::Terminal,
            (true, false) => Mode::Log,
        };
        Progress {
            mode,
            verb,
            total,
            last: None,
            last_tenth: 0,
            drawn: false,
        }
    }

    /// Reports that `done` items are done.
    pub fn update(&mut self, done: usize) {
        let now = Instant::now();
        let since = self.last.map(|t| now.duration_since(t));
        match self.mode {
            Mode::Off => {}
            Mode::Terminal => {
                if done >= self.total || since.is_none_or(|s| s >= REDRAW) {
                    self.print(&format!("\r\x1b[2K{}", self.line(done)));
                    self.drawn = true;
                    self.last = Some(now);
                }
            }
            Mode::Log => {
                let tenth = (done * 10).checked_div(self.total).unwrap_or(10);
                let due = tenth > self.last_tenth || since.is_some_and(|s| s >= LOG_EVERY);
                if done > 0 && done < self.total && due {
                    self.print(&format!("{}\n", self.line(done)));
                    self.last_tenth = tenth;
                    self.last = Some(now);
                } else if self.last.is_none() {
                    self.last = Some(now);
                }
            }
        }
    }

    /// Shows a transient message on a terminal (nothing in a log).
    pub fn note(&mut self, text: &str) {
        if self.mode == Mode::Terminal {
            self.print(&format!("\r\x1b[2K{text}"));
            self.drawn = true;
        }
    }

    /// Erases the terminal line, before a summary or an error is printed.
    pub fn clear(&mut self) {
        if self.drawn {
            self.print("\r\x1b[2K");
            self.drawn = false;
        }
    }

    fn line(&self, done: usize) -> String {
        let percent = (done * 100).checked_div(self.total).unwrap_or(100);
        format!(
            "{} {}/{} items ({percent}%)",
            self.verb,
            count(done),
            count(self.total)
        )
    }

    fn print(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        // A status line is not worth failing over.
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

/// `n` with thousands separators: `10,000`.
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n noun`, with an `s` unless `n` is 1.
pub fn plural(n: usize, noun: &str) -> String {
    format!("{} {noun}{}", count(n), if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::{count, plural};

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(plural(1, "item"), "1 item");
        assert_eq!(plural(3000, "item"), "3,000 items");
    }
}
