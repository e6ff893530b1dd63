//! The head of a log-layout session: the one small, etag-guarded key that says which batches
//! the session holds, and the pure logic that edits it.
//!
//! Batches are immutable: a batch of `n` items is stored once, under keys named after a random
//! nonce, and the head lists it as an entry `(nonce, live items)`. The head keeps the newest
//! batch entries itself (level 0). When a level grows past `2 * FANOUT` entries, its oldest
//! `FANOUT` entries move into an immutable page key, and the page becomes one entry of the
//! next level; when a level shrinks below `FANOUT / 2` (pops), the newest page of the next
//! level is pulled back. So the head stays within `2 * FANOUT` entries per level and every
//! level `k` entry stands for up to `FANOUT^k` batches: appends, pops and recent reads touch
//! a bounded number of keys, however long the session is.

use serde::{Deserialize, Serialize};

/// Entries a page holds; a level spills above `2 * FANOUT` and pulls back below `FANOUT / 2`.
pub const FANOUT: usize = 32;
/// Ids of recent operations kept in the head, to recognise an ambiguous write that landed.
pub const RECENT_OPS: usize = 8;
/// The head format this code writes.
pub const VERSION: u32 = 1;
/// The head keeps a copy of at most this many of the newest items...
pub const TAIL_ITEMS: usize = 24;
/// ...and at most this many bytes of them, so recent reads and pops need only the head.
pub const TAIL_BYTES: usize = 16 * 1024;

/// One entry of a level: a batch (level 0) or a page (higher levels), and its live items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry(pub String, pub u64);

impl Entry {
    /// Nonce of the batch or page.
    pub fn id(&self) -> &str {
        &self.0
    }

    /// Live items under this entry.
    pub fn items(&self) -> u64 {
        self.1
    }

    /// Whether a writer could have made this entry: named by a nonce as [`crate::nonce::new`]
    /// makes them, with at least one item. Entries name keys (`{base}:i:{id}:{n}`,
    /// `{base}:p:{id}`); an id of another form could name another session's keys.
    pub fn is_plausible(&self) -> bool {
        self.1 > 0 && is_nonce(&self.0)
    }
}

/// Whether `s` is a nonce as [`crate::nonce::new`] makes them.
fn is_nonce(s: &str) -> bool {
    s.len() == crate::nonce::LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// The head of a session.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Head {
    /// Format version.
    #[serde(rename = "v")]
    pub version: u32,
    /// Time of the first write (ms since the epoch).
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    /// Time of the latest write (ms since the epoch).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<u64>,
    /// Time every key of the session was last rewritten with the TTL (ms since the epoch).
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub refreshed: Option<u64>,
    /// Levels, level 0 first; each level oldest entry first.
    #[serde(rename = "l", default)]
    pub levels: Vec<Vec<Entry>>,
    /// Ids of the latest operations, oldest first.
    #[serde(rename = "o", default)]
    pub ops: Vec<String>,
    /// Keys no longer referenced, for the next writer to delete.
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub trash: Vec<String>,
    /// Copies of the newest items, oldest first: always the last `tail.len()` items of the
    /// session (their keys are still written; this is a cache that travels with the head).
    #[serde(rename = "n", default, skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
    /// The batches the recent key holds, as its last writer recorded them: the oldest and
    /// the newest (level-0 nonces), and those between them.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub recent: Option<(String, String)>,
}

/// A page to write: its nonce and the entries it holds (oldest first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPage {
    /// Nonce naming the page key.
    pub id: String,
    /// Level the entries belong to (the page itself is an entry of `level + 1`).
    pub level: usize,
    /// The entries.
    pub entries: Vec<Entry>,
}

/// A page a pop must read to pull it back into the level below.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullBack {
    /// The level the page's entries go back into.
    pub into_level: usize,
    /// The page.
    pub page: Entry,
}

