//! The upstream layout, shared with the Python `DaprSession`.
//!
//! | key                | value                                                           |
//! |--------------------|-----------------------------------------------------------------|
//! | `{base}:messages`  | JSON array; each entry a JSON string holding one item's JSON    |
//! | `{base}:metadata`  | `{"session_id", "created_at", "updated_at"}`, epoch seconds as strings |
//!
//! Every change rewrites the whole array under an etag (first-write concurrency), so cost
//! grows with the history; the point of this layout is interoperability. The version of a
//! session is the etag of its array with a hash of its bytes: stores count etags from 1
//! again when a key is created anew (Redis), so an etag alone could name two histories.

use super::keys::Keys;
use super::{Mode, Snapshot, Timestamps, chunk};
use crate::dapr::{DaprError, Stored, TxOp, Write};
use crate::error::{Error, Result};
use crate::item;
use crate::json::{Reader, write};
use crate::retry::Backoff;
use crate::store::Store;

/// The version of a session with no array.
const NO_VERSION: &str = "0";

/// The upstream layout for one session.
pub struct Compat<S> {
    store: S,
    session_id: String,
    keys: Keys,
    ttl: Option<u32>,
    max_items: Option<u32>,
}

/// The timestamps a stored metadata object holds (strings or numbers of epoch seconds).
struct MetadataIn<'a> {
    created_at: Option<&'a str>,
    updated_at: Option<&'a str>,
}

