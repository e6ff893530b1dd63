//! Sessions written by 0.1.0 (head format 1): read as they are, and moved to format 2 by the
//! first write.
//!
//! Format 1 kept one key per item (`{base}:i:{batch}:{n}`), the head's newest batch entries
//! `[nonce, live items]` (level 0), and older entries in immutable pages (`{base}:p:{nonce}`,
//! `{"e": entries, "t": item copies}` for pages of batches, a bare entry list above), plus
//! a recent-items cache (`{base}:r`). Item keys are authoritative; the copies are ignored.
//!
//! Migration commits a format-2 head holding every readable item (in chunks and the tail)
//! over the format-1 head's etag, keeping the old head inside it (`x`) until the old keys are
//! deleted: items first, then pages from the lowest level up, so that a deletion cut short
//! leaves every remaining key findable by whoever finishes it.

use super::head::Head;
use super::{Current, Log, MAX_READ_ITEMS};
use crate::error::{Error, Result};
use crate::item;
use crate::json::Reader;
use crate::layout::keys::Keys;
use crate::layout::{Mode, Snapshot, Timestamps};
use crate::nonce;
use crate::store::Store;

/// The head format of 0.1.0.
pub const VERSION: u32 = 1;

/// An entry of a format-1 level: a batch (level 0) or a page (above), and its live items.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry(String, u64);

/// Reads entries `[[nonce, items], ...]`.
fn entries(r: &mut Reader<'_>) -> Option<Vec<Entry>> {
    let mut out = Vec::new();
    r.array(|r| {
        let mut id = None;
        let mut n = None;
        let mut at = 0;
        r.array(|r| {
            match at {
                0 => id = Some(r.string()?),
                1 => n = Some(r.u64()?),
                _ => return None,
            }
            at += 1;
            Some(())
        })?;
        out.push(Entry(id?, n?));
        Some(())
    })?;
    Some(out)
}

/// What 0.1.0 kept in its head (its caches, `n`, `k`, `r`, are not needed).
#[derive(Debug, Clone, Default)]
struct V1Head {
    created: Option<u64>,
    updated: Option<u64>,
    levels: Vec<Vec<Entry>>,
    ops: Vec<String>,
    trash: Vec<String>,
}

impl V1Head {
    fn parse(text: &str) -> Option<V1Head> {
        let mut head = V1Head::default();
        let mut r = Reader::new(text);
        let strings = |r: &mut Reader<'_>, out: &mut Vec<String>| {
            r.array(|r| {
                out.push(r.string()?);
                Some(())
            })
        };
        r.object(|r, name| {
            match name {
                "c" if !r.null() => head.created = Some(r.u64()?),
                "u" if !r.null() => head.updated = Some(r.u64()?),
                "l" => {
                    r.array(|r| {
                        head.levels.push(entries(r)?);
                        Some(())
                    })?;
                }
                "o" => strings(r, &mut head.ops)?,
                "t" => strings(r, &mut head.trash)?,
                "c" | "u" => {}
                _ => {
                    r.value()?;
                }
            }
            Some(())
        })?;
        r.end()?;
        Some(head)
    }
}

/// The entries a format-1 page lists: `{"e": entries, ...}` (a page of batches) or a bare list.
fn page_entries(text: &str) -> Option<Vec<Entry>> {
    let mut r = Reader::new(text);
    let found = if r.peek() == Some(b'{') {
        let mut found = None;
        r.object(|r, name| {
            if name == "e" {
                found = Some(entries(r)?);
            } else {
                r.value()?;
            }
            Some(())
        })?;
        found?
    } else {
        entries(&mut r)?
    };
    r.end()?;
    Some(found)
}

/// A format-1 head as read.
#[derive(Debug, Clone)]
pub struct Legacy {
    head: V1Head,
    raw: String,
    etag: Option<String>,
}

impl Legacy {
    /// Parses a format-1 head; why not, if it is not one a 0.1.0 writer of this session made.
    pub fn parse(
        data: &[u8],
        etag: Option<String>,
        keys: &Keys,
    ) -> std::result::Result<Self, String> {
        let text = std::str::from_utf8(data).map_err(|_| "not UTF-8".to_string())?;
        Self::from_raw(text.to_string(), etag, keys)
    }

    fn from_raw(
        raw: String,
        etag: Option<String>,
        keys: &Keys,
    ) -> std::result::Result<Self, String> {
        let head = V1Head::parse(&raw).ok_or("not a format-1 head")?;
        if let Some(e) = head.levels.iter().flatten().find(|e| !plausible(e)) {
            return Err(format!("entry {e:?} is not a nonce with items"));
        }
        if let Some(k) = head.trash.iter().find(|k| !keys.is_v1_key(k)) {
            return Err(format!(
                "its trash names a key that is not the session's: '{k}'"
            ));
        }
        Ok(Legacy { head, raw, etag })
    }

    /// Its timestamps.
    pub fn timestamps(&self) -> Timestamps {
        Timestamps {
            created_at: self.head.created,
            updated_at: self.head.updated,
        }
    }

    /// The version a read of it reports.
    pub fn version_string(&self) -> String {
        format!("v1.{}", self.etag.as_deref().unwrap_or_default())
    }

    /// Items it claims, from its counts.
    fn claimed(&self) -> u64 {
        self.head
            .levels
            .iter()
            .flatten()
            .fold(0u64, |n, e| n.saturating_add(e.1))
    }

