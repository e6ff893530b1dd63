//! Reading back from the newest stored item until enough of them are live.
//!
//! Expired, foreign and plain items are skipped, so `n` live items may need more than `n`
//! stored ones. A limited read starts with a window of the size it needs and doubles it (as
//! Python's `EncryptedSession.get_items` does) until the window holds enough live items or
//! reaches the oldest item; every widening reads a fresh snapshot, and the stored items fetched
//! in total are bounded (then `too-many-items` with the count).

use crate::codec::{self, Opened};
use crate::error::{Error, Result};
use crate::fernet::Ttl;
use crate::inner::{Inner, Snapshot};
use crate::key::SessionKey;

/// The newest stored items of one snapshot, each with what it is to this key, back to the
/// oldest live item wanted (or the whole snapshot when it holds fewer).
#[derive(Debug)]
pub struct Window {
    /// Version of the snapshot the items come from.
    pub version: String,
    /// Position of `items[0]` in the whole history.
    pub start: u64,
    /// Position just past the newest item.
    pub end: u64,
    /// The stored items from `start` to `end`, oldest first.
    pub items: Vec<(String, Opened)>,
    /// Whether the read reached the oldest stored item before finding as many live items as
    /// wanted: the window then holds every live item of the history.
    pub complete: bool,
}

impl Window {
    /// Every stored item of a snapshot, classified.
    pub fn whole(snapshot: Snapshot, key: &SessionKey, ttl: Option<Ttl>) -> Self {
        let end = snapshot.end();
        let items = snapshot
            .items
            .into_iter()
            .map(|stored| {
                let opened = codec::open(key, &stored, ttl);
                (stored, opened)
            })
            .collect();
        Self {
            version: snapshot.version,
            start: snapshot.first,
            end,
            items,
            complete: true,
        }
    }

    /// The live items' texts, oldest first.
    pub fn live(&self) -> Vec<String> {
        self.items
            .iter()
            .filter_map(|(_, opened)| match opened {
                Opened::Live(text) => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    /// Index in `items` of the oldest live item.
    pub fn oldest_live(&self) -> Option<usize> {
        self.items
            .iter()
            .position(|(_, opened)| matches!(opened, Opened::Live(_)))
    }

    /// The stored text of the unreadable items from `items[from]` on, oldest first: what a
    /// write replacing those positions must keep.
    pub fn unreadable_from(&self, from: usize) -> Vec<String> {
        self.items
            .get(from..)
            .unwrap_or_default()
            .iter()
            .filter(|(_, opened)| matches!(opened, Opened::Unreadable(_)))
            .map(|(stored, _)| stored.clone())
            .collect()
    }
}

/// Reads the newest stored items until `want` (at least 1) of them are live, starting with a
/// window of `first_window` and fetching at most `max_scan` stored items in total.
pub fn newest(
    inner: &dyn Inner,
    key: &SessionKey,
    ttl: Option<Ttl>,
    want: u32,
    first_window: u32,
    max_scan: u32,
) -> Result<Window> {
    let want = want.max(1);
    let max_scan = u64::from(max_scan.max(1));
    let mut window = u64::from(first_window.max(1)).min(max_scan);
    let mut scanned = 0u64;
    loop {
        let snapshot = inner.get_snapshot(Some(u32::try_from(window).unwrap_or(u32::MAX)))?;
        let fetched = snapshot.items.len() as u64;
        scanned = scanned.saturating_add(fetched);
        let reached_oldest = snapshot.first == 0 || fetched < window;
        let end = snapshot.end();
        let mut items = Vec::new();
        let mut live = 0u32;
        for stored in snapshot.items.into_iter().rev() {
            let opened = codec::open(key, &stored, ttl);
            live += u32::from(matches!(opened, Opened::Live(_)));
            items.push((stored, opened));
            if live == want {
                break;
            }
        }
        if live == want || reached_oldest {
            items.reverse();
            return Ok(Window {
                version: snapshot.version,
                start: end.saturating_sub(items.len() as u64),
                end,
                items,
                complete: live < want,
            });
        }
        let next = window
            .saturating_mul(2)
            .min(max_scan.saturating_sub(scanned));
        if next <= window {
            return Err(Error::TooManyItems(scanned));
        }
        window = next;
    }
}
