//! The head: the one small key of a session that is rewritten, under its etag, by every
//! write. It lists the session's chunks, holds the newest items itself (the tail), and carries
//! what the commit protocol needs: the session's version, the ids of recent operations, and
//! keys left for the next writer to delete.
//!
//! ```json
//! {"v":2, "g":"k3j5…", "s":41, "c":1764741026123, "u":1764741090000,
//!  "k":[["a8…",812,0,812,90520,2,null], ["z1…",96,0,96,10800,0,null]],
//!  "n":["{\"role\":\"user\",…}", …], "o":["q9….0", …], "t":["base:c:old…"]}
//! ```

use super::super::keys::Keys;
use super::tiers::Tier;
use crate::nonce;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The head format this code writes. Format 1 is 0.1.0's (see `legacy`).
pub const VERSION: u32 = 2;
/// Ids of recent operations kept in the head, to recognise an ambiguous write that landed.
pub const RECENT_OPS: usize = 8;

/// One chunk the head references: an immutable key holding `total` items, of which those
/// from `skip` to `skip + live` are the session's (items before were dropped by retention,
/// items after by pops; both go when the chunk is next rewritten).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef(
    /// Nonce naming the key.
    pub String,
    /// Items stored in the chunk.
    pub u64,
    /// Items at the start that are no longer the session's.
    pub u64,
    /// Items after those that are the session's.
    pub u64,
    /// Size of the stored value, in bytes (as written).
    pub u64,
    /// Which tier of the merge policy it belongs to.
    pub Tier,
    /// When it expires at the earliest (ms since the epoch); `None`: it has no TTL.
    pub Option<u64>,
);

impl ChunkRef {
    /// Nonce naming the key.
    pub fn id(&self) -> &str {
        &self.0
    }

    /// Items stored in the chunk.
    pub fn total(&self) -> u64 {
        self.1
    }

    /// Items dropped from its start.
    pub fn skip(&self) -> u64 {
        self.2
    }

    /// Items that are the session's.
    pub fn live(&self) -> u64 {
        self.3
    }

    /// Stored size in bytes.
    pub fn bytes(&self) -> u64 {
        self.4
    }

    /// The bytes of its live items, estimated in proportion.
    pub fn live_bytes(&self) -> u64 {
        if self.1 == 0 {
            return 0;
        }
        u64::try_from(u128::from(self.4) * u128::from(self.3) / u128::from(self.1))
            .unwrap_or(u64::MAX)
    }

    /// Its tier.
    pub fn tier(&self) -> Tier {
        self.5
    }

    /// Its earliest expiry.
    pub fn expires(&self) -> Option<u64> {
        self.6
    }

    /// The live item indexes within the stored chunk.
    pub fn live_range(&self) -> std::ops::Range<usize> {
        let start = usize::try_from(self.2).unwrap_or(usize::MAX);
        let end = usize::try_from(self.2.saturating_add(self.3)).unwrap_or(usize::MAX);
        start..end
    }
}

/// JSON kept as it was read (the replaced 0.1.0 head), compared by its text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Raw(pub Box<RawValue>);

impl PartialEq for Raw {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Eq for Raw {}

/// The head of a session (format 2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Head {
    /// Format version.
    #[serde(rename = "v")]
    pub version: u32,
    /// A nonce chosen when the head was created: with `seq`, the session's version.
    #[serde(rename = "g", default)]
    pub generation: String,
    /// Commits since the head was created.
    #[serde(rename = "s", default)]
    pub seq: u64,
    /// Time of the first write (ms since the epoch).
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    /// Time of the latest write (ms since the epoch).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<u64>,
    /// Chunks holding the older items, oldest first.
    #[serde(rename = "k", default, skip_serializing_if = "Vec::is_empty")]
    pub chunks: Vec<ChunkRef>,
    /// The newest items themselves, oldest first.
    #[serde(rename = "n", default, skip_serializing_if = "Vec::is_empty")]
    pub tail: Vec<String>,
    /// Ids of the latest operations (`op.attempt`), oldest first.
    #[serde(rename = "o", default)]
    pub ops: Vec<String>,
    /// Chunk keys this head no longer references, for the next writer to delete.
    #[serde(rename = "t", default, skip_serializing_if = "Vec::is_empty")]
    pub trash: Vec<String>,
    /// The 0.1.0 head this one replaced, while that format's keys are being deleted.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub legacy: Option<Raw>,
    /// The version of the 0.1.0 head this one replaced (until the next write): a caller who
    /// read that version has seen what this head holds.
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub migrated_from: Option<String>,
}

impl Head {
    /// A new, empty head of generation `generation`.
    pub fn new(generation: String) -> Self {
        Head {
            version: VERSION,
            generation,
            ..Head::default()
        }
    }

    /// Items in the session.
    pub fn len(&self) -> u64 {
        self.chunks
            .iter()
            .map(ChunkRef::live)
            .fold(self.tail.len() as u64, u64::saturating_add)
    }

