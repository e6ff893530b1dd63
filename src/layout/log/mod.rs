//! The log layout (the default): a head key holding the newest items and a few immutable
//! chunks holding the rest, each item stored once.
//!
//! | key              | value                                                              |
//! |------------------|--------------------------------------------------------------------|
//! | `{base}:head`    | the [`Head`]: timestamps, version, chunk list, the newest items (the tail), recent operation ids |
//! | `{base}:c:{id}`  | a chunk: a JSON array of items (JSON strings), written once         |
//!
//! The head is the only key rewritten, always under its etag. Chunks are written once, under
//! fresh random names, in the same transaction as (or before) the head that first lists them,
//! and deleted by the commit after the one that stops listing them, so a reader that fetched
//! a head finds its chunks. Appends go to the tail; a full tail is flushed into chunks by the
//! merge policy in [`tiers`]. So:
//!
//! - an append, a pop or a `get-items(limit)` within the tail touches the head alone (one round
//!   trip, two for an append on stores whose etags cannot be predicted);
//! - a whole read is the head plus every chunk in parallel: one round trip when the instance
//!   has seen the head before (the chunks are fetched with it), two otherwise;
//! - the session occupies its items' bytes once, in `2 + chunks` keys.
//!
//! Modules: [`head`] (the head's format), [`tiers`] (merge policy), [`ttl`] (expiry),
//! [`commit`] (the commit protocol: etags, operation ids, retries), [`read`] (the read
//! path), [`edits`] (what each operation does to the head), [`legacy`] (0.1.0's format, read
//! and migrated).

pub mod commit;
pub mod edits;
pub mod head;
pub mod legacy;
pub mod read;
pub mod tiers;
pub mod ttl;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use self::edits::{Add, AnyEdit, Clear, Pop, Replace, Written};
use self::head::{Head, VERSION};
use self::ttl::Ttl;
use super::keys::Keys;
use super::{Mode, Snapshot, Timestamps};
use crate::error::{Error, Result};
use crate::store::{Features, Store};

/// Largest body sent in one request: daprd's default `--max-body-size` is 4 MiB.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;
/// Largest item (its JSON-string encoding) that fits in one request.
pub const MAX_ITEM_BYTES: usize = MAX_REQUEST_BYTES - 4 * 1024;
/// Most items one read returns: a wasm32 instance cannot hold many more, and a head claiming
/// more must fail typed rather than exhaust memory.
pub const MAX_READ_ITEMS: u64 = 1 << 22;

/// `items` as owned texts, if each fits one request to the sidecar once stored.
fn storable(items: &[&str]) -> Result<Vec<String>> {
    items
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let encoded = super::chunk::encoded_len(text);
            if encoded > MAX_ITEM_BYTES {
                return Err(Error::invalid_item(
                    i,
                    format!(
                        "item is {encoded} bytes stored; one request to the sidecar carries at most {MAX_ITEM_BYTES}"
                    ),
                ));
            }
            Ok(text.to_string())
        })
        .collect()
}

/// A v2 head as read, with its etag.
#[derive(Debug, Clone)]
pub struct Current {
    /// The head.
    pub head: Rc<Head>,
    /// Its etag, when the store gave one (or, after our own commit on Redis, predicted).
    pub etag: Option<String>,
}

/// What the head key holds.
#[derive(Debug)]
pub enum Found {
    /// Nothing: the session was never written (or expired).
    Absent,
    /// A format-2 head.
    Current(Current),
    /// A 0.1.0 head, to read and migrate.
    Legacy(legacy::Legacy),
}

/// The last head this instance saw (read or committed), to predict the next operation.
struct Seen {
    current: Current,
    at_ms: u64,
}

/// The log layout for one session.
pub struct Log<S> {
    store: S,
    keys: Keys,
    ttl: Ttl,
    max_items: Option<u32>,
    features: Cell<Option<Features>>,
    seen: RefCell<Option<Seen>>,
    /// Trash keys this instance deleted after the commit that dropped them: the next commit
    /// need not delete them again.
    gone: RefCell<Vec<String>>,
}

/// How many deleted trash keys an instance remembers.
const GONE_KEPT: usize = 64;

impl<S: Store> Log<S> {
    /// The layout for the session whose keys start with `base`.
    pub fn new(store: S, base: &str, ttl: Ttl, max_items: Option<u32>) -> Self {
        Log {
            store,
            keys: Keys::new(base),
            ttl,
            max_items,
            features: Cell::new(None),
            seen: RefCell::new(None),
            gone: RefCell::new(Vec::new()),
        }
    }

    /// The store this layout writes to.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The session's keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The TTL policy.
    pub fn ttl(&self) -> Ttl {
        self.ttl
    }

    /// The retention bound.
    pub fn max_items(&self) -> Option<u32> {
        self.max_items
    }

    /// A fresh nonce.
    pub fn nonce(&self) -> String {
        crate::nonce::from_random(|b| self.store.random(b))
    }

    /// What the store supports; asks the sidecar once.
    pub async fn features(&self) -> Result<Features> {
        if let Some(f) = self.features.get() {
            return Ok(f);
        }
        let f = self.store.features().await?;
        self.features.set(Some(f));
        Ok(f)
    }

    /// The features, if already known.
    pub fn known_features(&self) -> Option<Features> {
        self.features.get()
    }

    /// Records `current` as the latest head seen.
    pub fn remember(&self, current: Current) {
        *self.seen.borrow_mut() = Some(Seen {
            current,
            at_ms: self.store.now_ms(),
        });
    }