    /// Its batches oldest first, and its page keys by level (lowest first), as far as the
    /// pages can be read.
    async fn walk<S: Store>(&self, log: &Log<S>) -> Result<(Vec<Entry>, Vec<Vec<String>>)> {
        let keys = log.keys();
        let levels = &self.head.levels;
        let top = levels.len().saturating_sub(1);
        let mut page_keys: Vec<Vec<String>> = vec![Vec::new(); top];
        // Entries still to expand, oldest first, each with its level.
        let mut pending: Vec<(usize, Entry)> = Vec::new();
        for k in (0..levels.len()).rev() {
            for e in levels.get(k).into_iter().flatten() {
                pending.push((k, e.clone()));
            }
        }
        // Expand pages level by level, from the top, keeping order.
        for level in (1..=top).rev() {
            let pages: Vec<&Entry> = pending
                .iter()
                .filter(|(k, _)| *k == level)
                .map(|(_, e)| e)
                .collect();
            let names: Vec<String> = pages.iter().map(|e| keys.v1_page(&e.0)).collect();
            let stored = log.store().get_many(&names).await?;
            let mut expanded: Vec<Vec<Entry>> = Vec::with_capacity(pages.len());
            for s in stored {
                let entries = s
                    .and_then(|s| String::from_utf8(s.data).ok())
                    .and_then(|text| page_entries(&text))
                    .unwrap_or_default();
                expanded.push(entries.into_iter().filter(plausible).collect());
            }
            if let Some(slot) = page_keys.get_mut(level - 1) {
                *slot = names;
            }
            let mut next = Vec::with_capacity(pending.len());
            let mut expanded = expanded.into_iter();
            for (k, e) in pending {
                if k == level {
                    next.extend(
                        expanded
                            .next()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|c| (level - 1, c)),
                    );
                } else {
                    next.push((k, e));
                }
            }
            pending = next;
        }
        Ok((pending.into_iter().map(|(_, e)| e).collect(), page_keys))
    }

    /// The item keys of `batches`, oldest first (at most [`MAX_READ_ITEMS`]).
    fn item_keys(keys: &Keys, batches: &[Entry]) -> Vec<String> {
        let mut room = MAX_READ_ITEMS;
        let mut out = Vec::new();
        for b in batches {
            let n = b.1.min(room);
            room -= n;
            out.extend((0..n).map(|i| keys.v1_item(&b.0, i)));
        }
        out
    }

    /// Every entry, oldest first (`None` where an item is missing or unreadable).
    async fn entries<S: Store>(&self, log: &Log<S>) -> Result<Vec<Option<String>>> {
        let claimed = self.claimed();
        if claimed > MAX_READ_ITEMS {
            return Err(Error::TooManyItems(claimed));
        }
        let (batches, _) = self.walk(log).await?;
        let keys = Self::item_keys(log.keys(), &batches);
        let stored = log.store().get_many(&keys).await?;
        Ok(stored
            .into_iter()
            .map(|s| {
                s.and_then(|s| String::from_utf8(s.data).ok())
                    .and_then(|text| item::decode_stored(&text))
            })
            .collect())
    }
}

fn plausible(e: &Entry) -> bool {
    e.1 > 0 && nonce::is_nonce(&e.0)
}

impl<S: Store> Log<S> {
    /// Reads a format-1 session.
    pub async fn read_legacy(
        &self,
        old: &Legacy,
        limit: Option<u64>,
        mode: Mode,
    ) -> Result<Snapshot> {
        let entries = old.entries(self).await?;
        Ok(Snapshot::of(0, entries, limit, old.version_string(), mode))
    }

    /// Commits a format-2 head holding the format-1 session's items over its head. Losing a
    /// race is not an error: the caller reads the head again.
    pub async fn migrate(&self, old: Legacy) -> Result<()> {
        let items: Vec<String> = old.entries(self).await?.into_iter().flatten().collect();
        let (head, writes) = super::edits::migrated(
            self,
            items,
            Head {
                created: old.head.created,
                updated: old.head.updated,
                ops: old.head.ops.clone(),
                legacy: Some(old.raw.clone()),
                migrated_from: Some(old.version_string()),
                ..Head::new(self.nonce())
            },
        )
        .await?;
        let over = Current {
            head: std::rc::Rc::new(Head::default()),
            etag: old.etag.clone(),
        };
        match self.commit(head, Some(&over), &writes, &[]).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if !e.is_ambiguous() {
                    let fresh: Vec<String> = writes.iter().map(|w| w.key.clone()).collect();
                    self.store().delete_many(&fresh).await;
                }
                if e.is_ambiguous() || e.is_conflict() || self.moved(Some(&over)).await? {
                    Ok(())
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// Deletes the keys of the format-1 head that `current` replaced, then drops it from the
    /// head. Best effort: what is left is finished by a later write.
    pub async fn finish_migration(&self, current: &Current) {
        let Some(raw) = current.head.legacy.clone() else {
            return;
        };
        if let Ok(old) = Legacy::from_raw(raw, None, self.keys()) {
            let Ok((batches, pages)) = old.walk(self).await else {
                return;
            };
            let mut items = Legacy::item_keys(self.keys(), &batches);
            items.extend(old.head.trash.iter().cloned());
            if !self.store().delete_many(&items).await.is_empty() {
                return;
            }
            for level in pages {
                if !self.store().delete_many(&level).await.is_empty() {
                    return;
                }
            }
            if self
                .store()
                .delete(&self.keys().v1_recent(), None)
                .await
                .is_err()
            {
                return;
            }
        }
        let mut head = Head::clone(&current.head);
        head.legacy = None;
        // A lost race is fine: the winner's head still carries the old one, or it is gone.
        let _ = self.commit(head, Some(current), &[], &[]).await;
    }
}
