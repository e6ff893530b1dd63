//! Storage layouts: how a session's items and timestamps map onto Dapr state keys.

pub mod compat;
pub mod log;

use crate::dapr::{DaprClient, DaprError};
use crate::error::Result;

/// Created/updated timestamps of a session, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timestamps {
    /// Time of the first write.
    pub created_at: Option<u64>,
    /// Time of the latest write.
    pub updated_at: Option<u64>,
}

/// The layout a session uses.
pub enum Layout {
    /// Head key plus one key per item; costs independent of the history length.
    Log(Box<log::Log>),
    /// The Python `DaprSession` layout: one JSON array value per session.
    Compat(Box<compat::Compat>),
}

impl Layout {
    /// The newest `limit` valid items, oldest first; all of them when `limit` is `None`.
    pub async fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>> {
        match self {
            Layout::Log(l) => l.get_items(limit).await,
            Layout::Compat(l) => l.get_items(limit).await,
        }
    }

    /// Appends a batch of validated item texts, atomically.
    pub async fn add_items(&self, items: &[&str]) -> Result<()> {
        match self {
            Layout::Log(l) => l.add_items(items).await,
            Layout::Compat(l) => l.add_items(items).await,
        }
    }

    /// Removes and returns the newest valid item.
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

    /// The session's timestamps.
    pub async fn timestamps(&self) -> Result<Timestamps> {
        match self {
            Layout::Log(l) => l.timestamps().await,
            Layout::Compat(l) => l.timestamps().await,
        }
    }
}

/// The newest `limit` decodable entries of `entries`, oldest first.
///
/// Walks back from the newest entry, skipping entries `decode` rejects, so a positive limit
/// counts valid items. Allocates for at most `min(limit, entries.len())` items.
pub fn newest<T, U>(entries: &[T], limit: Option<u32>, decode: impl Fn(&T) -> Option<U>) -> Vec<U> {
    let wanted = limit.map_or(entries.len(), |l| {
        usize::try_from(l).unwrap_or(usize::MAX).min(entries.len())
    });
    let mut out = Vec::with_capacity(wanted);
    for entry in entries.iter().rev() {
        if out.len() >= wanted {
            break;
        }
        if let Some(item) = decode(entry) {
            out.push(item);
        }
    }
    out.reverse();
    out
}

/// Decides what a failed etag-guarded write means: `Ok(())` if it lost a race (retry),
/// the error otherwise.
///
/// A 409 is a lost race. A create (no etag) that failed another way is one only if the key
/// exists now: stores report a lost create as 409 (in-memory, SQLite) or as a 500 (Redis,
/// PostgreSQL). Timeouts and broken connections are never treated as lost races: the write
/// may have been applied, and retrying it could apply it twice.
pub async fn lost_race(
    client: &DaprClient,
    key: &str,
    had_etag: bool,
    err: DaprError,
) -> Result<()> {
    if err.status() == Some(409) {
        return Ok(());
    }
    if !had_etag && matches!(err, DaprError::Status { .. }) && client.get(key).await?.is_some() {
        return Ok(());
    }
    Err(err.into())
}

#[cfg(test)]
mod tests {
    use super::newest;

    #[test]
    fn newest_walks_back_past_invalid_entries() {
        let entries = [Some(0), Some(1), None, Some(2), None];
        let pick = |e: &Option<i32>| *e;
        assert_eq!(newest(&entries, Some(2), pick), vec![1, 2]);
        assert_eq!(newest(&entries, None, pick), vec![0, 1, 2]);
        assert_eq!(newest(&entries, Some(0), pick), Vec::<i32>::new());
        assert_eq!(newest(&entries, Some(u32::MAX), pick), vec![0, 1, 2]);
        assert!(newest(&entries, Some(u32::MAX), pick).capacity() <= entries.len());
    }
}