impl Head {
    /// An empty head.
    pub fn new() -> Self {
        Head {
            version: VERSION,
            ..Head::default()
        }
    }

    /// Live items in the session.
    pub fn len(&self) -> u64 {
        self.levels.iter().flatten().map(Entry::items).sum()
    }

    /// Whether the session holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why this head cannot have been written by a writer of session keys `{base}:...`, if it
    /// cannot: an entry that is not [plausible](Entry::is_plausible), a batch of more items
    /// than one `add-items` list carries (`u32::MAX`; a page of level k at most `FANOUT^k`
    /// times that), counts whose sum overflows, or trash that is not an item or page key of
    /// the session (writers delete the trash: it must never name another session's keys).
    pub fn implausible(&self, base: &str) -> Option<String> {
        let mut total = 0u64;
        // A batch arrives as one WIT list (a u32 length); a level-k entry is a page of
        // FANOUT entries of level k-1.
        let mut most = u64::from(u32::MAX);
        for level in &self.levels {
            for e in level {
                if !e.is_plausible() || e.items() > most {
                    return Some(format!("entry {e:?} is not a nonce with 1 to {most} items"));
                }
                let Some(sum) = total.checked_add(e.items()) else {
                    return Some("its counts add up to more than 2^64".into());
                };
                total = sum;
            }
            most = most.saturating_mul(FANOUT as u64);
        }
        let own = |key: &str| {
            let Some(rest) = key.strip_prefix(base).and_then(|r| r.strip_prefix(':')) else {
                return false;
            };
            match rest.split(':').collect::<Vec<_>>()[..] {
                ["p", page] => is_nonce(page),
                ["i", batch, n] => is_nonce(batch) && n.parse::<u64>().is_ok(),
                _ => false,
            }
        };
        self.trash
            .iter()
            .find(|k| !own(k))
            .map(|k| format!("its trash names a key that is not the session's: '{k}'"))
    }

    /// Whether operation `id` is among the recent operations.
    pub fn has_op(&self, id: &str) -> bool {
        self.ops.iter().any(|o| o == id)
    }

    /// Records operation `id` as applied.
    pub fn record_op(&mut self, id: &str) {
        self.ops.push(id.to_string());
        let excess = self.ops.len().saturating_sub(RECENT_OPS);
        self.ops.drain(..excess);
    }

    /// Sets the timestamps for a write at `now`.
    pub fn touch(&mut self, now: u64) {
        self.created.get_or_insert(now);
        self.updated = Some(self.updated.map_or(now, |u| u.max(now)));
        self.refreshed.get_or_insert(now);
    }

    #[allow(clippy::indexing_slicing)] // resized just above
    fn level_mut(&mut self, k: usize) -> &mut Vec<Entry> {
        if self.levels.len() <= k {
            self.levels.resize_with(k + 1, Vec::new);
        }
        &mut self.levels[k]
    }

    /// Appends a batch and moves full pages out of over-long levels. Returns the pages to
    /// write; `new_id` names each of them.
    pub fn append(&mut self, batch: Entry, mut new_id: impl FnMut() -> String) -> Vec<NewPage> {
        self.level_mut(0).push(batch);
        let mut pages = Vec::new();
        let mut k = 0;
        while k < self.levels.len() {
            if self.levels.get(k).is_some_and(|l| l.len() > 2 * FANOUT) {
                let moved: Vec<Entry> = self.level_mut(k).drain(..FANOUT).collect();
                let id = new_id();
                let items = moved.iter().map(Entry::items).sum();
                self.level_mut(k + 1).push(Entry(id.clone(), items));
                pages.push(NewPage {
                    id,
                    level: k,
                    entries: moved,
                });
            }
            k += 1;
        }
        pages
    }