    /// Whether the session holds no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The session's version as this head records it.
    pub fn version_string(&self) -> String {
        format!("{}.{}", self.generation, self.seq)
    }

    /// Whether a caller who read version `expected` has seen this head's contents.
    pub fn is_version(&self, expected: &str) -> bool {
        expected == self.version_string() || self.migrated_from.as_deref() == Some(expected)
    }

    /// Bytes of the tail's items.
    pub fn tail_bytes(&self) -> usize {
        self.tail.iter().map(String::len).sum()
    }

    /// The attempt of operation `op` this head records (`op.attempt`), if any.
    pub fn attempt_of(&self, op: &str) -> Option<usize> {
        self.ops.iter().find_map(|o| {
            o.strip_prefix(op)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|n| n.parse().ok())
        })
    }

    /// Records operation attempt `tag` as applied.
    pub fn record_op(&mut self, tag: &str) {
        self.ops.push(tag.to_string());
        let excess = self.ops.len().saturating_sub(RECENT_OPS);
        self.ops.drain(..excess);
    }

    /// Marks a write at `now`: a new version, and the timestamps.
    pub fn touch(&mut self, now: u64) {
        self.seq = self.seq.saturating_add(1);
        self.created.get_or_insert(now);
        self.updated = Some(self.updated.map_or(now, |u| u.max(now)));
        self.migrated_from = None;
    }

    /// Why this head cannot have been written by a writer of this session, if it cannot:
    /// chunk references no writer makes (not a nonce, live items outside the chunk, counts that
    /// overflow), trash naming keys that are not this session's chunks, a tail item that is
    /// not an object. Such a head is never acted on: writers delete what heads name.
    pub fn implausible(&self, keys: &Keys) -> Option<String> {
        if !nonce::is_nonce(&self.generation) {
            return Some(format!("generation '{}' is not a nonce", self.generation));
        }
        let mut total = self.tail.len() as u64;
        for c in &self.chunks {
            let fits = c
                .skip()
                .checked_add(c.live())
                .is_some_and(|end| end <= c.total());
            if !nonce::is_nonce(c.id()) || !fits || c.live() == 0 {
                return Some(format!("chunk reference {c:?} is not one a writer makes"));
            }
            match total.checked_add(c.live()) {
                Some(t) => total = t,
                None => return Some("its counts add up to more than 2^64".into()),
            }
        }
        if let Some(k) = self.trash.iter().find(|k| !keys.is_chunk(k)) {
            return Some(format!(
                "its trash names a key that is not the session's: '{k}'"
            ));
        }
        if self
            .tail
            .iter()
            .any(|t| !super::super::chunk::looks_like_item(t))
        {
            return Some("its tail holds something that is not an item".into());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: &str, total: u64, skip: u64, live: u64) -> ChunkRef {
        ChunkRef(id.into(), total, skip, live, total * 100, Tier::Small, None)
    }

    #[test]
    fn round_trips_and_counts() {
        let mut h = Head::new("aaaaaaaaaaaa".into());
        h.chunks = vec![chunk("bbbbbbbbbbbb", 10, 2, 7)];
        h.tail = vec!["{}".into(), "{\"a\":1}".into()];
        h.touch(5);
        let json = serde_json::to_string(&h).unwrap();
        let back: Head = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        assert_eq!(h.len(), 9);
        assert_eq!(h.version_string(), "aaaaaaaaaaaa.1");
        assert!(h.is_version("aaaaaaaaaaaa.1") && !h.is_version("aaaaaaaaaaaa.0"));
        assert_eq!(h.chunks[0].live_range(), 2..9);
        assert_eq!(h.chunks[0].live_bytes(), 700);
    }

    #[test]
    fn ops_are_bounded_and_found() {
        let mut h = Head::new("aaaaaaaaaaaa".into());
        for i in 0..20 {
            h.record_op(&format!("op{i}.{}", i % 3));
        }
        assert_eq!(h.ops.len(), RECENT_OPS);
        assert_eq!(h.attempt_of("op19"), Some(1));
        assert_eq!(h.attempt_of("op1"), None);
    }

    #[test]
    fn implausible_heads_are_named() {
        let keys = Keys::new("s");
        let ok = Head::new("aaaaaaaaaaaa".into());
        assert_eq!(ok.implausible(&keys), None);
        let mut bad = ok.clone();
        bad.chunks = vec![chunk("bbbbbbbbbbbb", 3, 2, 2)];
        assert!(bad.implausible(&keys).is_some());
        let mut bad = ok.clone();
        bad.chunks = vec![chunk("../../x", 3, 0, 3)];
        assert!(bad.implausible(&keys).is_some());
        let mut bad = ok.clone();
        bad.trash = vec!["other:c:bbbbbbbbbbbb".into()];
        assert!(bad.implausible(&keys).is_some());
        let mut bad = ok.clone();
        bad.tail = vec!["[1]".into()];
        assert!(bad.implausible(&keys).is_some());
        let mut bad = ok;
        bad.generation = "x".into();
        assert!(bad.implausible(&keys).is_some());
    }
}
