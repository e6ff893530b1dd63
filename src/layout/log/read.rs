//! The read path: the head, then the chunks a read needs, all at once.
//!
//! A whole read fetches every chunk in parallel; a limited read only the newest chunks that
//! cover the limit (none, when the tail does). An instance that has seen the head before
//! guesses the chunks from it and fetches them together with the head: chunks are immutable,
//! so a guess is either right or unused. A chunk that cannot be fetched means the head moved
//! under the read (the commit after the one that dropped a chunk deletes it): the read starts
//! over. If the head did not move, the chunk is lost or corrupt, and its items are skipped,
//! as corrupt entries are; a positive limit still counts valid items, looking further back.

use std::ops::Range;

use super::head::{ChunkRef, Head};
use super::{Current, Found, Log, MAX_READ_ITEMS};
use crate::error::{Error, Result};
use crate::join::join2;
use crate::layout::{Mode, Snapshot, chunk};
use crate::store::Store;

/// How often a read starts over because the head moved under it.
const READ_RESTARTS: u32 = 5;

/// A chunk as fetched: its stored JSON, as text.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The stored JSON.
    pub text: String,
}

impl Fetched {
    /// The live items of `chunk` (`None` for an entry that is not an item), if this is that
    /// chunk: a JSON array of `chunk.total()` strings. One pass over the bytes.
    pub fn items(&self, chunk: &ChunkRef) -> Option<Vec<Option<String>>> {
        let mut all = chunk::elements(&self.text)?;
        if all.len() as u64 != chunk.total() {
            return None;
        }
        let live = chunk.live_range();
        all.truncate(live.end);
        Some(
            all.drain(live.start.min(all.len())..)
                .map(|t| t.filter(|t| chunk::looks_like_item(t)))
                .collect(),
        )
    }

    /// The byte ranges of the live elements of `chunk`, if this is that chunk and every one
    /// of them is a readable item; for splicing them into another chunk as they are stored. A
    /// write never carries on what it cannot read (nor drops it).
    pub fn live_spans(&self, chunk: &ChunkRef) -> Option<Vec<Range<usize>>> {
        let mut spans = chunk::spans(self.text.as_bytes())?;
        if spans.len() as u64 != chunk.total() {
            return None;
        }
        let live = chunk.live_range();
        spans.truncate(live.end);
        let spans: Vec<Range<usize>> = spans.drain(live.start.min(spans.len())..).collect();
        let readable = spans.iter().all(|s| {
            chunk::decode(&self.text, s.clone()).is_some_and(|t| chunk::looks_like_item(&t))
        });
        readable.then_some(spans)
    }
}

impl<S: Store> Log<S> {
    /// Fetches `chunks` in parallel; `None` for one that is missing or not text.
    pub async fn fetch_chunks(&self, chunks: &[ChunkRef]) -> Result<Vec<Option<Fetched>>> {
        let keys: Vec<String> = chunks.iter().map(|c| self.keys().chunk(c.id())).collect();
        let stored = self.store().get_many(&keys).await?;
        Ok(stored
            .into_iter()
            .map(|s| {
                s.and_then(|s| String::from_utf8(s.data).ok())
                    .map(|text| Fetched { text })
            })
            .collect())
    }

    /// The newest `limit` items (all if `None`), with their position and the version read.
    pub async fn read(&self, limit: Option<u64>, mode: Mode) -> Result<Snapshot> {
        let mut restarts = 0;
        'read: loop {
            // Guess the chunks from the last head seen and fetch them with the head.
            let guess: Vec<ChunkRef> = match (restarts, self.seen()) {
                (0, Some(seen)) => seen
                    .chunks
                    .get(first_needed(&seen, limit)..)
                    .unwrap_or_default()
                    .to_vec(),
                _ => Vec::new(),
            };
            let (found, guessed) = join2(self.read_head(), self.fetch_chunks(&guess)).await;
            let current = match found {
                Ok(Found::Current(c)) => c,
                Ok(Found::Absent) => return Ok(Snapshot::empty("0".into())),
                Ok(Found::Legacy(old)) => return self.read_legacy(&old, limit, mode).await,
                // Reads skip what they cannot decode, as the upstream layout does.
                Err(Error::Corrupt(_)) => return Ok(Snapshot::empty(String::new())),
                Err(e) => return Err(e),
            };
            let mut have: Have = guess
                .iter()
                .zip(guessed.unwrap_or_default())
                .map(|(c, f)| (c.id().to_string(), f))
                .collect();
            let head = &current.head;
            let total = head.len();
            let want = limit.map_or(total, |l| l.min(total));
            if want > MAX_READ_ITEMS {
                return Err(Error::TooManyItems(total));
            }
            let mut from = first_needed(head, limit);
            loop {
                let refs = head.chunks.get(from..).unwrap_or_default();
                let missing: Vec<ChunkRef> = refs
                    .iter()
                    .filter(|c| !matches!(have.get(c.id()), Some(Some(_))))
                    .cloned()
                    .collect();
                for (c, f) in missing.iter().zip(self.fetch_chunks(&missing).await?) {
                    have.insert(c.id().to_string(), f);
                }
                let lost = refs
                    .iter()
                    .any(|c| !matches!(have.get(c.id()), Some(Some(_))));
                if lost && restarts < READ_RESTARTS && self.moved(Some(&current)).await? {
                    restarts += 1;
                    continue 'read;
                }
                let window = Window::assemble(head, from, &mut have);
                match limit {
                    Some(l) if mode == Mode::Skip && window.valid() < l.min(total) && from > 0 => {
                        // Skipped entries: look further back, at least twice as far.
                        let covered = window.len();
                        from = first_covering(head, covered.saturating_mul(2).max(covered + 1));
                    }
                    _ => return Ok(window.snapshot(limit, &current, mode)),
                }
            }
        }
    }
}

