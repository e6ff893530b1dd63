//! The session the middleware wraps, as a trait: the imported `session` resource in the
//! component, an in-memory session in tests.

use crate::error::Result;

/// Stored items as read, with the session version they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The newest items (all, or the newest `limit`), oldest first.
    pub items: Vec<String>,
    /// Position of the first of `items` in the whole history; `items[i]` is at `first + i`.
    pub first: u64,
    /// Opaque version; any write changes it.
    pub version: String,
}

impl Snapshot {
    /// Position just past the newest item: the history's length.
    pub fn end(&self) -> u64 {
        self.first.saturating_add(self.items.len() as u64)
    }
}

/// A session's timestamps, in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    /// Time of the first write.
    pub created_at: Option<u64>,
    /// Time of the latest write.
    pub updated_at: Option<u64>,
}

/// The operations of the session interface the middleware calls on the session it wraps.
/// (It never calls `pop-item` or `get-items`: pops and reads go through snapshots, so that a
/// pop can remove exactly the item it authenticated.)
pub trait Inner {
    /// `get-snapshot(limit)`.
    fn get_snapshot(&self, limit: Option<u32>) -> Result<Snapshot>;
    /// `add-items(items)`: one atomic batch.
    fn add_items(&self, items: &[String]) -> Result<()>;
    /// `replace(items, expected)`.
    fn replace(&self, items: &[String], expected: Option<&str>) -> Result<()>;
    /// `replace-suffix(start, items, expected)`.
    fn replace_suffix(&self, start: u64, items: &[String], expected: Option<&str>) -> Result<()>;
    /// `clear()`.
    fn clear(&self) -> Result<()>;
    /// `ping()`.
    fn ping(&self) -> Result<()>;
    /// `metadata()`.
    fn metadata(&self) -> Result<Metadata>;
}