    /// Appends `items` to the tail, dropping its oldest items past the size bounds.
    pub fn push_tail<S: AsRef<str>>(&mut self, items: &[S]) {
        self.tail
            .extend(items.iter().map(|i| i.as_ref().to_string()));
        let mut bytes: usize = self.tail.iter().map(String::len).sum();
        let mut drop = 0;
        for item in &self.tail {
            if self.tail.len() - drop <= TAIL_ITEMS && bytes <= TAIL_BYTES {
                break;
            }
            bytes -= item.len();
            drop += 1;
        }
        self.tail.drain(..drop);
    }

    /// Level-0 batches not wholly in the tail, oldest first.
    pub fn outside_tail(&self) -> Vec<&Entry> {
        let Some(level) = self.levels.first() else {
            return Vec::new();
        };
        let mut in_tail = self.tail.len() as u64;
        let mut inside = 0;
        for e in level.iter().rev() {
            if in_tail < e.items() {
                break;
            }
            in_tail -= e.items();
            inside += 1;
        }
        level.iter().take(level.len() - inside).collect()
    }

    /// [`Head::outside_tail`], each with whether it lies in the range the recent key holds.
    pub fn outside_tail_marked(&self) -> Vec<(&Entry, bool)> {
        let outside = self.outside_tail();
        let range = self.recent.as_ref().and_then(|(oldest, newest)| {
            let to = outside.iter().position(|e| e.id() == newest)?;
            // The oldest may have moved into a page since: then the range starts at level 0.
            let from = outside
                .iter()
                .take(to)
                .position(|e| e.id() == oldest)
                .unwrap_or(0);
            Some(from..=to)
        });
        outside
            .into_iter()
            .enumerate()
            .map(|(i, e)| (e, range.as_ref().is_some_and(|r| r.contains(&i))))
            .collect()
    }

    /// The newest batch, if any.
    pub fn newest_batch(&self) -> Option<&Entry> {
        self.levels.first().and_then(|l| l.last())
    }

    /// The pages a pop must pull back: after removing one item from the newest batch, every
    /// level below `FANOUT / 2` entries takes the newest page of the level above. Known from
    /// the head alone, so a pop can fetch them together with the item.
    pub fn pull_backs_for_pop(&self) -> Vec<PullBack> {
        let mut sizes: Vec<usize> = self.levels.iter().map(Vec::len).collect();
        if let (Some(size), Some(newest)) = (sizes.first_mut(), self.newest_batch())
            && newest.items() <= 1
        {
            *size -= 1;
        }
        let mut out = Vec::new();
        for k in 0..sizes.len() {
            let here = sizes.get(k).copied().unwrap_or(0);
            let above = sizes.get(k + 1).copied().unwrap_or(0);
            if here >= FANOUT / 2 || above == 0 {
                continue;
            }
            if let Some(page) = self.levels.get(k + 1).and_then(|l| l.get(above - 1)) {
                out.push(PullBack {
                    into_level: k,
                    page: page.clone(),
                });
                if let Some(s) = sizes.get_mut(k + 1) {
                    *s -= 1;
                }
                if let Some(s) = sizes.get_mut(k) {
                    *s += FANOUT;
                }
            }
        }
        out
    }

    /// Removes the newest item. Returns the batch nonce and the item's index in it.
    pub fn remove_newest_item(&mut self) -> Option<(String, u64)> {
        let level = self.levels.first_mut()?;
        let newest = level.last_mut()?;
        let index = newest.1.checked_sub(1)?;
        newest.1 = index;
        let id = newest.0.clone();
        if index == 0 {
            level.pop();
        }
        self.tail.pop();
        Some((id, index))
    }

    /// Moves a page's entries (oldest first) back into `into_level`, removing the page's entry
    /// from the level above. The page entry must be that level's newest.
    pub fn pull_back(&mut self, pull: &PullBack, entries: Vec<Entry>) -> bool {
        let above = pull.into_level + 1;
        match self.levels.get_mut(above) {
            Some(l) if l.last() == Some(&pull.page) => {
                l.pop();
            }
            _ => return false,
        }
        let level = self.level_mut(pull.into_level);
        let mut merged = entries;
        merged.retain(|e| e.items() > 0);
        merged.append(level);
        *level = merged;
        true
    }