/// The chunks a read fetched, by id (`None`: missing). A chunk's contents never change, but
/// which of them are live is the head's to say, so items are taken out only against the head
/// being read. A few entries (a session has a handful of chunks), so a list.
#[derive(Default)]
struct Have(Vec<(String, Option<Fetched>)>);

impl Have {
    fn get(&self, id: &str) -> Option<&Option<Fetched>> {
        self.0.iter().find(|(k, _)| k == id).map(|(_, v)| v)
    }

    fn insert(&mut self, id: String, fetched: Option<Fetched>) {
        self.0.retain(|(k, _)| *k != id);
        self.0.push((id, fetched));
    }

    /// The live items of `chunk`, if it was fetched and is readable; taken out of the list.
    fn take_items(&mut self, chunk: &ChunkRef) -> Option<Vec<Option<String>>> {
        let at = self.0.iter().position(|(k, _)| k == chunk.id())?;
        self.0.swap_remove(at).1?.items(chunk)
    }
}

impl FromIterator<(String, Option<Fetched>)> for Have {
    fn from_iter<I: IntoIterator<Item = (String, Option<Fetched>)>>(iter: I) -> Self {
        Have(iter.into_iter().collect())
    }
}

/// The index of the oldest chunk a read of the newest `limit` items (all if `None`) needs.
fn first_needed(head: &Head, limit: Option<u64>) -> usize {
    match limit {
        None => 0,
        Some(l) => first_covering(head, l),
    }
}

/// The index of the oldest chunk needed for the newest `n` items.
fn first_covering(head: &Head, n: u64) -> usize {
    let mut covered = head.tail.len() as u64;
    let mut from = head.chunks.len();
    while covered < n && from > 0 {
        from -= 1;
        covered = covered.saturating_add(head.chunks.get(from).map_or(0, ChunkRef::live));
    }
    from
}

/// The entries of a window: readable items, entries that are not, and runs of entries in a
/// chunk that could not be read (counted, not listed: a head may claim any number).
enum Slot {
    Entry(Option<String>),
    Gap(u64),
}

/// The entries from chunk `from` to the end of the tail.
struct Window {
    /// Position of the first entry in the session.
    start: u64,
    slots: Vec<Slot>,
}

impl Window {
    fn assemble(head: &Head, from: usize, have: &mut Have) -> Window {
        let start = head
            .chunks
            .iter()
            .take(from)
            .fold(0u64, |n, c| n.saturating_add(c.live()));
        let mut slots = Vec::with_capacity(head.tail.len());
        for c in head.chunks.get(from..).unwrap_or_default() {
            // Moved, not copied: a read that must look further back (unreadable entries)
            // fetches these chunks again, which is rare.
            match have.take_items(c) {
                Some(items) => slots.extend(items.into_iter().map(Slot::Entry)),
                None => slots.push(Slot::Gap(c.live())),
            }
        }
        slots.extend(head.tail.iter().cloned().map(|t| Slot::Entry(Some(t))));
        Window { start, slots }
    }

    /// Readable items in the window.
    fn valid(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Entry(Some(_))))
            .count() as u64
    }

    /// Entries in the window, readable or not.
    fn len(&self) -> u64 {
        self.slots.iter().fold(0u64, |n, s| match s {
            Slot::Entry(_) => n.saturating_add(1),
            Slot::Gap(g) => n.saturating_add(*g),
        })
    }

    /// The newest `limit` readable items (all if `None`), as `mode` says.
    fn snapshot(self, limit: Option<u64>, current: &Current, mode: Mode) -> Snapshot {
        let version = current.head.version_string();
        let end = self.start.saturating_add(self.len());
        if limit.is_none() && mode == Mode::Skip {
            let items = self
                .slots
                .into_iter()
                .filter_map(|s| match s {
                    Slot::Entry(e) => e,
                    Slot::Gap(_) => None,
                })
                .collect();
            return Snapshot {
                items,
                first: 0,
                version,
            };
        }
        let limit = limit.unwrap_or(u64::MAX);
        let mut items = Vec::new();
        let mut position = end;
        let mut first = end;
        for slot in self.slots.into_iter().rev() {
            if items.len() as u64 >= limit {
                break;
            }
            match slot {
                Slot::Entry(Some(item)) => {
                    position -= 1;
                    items.push(item);
                    first = position;
                }
                _ if mode == Mode::Consecutive => break,
                Slot::Entry(None) => position -= 1,
                Slot::Gap(n) => position = position.saturating_sub(n),
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