    /// Deletes `keys`, which no head references any more, remembering those that are gone.
    pub async fn delete_unreferenced(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let failed = self.store.delete_many(keys).await;
        let mut gone = self.gone.borrow_mut();
        gone.extend(keys.iter().filter(|k| !failed.contains(k)).cloned());
        let excess = gone.len().saturating_sub(GONE_KEPT);
        gone.drain(..excess);
    }

    /// Whether this instance deleted `key`.
    pub fn is_gone(&self, key: &str) -> bool {
        self.gone.borrow().iter().any(|k| k == key)
    }

    /// Forgets the latest head seen (its etag proved wrong).
    pub fn forget(&self) {
        *self.seen.borrow_mut() = None;
    }

    /// The latest head seen, if any.
    pub fn seen(&self) -> Option<Rc<Head>> {
        self.seen
            .borrow()
            .as_ref()
            .map(|s| Rc::clone(&s.current.head))
    }

    /// The latest head seen with a known etag, if recent enough to bet a write on: a write
    /// under a stale etag just fails and falls back to a read.
    pub fn bet(&self) -> Option<Current> {
        let seen = self.seen.borrow();
        let seen = seen.as_ref()?;
        seen.current.etag.as_ref()?;
        if let Some(window) = self.ttl.bet_window_ms()
            && self.store.now_ms().saturating_sub(seen.at_ms) >= window
        {
            return None;
        }
        Some(seen.current.clone())
    }

    /// Reads and parses the head. A head no writer of this session could have made is
    /// `corrupt`.
    pub async fn read_head(&self) -> Result<Found> {
        let key = self.keys.head();
        let Some(stored) = self.store.get(&key).await? else {
            return Ok(Found::Absent);
        };
        let corrupt = |why: String| {
            Error::Corrupt(format!(
                "{key} is not a session head ({why}); left untouched"
            ))
        };
        let data = std::str::from_utf8(&stored.data).map_err(|_| corrupt("not UTF-8".into()))?;
        let version = head::version_of(data)
            .ok_or_else(|| corrupt("not a JSON object with a format version".into()))?;
        match version {
            v if v == u64::from(legacy::VERSION) => {
                let old = legacy::Legacy::parse(data.as_bytes(), stored.etag, &self.keys)
                    .map_err(corrupt)?;
                Ok(Found::Legacy(old))
            }
            v if v == u64::from(VERSION) => {
                let head = Head::parse(data).map_err(corrupt)?;
                if let Some(why) = head.implausible(&self.keys) {
                    return Err(corrupt(why));
                }
                let current = Current {
                    head: Rc::new(head),
                    etag: stored.etag,
                };
                self.remember(current.clone());
                Ok(Found::Current(current))
            }
            v if v > u64::from(VERSION) => Err(Error::Corrupt(format!(
                "{key} was written by a newer version (format {v}); left untouched"
            ))),
            v => Err(corrupt(format!("unknown format {v}"))),
        }
    }

    /// Whether the head changed since `current` was read.
    pub async fn moved(&self, current: Option<&Current>) -> Result<bool> {
        let now = self.store.get(&self.keys.head()).await?;
        Ok(match (current, now) {
            (None, None) => false,
            (Some(c), Some(n)) => c.etag != n.etag,
            _ => true,
        })
    }

    /// The newest `limit` items (all if `None`), oldest first.
    pub async fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>> {
        Ok(self.snapshot(limit, Mode::Skip).await?.items)
    }

    /// The newest `limit` items with their position and the session's version.
    pub async fn snapshot(&self, limit: Option<u32>, mode: Mode) -> Result<Snapshot> {
        self.read(limit.map(u64::from), mode).await
    }

    /// Appends a batch of checked item texts, atomically.
    pub async fn add_items(&self, items: &[&str]) -> Result<()> {
        self.write(AnyEdit::Add(Add::new(storable(items)?)))
            .await
            .map(drop)
    }

    /// Removes and returns the newest item.
    pub async fn pop_item(&self) -> Result<Option<String>> {
        match self.write(AnyEdit::Pop(Pop)).await? {
            Written::Popped(item) => Ok(item),
            Written::Done => Err(Error::internal("a pop returned no item slot")),
        }
    }

    /// Removes every item and the timestamps.
    pub async fn clear(&self) -> Result<()> {
        self.write(AnyEdit::Clear(Clear)).await.map(drop)
    }

    /// Replaces the items from position `start` (all of them if `None`) with `items`, if
    /// the session is at version `expected` (when given).
    pub async fn replace(
        &self,
        start: Option<u64>,
        items: &[&str],
        expected: Option<&str>,
    ) -> Result<()> {
        let replace = Replace::new(start, storable(items)?, expected.map(str::to_string));
        self.write(AnyEdit::Replace(replace)).await.map(drop)
    }

    /// Runs a write through the commit protocol.
    async fn write(&self, mut edit: AnyEdit) -> Result<Written> {
        self.run(&mut edit).await
    }

    /// The session's timestamps.
    pub async fn timestamps(&self) -> Result<Timestamps> {
        Ok(match self.read_head().await? {
            Found::Absent => Timestamps::default(),
            Found::Current(c) => Timestamps {
                created_at: c.head.created,
                updated_at: c.head.updated,
            },
            Found::Legacy(old) => old.timestamps(),
        })
    }
}
