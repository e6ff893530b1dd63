//! Storage layouts: how a session's items and timestamps map onto Dapr state keys.
//!
//! - [`log`]: the default, a head and immutable chunks;
//! - [`compat`]: the Python `DaprSession` layout;
//! - [`keys`]: the keys of both; [`chunk`]: the stored form of a run of items, which both use.

pub mod chunk;
pub mod compat;
pub mod keys;
pub mod log;

use crate::dapr::DaprClient;
use crate::error::Result;

/// Created/updated timestamps of a session, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamps {
    /// Time of the first write.
    pub created_at: Option<u64>,
    /// Time of the latest write.
    pub updated_at: Option<u64>,
}

/// How a read treats stored entries that are not readable items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `get-items`: skip them; a positive limit counts readable items (the SDK's contract).
    Skip,
    /// `get-snapshot`: the items returned are consecutive (item `i` is at `first + i`), so
    /// the window stops after the newest unreadable entry.
    Consecutive,
}

/// Items as read, with their position and the version of the session they were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The items, oldest first.
    pub items: Vec<String>,
    /// Position of the first of them in the session.
    pub first: u64,
    /// Opaque version of the session as read.
    pub version: String,
}

impl Snapshot {
    /// No items, at `version`.
    pub fn empty(version: String) -> Self {
        Snapshot {
            items: Vec::new(),
            first: 0,
            version,
        }
    }

    /// The newest `limit` readable items of `entries` (all if `None`), whose first is at
    /// position `start`; `None` entries are not readable items and are treated as `mode`
    /// says. A whole read in `Skip` mode reports position 0.
    pub fn of(
        start: u64,
        entries: Vec<Option<String>>,
        limit: Option<u64>,
        version: String,
        mode: Mode,
    ) -> Self {
        let end = start + entries.len() as u64;
        if limit.is_none() && mode == Mode::Skip {
            return Snapshot {
                items: entries.into_iter().flatten().collect(),
                first: 0,
                version,
            };
        }
        let limit = limit.unwrap_or(u64::MAX);
        let mut items = Vec::new();
        let mut first = end;
        for (i, e) in entries.into_iter().enumerate().rev() {
            if items.len() as u64 >= limit {
                break;
            }
            match e {
                Some(item) => {
                    items.push(item);
                    first = start + i as u64;
                }
                None if mode == Mode::Consecutive => break,
                None => {}
            }
        }
        items.reverse();
        Snapshot {
            items,
            first,
            version,
        }
    }
}

/// The layout a session uses.
pub enum Layout {
    /// A head and immutable chunks.
    Log(Box<log::Log<DaprClient>>),
    /// The Python `DaprSession` layout: one JSON array value per session.
    Compat(Box<compat::Compat<DaprClient>>),
}

impl Layout {
    /// The newest `limit` readable items (all if `None`), their position and the version.
    pub async fn snapshot(&self, limit: Option<u32>, mode: Mode) -> Result<Snapshot> {
        match self {
            Layout::Log(l) => l.snapshot(limit, mode).await,
            Layout::Compat(l) => l.snapshot(limit, mode).await,
        }
    }

    /// Appends a batch of checked item texts, atomically.
    pub async fn add_items(&self, items: &[&str]) -> Result<()> {
        match self {
            Layout::Log(l) => l.add_items(items).await,
            Layout::Compat(l) => l.add_items(items).await,
        }
    }

    /// Removes and returns the newest readable item.
    pub async fn pop_item(&self) -> Result<Option<String>> {
        match self {
            Layout::Log(l) => l.pop_item().await,
            Layout::Compat(l) => l.pop_item().await,
        }
    }

    /// Removes every item and the timestamps.
    pub async fn clear(&self) -> Result<()> {
        match self {
            Layout::Log(l) => l.clear().await,
            Layout::Compat(l) => l.clear().await,
        }
    }

    /// Replaces the items from `start` (all if `None`) with `items`, atomically, if the
    /// session is at version `expected` (when given).
    pub async fn replace(
        &self,
        start: Option<u64>,
        items: &[&str],
        expected: Option<&str>,
    ) -> Result<()> {
        match self {
            Layout::Log(l) => l.replace(start, items, expected).await,
            Layout::Compat(l) => l.replace(start, items, expected).await,
        }
    }

    /// The session's timestamps.
    pub async fn timestamps(&self) -> Result<Timestamps> {
        match self {
            Layout::Log(l) => l.timestamps().await,
            Layout::Compat(l) => l.timestamps().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Mode, Snapshot};

    fn entries(v: &[Option<&str>]) -> Vec<Option<String>> {
        v.iter().map(|x| x.map(str::to_string)).collect()
    }

    #[test]
    fn reads_walk_back_past_unreadable_entries() {
        let e = entries(&[Some("a"), Some("b"), None, Some("c"), None]);
        let of = |limit| Snapshot::of(10, e.clone(), limit, "v".into(), Mode::Skip);
        let s = of(Some(2));
        assert_eq!((s.items, s.first), (vec!["b".to_string(), "c".into()], 11));
        let s = of(None);
        assert_eq!((s.items.len(), s.first), (3, 0));
        let s = of(Some(0));
        assert_eq!((s.items.len(), s.first), (0, 15));
        let s = of(Some(u64::MAX));
        assert_eq!((s.items.len(), s.first), (3, 10));
    }

    #[test]
    fn snapshots_are_consecutive() {
        let e = entries(&[Some("a"), Some("b"), None, Some("c"), Some("d")]);
        let of = |limit| Snapshot::of(10, e.clone(), limit, "v".into(), Mode::Consecutive);
        let s = of(None);
        assert_eq!((s.items, s.first), (vec!["c".to_string(), "d".into()], 13));
        let s = of(Some(1));
        assert_eq!((s.items, s.first), (vec!["d".to_string()], 14));
        let s = of(Some(0));
        assert_eq!((s.items.len(), s.first), (0, 15));
        let clean = Snapshot::of(
            0,
            entries(&[Some("a"), Some("b")]),
            None,
            "v".into(),
            Mode::Consecutive,
        );
        assert_eq!((clean.items.len(), clean.first), (2, 0));
    }
}