/// What a write does to the stored entries.
enum Change<'a> {
    /// Append these encoded entries.
    Append(&'a [String]),
    /// Keep the first `keep` entries, then these encoded ones.
    Splice { keep: u64, encoded: &'a [String] },
    /// Remove the newest readable item (and unreadable entries after it).
    Pop,
}

impl<S: Store> Compat<S> {
    /// The layout for `session_id`, whose keys start with `base`.
    pub fn new(
        store: S,
        session_id: &str,
        base: &str,
        ttl: Option<u32>,
        max_items: Option<u32>,
    ) -> Self {
        Compat {
            store,
            session_id: session_id.to_string(),
            keys: Keys::new(base),
            ttl,
            max_items,
        }
    }

    /// The newest `limit` readable items (all if `None`). A stored value that is not a JSON
    /// array reads as empty.
    pub async fn snapshot(&self, limit: Option<u32>, mode: Mode) -> Result<Snapshot> {
        let Some(stored) = self.store.get(&self.keys.messages()).await? else {
            return Ok(Snapshot::empty(NO_VERSION.into()));
        };
        let version = version_of(&stored);
        let Some(entries) = entries(&stored.data) else {
            return Ok(Snapshot::empty(version));
        };
        Ok(Snapshot::of(
            0,
            entries,
            limit.map(u64::from),
            version,
            mode,
        ))
    }

    /// Appends encoded items; fails with `corrupt` if the stored value is not a JSON array,
    /// leaving it untouched.
    pub async fn add_items(&self, items: &[&str]) -> Result<()> {
        let encoded: Vec<String> = items.iter().map(|i| item::encode_string(i)).collect();
        self.change(Change::Append(&encoded), None).await?;
        Ok(())
    }

    /// Removes and returns the newest readable item; unreadable entries after it go with it.
    pub async fn pop_item(&self) -> Result<Option<String>> {
        self.change(Change::Pop, None).await
    }

    /// Replaces the entries from `start` (all if `None`) with `items`, if the array is at
    /// version (etag) `expected` when given.
    pub async fn replace(
        &self,
        start: Option<u64>,
        items: &[&str],
        expected: Option<&str>,
    ) -> Result<()> {
        let encoded: Vec<String> = items.iter().map(|i| item::encode_string(i)).collect();
        let change = Change::Splice {
            keep: start.unwrap_or(0),
            encoded: &encoded,
        };
        self.change(change, expected).await?;
        Ok(())
    }

    /// Reads the array, applies `change` and writes it back under the etag read, retrying lost
    /// races; then updates the metadata. Returns the popped item, for a pop.
    async fn change(&self, change: Change<'_>, expected: Option<&str>) -> Result<Option<String>> {
        let key = self.keys.messages();
        let mut backoff = Backoff::new();
        let popped = loop {
            if !backoff.start_attempt() {
                return Err(Error::Conflict(backoff.attempts()));
            }
            let current = self.store.get(&key).await?;
            let version = current
                .as_ref()
                .map_or_else(|| NO_VERSION.to_string(), version_of);
            if expected.is_some_and(|e| e != version) {
                return Err(Error::Changed);
            }
            let Some((value, popped)) = self.changed(current.as_ref(), &change)? else {
                return Ok(None);
            };
            let etag = current.as_ref().and_then(|s| s.etag.as_deref());
            match self
                .store
                .save(&[Write::guarded(&key, &value, etag, self.ttl)])
                .await
            {
                Ok(()) => break popped,
                Err(e) => {
                    let conflict = e.is_conflict();
                    lost_race(&self.store, &key, etag.is_some(), e).await?;
                    if conflict && expected.is_none() && self.landed(&change, &value).await? {
                        break popped;
                    }
                    backoff.pause(&self.store).await;
                }
            }
        };
        self.touch_metadata().await;
        Ok(popped)
    }

    /// Whether a write refused as a conflict is in the store after all. daprd's Redis client
    /// runs a script again on a new connection when the first run's answer is lost (a Redis
    /// restart, a dropped connection), and the second run then fails on the etag the first
    /// one moved: the sidecar reports a conflict for a write that landed. The upstream format
    /// has no operation ids, so the stored array tells: an append landed if the array starts
    /// with everything it wrote (another writer may have appended since), a replace if the
    /// array is what it wrote (writing it again would change nothing). A pop cannot tell its
    /// own landed write from another pop of the same item, so it is retried as a lost race;
    /// so is a write at an expected version, whose caller must learn of any other write (two
    /// callers removing the same newest item by `replace-suffix` write the same array).
    ///
    /// An append whose exact items another writer appended at the same position, racing it,
    /// counts as landed: the session holds those items once, not twice.
    async fn landed(&self, change: &Change<'_>, written: &str) -> Result<bool> {
        if matches!(change, Change::Pop) {
            return Ok(false);
        }
        let Some(now) = self.store.get(&self.keys.messages()).await? else {
            return Ok(false);
        };
        let now = std::str::from_utf8(&now.data).ok().and_then(elements);
        let (Some(now), Some(ours)) = (now, elements(written)) else {
            return Ok(false);
        };
        Ok(match change {
            Change::Append(_) => now.get(..ours.len()) == Some(&ours[..]),
            _ => now == ours,
        })
    }

    /// The new array text for `change` on `current`, and the popped item; `None` when there
    /// is nothing to write.
    fn changed(
        &self,
        current: Option<&Stored>,
        change: &Change<'_>,
    ) -> Result<Option<(String, Option<String>)>> {
        let data = current.map_or(&b"[]"[..], |s| &s.data);
        let entries = std::str::from_utf8(data)
            .ok()
            .and_then(elements)
            .ok_or_else(|| {
                Error::Corrupt("the stored messages are not a JSON array; left untouched".into())
            })?;
        let mut raw: Vec<&str> = entries.clone();
        let mut popped = None;
        match change {
            Change::Append(encoded) => raw.extend(encoded.iter().map(String::as_str)),
            Change::Splice { keep, encoded } => {
                let len = raw.len() as u64;
                if *keep > len {
                    return Err(Error::invalid(format!(
                        "start {keep} is past the end of the session ({len} items)"
                    )));
                }
                raw.truncate(usize::try_from(*keep).unwrap_or(usize::MAX));
                raw.extend(encoded.iter().map(String::as_str));
            }
            Change::Pop => {
                if raw.is_empty() {
                    return Ok(None);
                }
                while let Some(last) = entries.get(raw.len().saturating_sub(1)) {
                    raw.pop();
                    if let Some(item) = item::decode_entry(last) {
                        popped = Some(item);
                        break;
                    }
                    if raw.is_empty() {
                        break;
                    }
                }
            }
        }
        if let Some(max) = self.max_items {
            let excess = raw
                .len()
                .saturating_sub(usize::try_from(max).unwrap_or(usize::MAX));
            raw.drain(..excess);
        }
        Ok(Some((format!("[{}]", raw.join(",")), popped)))
    }

    /// Deletes both keys: in one transaction where the store has them, else one after the
    /// other (as upstream).
    pub async fn clear(&self) -> Result<()> {
        let (messages, metadata) = (self.keys.messages(), self.keys.metadata());
        if self.store.features().await?.transactional {
            let ops = [
                TxOp::Delete {
                    key: &messages,
                    etag: None,
                },
                TxOp::Delete {
                    key: &metadata,
                    etag: None,
                },
            ];
            self.store.transact(&ops).await?;
        } else {
            self.store.delete(&messages, None).await?;
            self.store.delete(&metadata, None).await?;
        }
        Ok(())
    }

    /// The session's timestamps.
    pub async fn timestamps(&self) -> Result<Timestamps> {
        let key = self.keys.metadata();
        let Some(stored) = self.store.get(&key).await? else {
            return Ok(Timestamps::default());
        };
        let meta = parse_metadata(&stored.data)
            .ok_or_else(|| Error::Corrupt(format!("{key} is not a JSON object")))?;
        Ok(Timestamps {
            created_at: meta.created_at.as_ref().and_then(seconds_to_ms),
            updated_at: meta.updated_at.as_ref().and_then(seconds_to_ms),
        })
    }

    /// Keeps `created_at`, sets `updated_at` to now. Like upstream, a failure here does not fail
    /// the write that preceded it: the items are stored, and reporting an error would invite
    /// the caller to add them twice.
    async fn touch_metadata(&self) {
        let key = self.keys.metadata();
        let mut backoff = Backoff::new();
        while backoff.start_attempt() {
            let now = self.store.now_ms() / 1000;
            let Ok(current) = self.store.get(&key).await else {
                return;
            };
            let (created, updated, etag) = match &current {
                None => (now, now, None),
                Some(stored) => {
                    // Never overwrite metadata we cannot read.
                    let Some(meta) = parse_metadata(&stored.data) else {
                        return;
                    };
                    let created = meta.created_at.as_ref().and_then(seconds).unwrap_or(now);
                    let updated = meta
                        .updated_at
                        .as_ref()
                        .and_then(seconds)
                        .unwrap_or(0)
                        .max(now);
                    (created, updated, stored.etag.as_deref())
                }
            };
            let mut value = String::with_capacity(96 + self.session_id.len());
            let mut o = write::Object::new(&mut value);
            o.str("session_id", &self.session_id);
            o.str("created_at", &created.to_string());
            o.str("updated_at", &updated.to_string());
            o.end();
            // With an etag, first-write guards against a concurrent update; without one (a new
            // key), upstream writes last-write so a Redis key created by Python stays writable.
            let write = match etag {
                Some(_) => Write::guarded(&key, &value, etag, self.ttl),
                None => Write::put(&key, &value, self.ttl),
            };
            match self.store.save(&[write]).await {
                Ok(()) => return,
                Err(e) if e.is_conflict() => backoff.pause(&self.store).await,
                Err(_) => return,
            }
        }
    }
}

/// The entries of a stored array (`None` where an entry is not a readable item); `None` if
/// the value is not a JSON array. Arrays of strings (what every writer stores) take a fast
/// path; entries that are objects are read too, as upstream does.
fn entries(data: &[u8]) -> Option<Vec<Option<String>>> {
    if let (Some(spans), Ok(text)) = (chunk::spans(data), std::str::from_utf8(data)) {
        return Some(
            spans
                .into_iter()
                .map(|s| chunk::decode(text, s).filter(|t| item::validate(t).is_ok()))
                .collect(),
        );
    }
    let entries = elements(std::str::from_utf8(data).ok()?)?;
    Some(entries.into_iter().map(item::decode_entry).collect())
}

/// The raw text of every element of a JSON array, or `None` if `text` is not one.
fn elements(text: &str) -> Option<Vec<&str>> {
    let mut r = Reader::new(text);
    let mut out = Vec::new();
    r.array(|r| {
        out.push(r.value()?);
        Some(())
    })?;
    r.end()?;
    Some(out)
}

/// The version of a stored array: its etag and an FNV-1a hash of its bytes.
fn version_of(stored: &Stored) -> String {
    let hash = stored.data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{hash:016x}", stored.etag.as_deref().unwrap_or_default())
}

/// Decides what a failed etag-guarded write means: `Ok(())` if it lost a race (retry), the
/// error otherwise.
///
/// A 409 is a lost race. A create (no etag) that failed another way is one only if the key
/// exists now: stores report a lost create as 409 (in-memory, SQLite) or as a 500 (Redis,
/// PostgreSQL). Timeouts and broken connections are never treated as lost races: the write
/// may have been applied, and retrying it could apply it twice.
async fn lost_race<S: Store>(store: &S, key: &str, had_etag: bool, err: DaprError) -> Result<()> {
    if err.is_conflict() {
        return Ok(());
    }
    if !had_etag && matches!(err, DaprError::Status { .. }) && store.get(key).await?.is_some() {
        return Ok(());
    }
    Err(err.into())
}

/// Parses the stored metadata: a JSON object, whose `created_at` and `updated_at` are kept
/// as raw JSON.
fn parse_metadata(data: &[u8]) -> Option<MetadataIn<'_>> {
    let mut r = Reader::new(std::str::from_utf8(data).ok()?);
    let mut meta = MetadataIn {
        created_at: None,
        updated_at: None,
    };
    r.object(|r, name| {
        let value = r.value()?;
        match name {
            "created_at" => meta.created_at = Some(value),
            "updated_at" => meta.updated_at = Some(value),
            _ => {}
        }
        Some(())
    })?;
    r.end()?;
    Some(meta)
}

/// Epoch seconds from a JSON string or number (`"1700000000"`, `1700000000`, `1700000000.5`).
fn seconds(v: &&str) -> Option<u64> {
    let text = v.trim_matches('"').trim();
    let whole = text.split('.').next().unwrap_or_default();
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole.parse().ok()
}

fn seconds_to_ms(v: &&str) -> Option<u64> {
    seconds(v).map(|s| s.saturating_mul(1000))
}

#[cfg(test)]
#[path = "compat_tests.rs"]
mod tests;
