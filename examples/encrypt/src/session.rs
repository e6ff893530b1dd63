//! The encrypted session: every call of the session interface, translated onto the session it
//! wraps.
//!
//! - `add-items` seals each item into an envelope (one atomic batch, as given).
//! - `get-items` and `get-snapshot` return the newest live items (see [`crate::scan`]);
//!   the configured `default-limit` counts live items.
//! - `pop-item` reads the newest items, then removes exactly the newest live one with a
//!   conditional `replace-suffix` that writes back, byte for byte, every unreadable item stored
//!   after it and drops only the authenticated-but-expired ones; it never removes an item this
//!   key cannot authenticate (unlike Python's `EncryptedSession` on non-SQLite stores).
//! - `replace` and `replace-suffix` likewise keep every unreadable item in the replaced range
//!   and write the new items sealed after them.
//! - `clear`, `ping` and `metadata` pass through.
//!
//! Positions: a snapshot's `first` is the history's stored length minus the live items
//! returned, so `replace-suffix(first + i, ...)` replaces the snapshot's items from its `i`-th
//! on. Position `p` names the `(end - p)`-th newest live item; positions below the oldest
//! live item name it too (`replace-suffix(0, ...)` replaces every live item). Positions are
//! counted from the end because a limited read cannot know how many live items lie before
//! its window; they hold while the version does, so callers pass the snapshot's version as
//! `expected`. Without it, `start` is read against the session as the call finds it.
//!
//! Every write is conditional on the version just read; when another writer got in between,
//! the read and write are retried after a growing, jittered pause ([`MAX_ATTEMPTS`] in all, then
//! `conflict`), unless the caller passed its own `expected` version: then the answer is
//! `changed`.

use crate::codec::{self, Opened};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::fernet::Ttl;
use crate::inner::{Inner, Metadata, Snapshot};
use crate::item;
use crate::key::SessionKey;
use crate::platform::Platform;
use crate::scan::{self, Window};

pub use crate::backoff::MAX_ATTEMPTS;

/// One session whose items are stored encrypted in the session it wraps.
pub struct EncryptedSession<I, P> {
    id: String,
    inner: I,
    platform: P,
    key: SessionKey,
    ttl_seconds: Option<u32>,
    max_scan_items: u32,
    default_limit: Option<u32>,
}

impl<I: Inner, P: Platform> EncryptedSession<I, P> {
    /// Wraps `inner`, the session `id` opened without a `default-limit` (this session applies
    /// `default_limit` itself, counting live items).
    pub fn new(
        id: String,
        inner: I,
        platform: P,
        settings: &Settings,
        default_limit: Option<u32>,
    ) -> Self {
        let key = settings.key.derive(&id);
        Self {
            id,
            inner,
            platform,
            key,
            ttl_seconds: settings.ttl_seconds,
            max_scan_items: settings.max_scan_items,
            default_limit,
        }
    }

    /// The session id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The wrapped session.
    pub fn inner(&self) -> &I {
        &self.inner
    }

    /// The newest `limit` live items, oldest first (`none`: the default limit, else all).
    pub fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>> {
        match limit.or(self.default_limit) {
            Some(0) => Ok(Vec::new()),
            limit => Ok(self.read(limit)?.live()),
        }
    }

    /// As [`Self::get_items`], with the position of the first item and the version.
    pub fn get_snapshot(&self, limit: Option<u32>) -> Result<Snapshot> {
        let window = match limit.or(self.default_limit) {
            Some(0) => {
                let head = self.inner.get_snapshot(Some(1))?;
                Window {
                    version: head.version.clone(),
                    start: head.end(),
                    end: head.end(),
                    items: Vec::new(),
                    complete: false,
                }
            }
            limit => self.read(limit)?,
        };
        let items = window.live();
        Ok(Snapshot {
            first: window.end.saturating_sub(items.len() as u64),
            items,
            version: window.version,
        })
    }

    /// Before attempt `attempt` (0 for the first): nothing, or a pause that grows with the
    /// attempts already lost, jittered with fresh random bytes so racing writers spread out.
    fn pause(&self, attempt: u32) {
        if attempt == 0 {
            return;
        }
        let [a, b, c, d, ..] = self.platform.iv();
        self.platform.sleep(crate::backoff::delay(
            attempt,
            u32::from_le_bytes([a, b, c, d]),
        ));
    }

    /// Seals every item and appends them as one batch.
    pub fn add_items(&self, items: &[String]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let sealed = self.seal_all(items)?;
        self.inner.add_items(&sealed)
    }