    /// Drops empty levels at the top.
    pub fn trim(&mut self) {
        while self.levels.last().is_some_and(Vec::is_empty) {
            self.levels.pop();
        }
    }
}

/// Which entries to expand to cover the newest `want` items (`None`: all).
///
/// Walks from the newest level-0 entry towards the oldest entry of the top level and keeps,
/// per level, the entries needed (newest first).
pub fn select_newest(levels: &[Vec<Entry>], want: Option<u64>) -> Vec<Vec<Entry>> {
    let mut covered = 0u64;
    let mut out = Vec::with_capacity(levels.len());
    for level in levels {
        let mut chosen = Vec::new();
        for e in level.iter().rev() {
            if want.is_some_and(|w| covered >= w) {
                break;
            }
            covered += e.items();
            chosen.push(e.clone());
        }
        out.push(chosen);
    }
    out
}

/// The newest entries of `entries` (newest first) whose items cover `want`.
pub fn take_covering(entries: Vec<Entry>, want: Option<u64>) -> Vec<Entry> {
    let mut covered = 0u64;
    entries
        .into_iter()
        .take_while(|e| {
            let take = want.is_none_or(|w| covered < w);
            covered += e.items();
            take
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("p{n}")
        }
    }

    /// Every batch entry under `head`, oldest first, expanding pages from `pages`.
    pub(crate) fn flatten(
        head: &Head,
        pages: &std::collections::HashMap<String, Vec<Entry>>,
    ) -> Vec<Entry> {
        fn expand(
            e: &Entry,
            level: usize,
            pages: &std::collections::HashMap<String, Vec<Entry>>,
            out: &mut Vec<Entry>,
        ) {
            if level == 0 {
                out.push(e.clone());
            } else {
                for child in &pages[e.id()] {
                    expand(child, level - 1, pages, out);
                }
            }
        }
        let mut out = Vec::new();
        for (k, level) in head.levels.iter().enumerate().rev() {
            for e in level {
                expand(e, k, pages, &mut out);
            }
        }
        out
    }

    #[test]
    fn marks_the_batches_the_recent_key_holds() {
        let mut head = Head::new();
        for b in 0..6 {
            head.append(Entry(format!("b{b}"), 2), String::new);
            head.push_tail(&["{}", "{}"]);
        }
        // Keep only the newest batch (2 items) and one item of the one before in the tail.
        head.tail.drain(..head.tail.len() - 3);
        let marks = |h: &Head| -> Vec<(String, bool)> {
            h.outside_tail_marked()
                .into_iter()
                .map(|(e, c)| (e.id().to_string(), c))
                .collect()
        };
        let none: Vec<(String, bool)> = (0..5).map(|b| (format!("b{b}"), false)).collect();
        assert_eq!(marks(&head), none);
        head.recent = Some(("b1".into(), "b3".into()));
        let want = [false, true, true, true, false];
        let got: Vec<bool> = marks(&head).into_iter().map(|(_, c)| c).collect();
        assert_eq!(got, want);
        // The oldest held batch moved into a page: the range starts at level 0's start.
        head.levels[0].remove(0);
        head.levels[0].remove(0);
        let got: Vec<bool> = marks(&head).into_iter().map(|(_, c)| c).collect();
        assert_eq!(got, [true, true, false]);
        // The newest held batch is gone (popped): nothing is known to be held.
        head.recent = Some(("b2".into(), "b9".into()));
        assert!(marks(&head).iter().all(|(_, c)| !c));
    }

    #[test]
    fn levels_stay_bounded_and_order_is_kept() {
        let mut head = Head::new();
        let mut pages = std::collections::HashMap::new();
        let mut new_id = ids();
        let mut want = Vec::new();
        for b in 0..20_000u64 {
            let batch = Entry(format!("b{b}"), 1 + b % 3);
            want.push(batch.clone());
            for p in head.append(batch, &mut new_id) {
                pages.insert(p.id, p.entries);
            }
            assert!(head.levels.iter().all(|l| l.len() <= 2 * FANOUT));
        }
        assert_eq!(flatten(&head, &pages), want);
        assert!(head.levels.len() <= 4, "{} levels", head.levels.len());
        let size = serde_json::to_string(&head).map(|s| s.len()).unwrap_or(0);
        assert!(size < 8 * 1024, "head is {size} bytes");
    }

    #[test]
    fn pops_pull_back_and_keep_order() {
        let mut head = Head::new();
        let mut pages = std::collections::HashMap::new();
        let mut new_id = ids();
        let mut want: Vec<Entry> = Vec::new();
        for b in 0..3000u64 {
            let batch = Entry(format!("b{b}"), 2);
            want.push(batch.clone());
            for p in head.append(batch, &mut new_id) {
                pages.insert(p.id, p.entries);
            }
        }
        for _ in 0..5000 {
            let pulls = head.pull_backs_for_pop();
            let (id, index) = head.remove_newest_item().unwrap_or_else(|| panic!("empty"));
            let last = want.last_mut().unwrap();
            assert_eq!((last.id(), last.items() - 1), (id.as_str(), index));
            last.1 -= 1;
            if last.1 == 0 {
                want.pop();
            }
            for pull in pulls {
                let entries = pages[pull.page.id()].clone();
                assert!(head.pull_back(&pull, entries));
            }
            head.trim();
            assert!(!head.levels.first().is_some_and(Vec::is_empty) || head.levels.len() <= 1);
            assert_eq!(flatten(&head, &pages), want);
        }
        assert_eq!(head.len(), 3000 * 2 - 5000);
    }

    #[test]
    fn selection_covers_the_newest_items() {
        let levels = vec![
            vec![Entry("a".into(), 5), Entry("b".into(), 5)],
            vec![Entry("p1".into(), 100), Entry("p2".into(), 100)],
        ];
        let s = select_newest(&levels, Some(7));
        assert_eq!(s[0], vec![Entry("b".into(), 5), Entry("a".into(), 5)]);
        assert!(s[1].is_empty());
        let s = select_newest(&levels, Some(50));
        assert_eq!(s[1], vec![Entry("p2".into(), 100)]);
        let s = select_newest(&levels, None);
        assert_eq!(s[1].len(), 2);
        assert_eq!(take_covering(s[1].clone(), Some(150)).len(), 2);
        assert_eq!(take_covering(s[1].clone(), Some(100)).len(), 1);
        assert_eq!(take_covering(s[1].clone(), Some(0)).len(), 0);
    }

    #[test]
    fn the_tail_is_always_the_newest_items() {
        let mut head = Head::new();
        let mut all: Vec<String> = Vec::new();
        let mut n = 0;
        for round in 0..300 {
            if round % 3 == 2 {
                head.remove_newest_item();
                all.pop();
            } else {
                let batch: Vec<String> = (0..(round % 5 + 1))
                    .map(|_| {
                        n += 1;
                        "x".repeat(n % 700)
                    })
                    .collect();
                head.append(Entry(format!("b{round}"), batch.len() as u64), || {
                    "p".into()
                });
                head.push_tail(&batch);
                all.extend(batch);
            }
            assert!(head.tail.len() <= TAIL_ITEMS);
            assert!(head.tail.iter().map(String::len).sum::<usize>() <= TAIL_BYTES);
            assert_eq!(head.tail[..], all[all.len() - head.tail.len()..]);
        }
    }

    #[test]
    fn recent_ops_are_bounded() {
        let mut head = Head::new();
        for i in 0..40 {
            head.record_op(&format!("op{i}"));
        }
        assert_eq!(head.ops.len(), RECENT_OPS);
        assert!(head.has_op("op39") && !head.has_op("op0"));
    }
}
