//! The read path: the head, then the chunks a read needs, all at once.
//!
//! A whole read fetches every chunk in parallel; a limited read only the newest chunks that
//! cover the limit (none, when the tail does). An instance that has seen the head before
//! guesses the chunks from it and fetches them together with the head: chunks are immutable,
//! so a guess is either right or unused. A chunk that cannot be fetched means the head moved
//! under the read (the commit after the one that dropped a chunk deletes it): the read starts
//! over. If the head did not move, the chunk is lost or corrupt, and its items are skipped,
//! as corrupt entries are; a positive limit still counts valid items, looking further back.

use std::collections::HashMap;
use std::ops::Range;

use super::head::{ChunkRef, Head};
use super::{Current, Found, Log, MAX_READ_ITEMS};
use crate::error::{Error, Result};
use crate::join::join2;
use crate::layout::{Mode, Snapshot, chunk};
use crate::store::Store;

/// How often a read starts over because the head moved under it.
const READ_RESTARTS: u32 = 5;

/// A chunk as fetched: its bytes and the byte ranges of its elements, if it is one.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The stored JSON.
    pub raw: Vec<u8>,
    /// Each element's byte range (quotes included).
    pub spans: Vec<Range<usize>>,
}

impl Fetched {
    /// `raw` if it is the chunk `chunk` names: a JSON array of `chunk.total()` strings.
    pub fn check(raw: Vec<u8>, chunk: &ChunkRef) -> Option<Fetched> {
        let spans = chunk::spans(&raw)?;
        (spans.len() as u64 == chunk.total()).then_some(Fetched { raw, spans })
    }

    /// The items at `range` of the chunk (`None` for an entry that is not an item).
    pub fn items(&self, range: Range<usize>) -> Vec<Option<String>> {
        self.spans
            .get(range)
            .unwrap_or_default()
            .iter()
            .map(|s| chunk::decode(&self.raw, s.clone()).filter(|t| chunk::looks_like_item(t)))
            .collect()
    }

    /// The element spans at `range`.
    pub fn spans_of(&self, range: Range<usize>) -> &[Range<usize>] {
        self.spans.get(range).unwrap_or_default()
    }
}

impl<S: Store> Log<S> {
    /// Fetches `chunks` in parallel; `None` for one that is missing or not a chunk of that
    /// shape.
    pub async fn fetch_chunks(&self, chunks: &[ChunkRef]) -> Result<Vec<Option<Fetched>>> {
        let keys: Vec<String> = chunks.iter().map(|c| self.keys().chunk(c.id())).collect();
        let stored = self.store().get_many(&keys).await?;
        Ok(stored
            .into_iter()
            .zip(chunks)
            .map(|(s, c)| s.and_then(|s| Fetched::check(s.data, c)))
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
            let mut have: HashMap<String, Option<Fetched>> = guess
                .iter()
                .map(|c| c.id().to_string())
                .zip(guessed.unwrap_or_default())
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
                let window = Window::assemble(head, from, &have);
                match limit {
                    Some(l) if mode == Mode::Skip && window.valid() < l.min(total) && from > 0 => {
                        // Skipped entries: look further back, at least twice as far.
                        let covered = window.entries.len() as u64;
                        from = first_covering(head, covered.saturating_mul(2).max(covered + 1));
                    }
                    _ => return Ok(window.snapshot(limit, &current, mode)),
                }
            }
        }
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

/// The entries from chunk `from` to the end of the tail, `None` where an entry is not a
/// readable item.
struct Window {
    /// Position of the first entry in the session.
    start: u64,
    entries: Vec<Option<String>>,
}

impl Window {
    fn assemble(head: &Head, from: usize, have: &HashMap<String, Option<Fetched>>) -> Window {
        let start: u64 = head.chunks.iter().take(from).map(ChunkRef::live).sum();
        let mut entries = Vec::new();
        for c in head.chunks.get(from..).unwrap_or_default() {
            match have.get(c.id()) {
                Some(Some(f)) => entries.extend(f.items(c.live_range())),
                _ => entries.extend((0..c.live()).map(|_| None)),
            }
        }
        entries.extend(head.tail.iter().cloned().map(Some));
        Window { start, entries }
    }

    fn valid(&self) -> u64 {
        self.entries.iter().filter(|e| e.is_some()).count() as u64
    }

    fn snapshot(self, limit: Option<u64>, current: &Current, mode: Mode) -> Snapshot {
        Snapshot::of(
            self.start,
            self.entries,
            limit,
            current.head.version_string(),
            mode,
        )
    }
}