    /// Removes and returns the newest live item; `None` when there is none (nothing written).
    pub fn pop_item(&self) -> Result<Option<String>> {
        for attempt in 0..MAX_ATTEMPTS {
            self.pause(attempt);
            let window = scan::newest(
                &self.inner,
                &self.key,
                self.ttl(),
                1,
                1,
                self.max_scan_items,
            )?;
            let Some(index) = window.oldest_live() else {
                return Ok(None);
            };
            let Some((_, Opened::Live(item))) = window.items.get(index) else {
                return Err(Error::Internal("pop lost its item".into()));
            };
            let kept = window.unreadable_from(index + 1);
            let at = window.start + index as u64;
            match self.inner.replace_suffix(at, &kept, Some(&window.version)) {
                Ok(()) => return Ok(Some(item.clone())),
                Err(Error::Changed) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(MAX_ATTEMPTS))
    }

    /// Replaces every live and expired item with `items`, keeping the unreadable ones.
    pub fn replace(&self, items: &[String], expected: Option<&str>) -> Result<()> {
        let sealed = self.seal_all(items)?;
        for attempt in 0..MAX_ATTEMPTS {
            self.pause(attempt);
            let window = Window::whole(self.inner.get_snapshot(None)?, &self.key, self.ttl());
            check_expected(expected, &window.version)?;
            let mut written = window.unreadable_from(0);
            written.extend(sealed.iter().cloned());
            match self.inner.replace(&written, Some(&window.version)) {
                Err(Error::Changed) if expected.is_none() => continue,
                result => return result,
            }
        }
        Err(Error::Conflict(MAX_ATTEMPTS))
    }

    /// Replaces the live items from position `start` on (see the module docs) with `items`,
    /// keeping the unreadable items among them.
    pub fn replace_suffix(
        &self,
        start: u64,
        items: &[String],
        expected: Option<&str>,
    ) -> Result<()> {
        let sealed = self.seal_all(items)?;
        for attempt in 0..MAX_ATTEMPTS {
            self.pause(attempt);
            let head = self.inner.get_snapshot(Some(1))?;
            check_expected(expected, &head.version)?;
            let end = head.end();
            let Some(count) = end.checked_sub(start) else {
                return Err(Error::invalid(format!(
                    "start {start} is past the end of the session ({end})"
                )));
            };
            let (at, mut written, version) = if count == 0 {
                (end, Vec::new(), head.version)
            } else {
                let want = u32::try_from(count).unwrap_or(u32::MAX);
                let window = scan::newest(
                    &self.inner,
                    &self.key,
                    self.ttl(),
                    want,
                    want,
                    self.max_scan_items,
                )?;
                if window.version != head.version {
                    check_expected(expected, &window.version)?;
                    continue;
                }
                let from = if window.complete {
                    window.oldest_live().unwrap_or(window.items.len())
                } else {
                    0
                };
                let at = window.start + from as u64;
                (at, window.unreadable_from(from), window.version)
            };
            written.extend(sealed.iter().cloned());
            match self.inner.replace_suffix(at, &written, Some(&version)) {
                Err(Error::Changed) if expected.is_none() => continue,
                result => return result,
            }
        }
        Err(Error::Conflict(MAX_ATTEMPTS))
    }

    /// Deletes every item, readable or not, and the metadata.
    pub fn clear(&self) -> Result<()> {
        self.inner.clear()
    }

    /// Checks the wrapped session's sidecar and store.
    pub fn ping(&self) -> Result<()> {
        self.inner.ping()
    }

    /// The wrapped session's timestamps.
    pub fn metadata(&self) -> Result<Metadata> {
        self.inner.metadata()
    }

    /// The read behind `get-items` and `get-snapshot`: the newest `limit` live items, or all.
    fn read(&self, limit: Option<u32>) -> Result<Window> {
        let ttl = self.ttl();
        match limit {
            Some(n) => scan::newest(&self.inner, &self.key, ttl, n, n, self.max_scan_items),
            None => Ok(Window::whole(
                self.inner.get_snapshot(None)?,
                &self.key,
                ttl,
            )),
        }
    }

    /// Checks every item and seals it, stamped now with a fresh IV each.
    fn seal_all(&self, items: &[String]) -> Result<Vec<String>> {
        let now = self.platform.now();
        items
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let text = item::validate(text).map_err(|why| Error::invalid_item(index, why))?;
                Ok(codec::seal(&self.key, text, now, &self.platform.iv()))
            })
            .collect()
    }

    /// The TTL check for this moment, when items expire.
    fn ttl(&self) -> Option<Ttl> {
        self.ttl_seconds.map(|seconds| Ttl {
            seconds: u64::from(seconds),
            now: self.platform.now(),
        })
    }
}

/// `changed` unless the session is still at the version the caller expects.
fn check_expected(expected: Option<&str>, version: &str) -> Result<()> {
    match expected {
        Some(expected) if expected != version => Err(Error::Changed),
        _ => Ok(()),
    }
}
