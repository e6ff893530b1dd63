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
use crate::json::{Reader, write};
use crate::nonce;

/// The head format this code writes. Format 1 is 0.1.0's (see `legacy`).
pub const VERSION: u32 = 2;
/// Ids of recent operations kept in the head, to recognise an ambiguous write that landed.
pub const RECENT_OPS: usize = 8;

/// One chunk the head references: an immutable key holding `total` items, of which those
/// from `skip` to `skip + live` are the session's (items before were dropped by retention,
/// items after by pops; both go when the chunk is next rewritten).
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The head of a session (format 2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    /// Format version.
    pub version: u32,
    /// A nonce chosen when the head was created: with `seq`, the session's version.
    pub generation: String,
    /// Commits since the head was created.
    pub seq: u64,
    /// Time of the first write (ms since the epoch).
    pub created: Option<u64>,
    /// Time of the latest write (ms since the epoch).
    pub updated: Option<u64>,
    /// Chunks holding the older items, oldest first.
    pub chunks: Vec<ChunkRef>,
    /// The newest items themselves, oldest first.
    pub tail: Vec<String>,
    /// Ids of the latest operations (`op.attempt`), oldest first.
    pub ops: Vec<String>,
    /// Chunk keys this head no longer references, for the next writer to delete.
    pub trash: Vec<String>,
    /// The 0.1.0 head this one replaced (its JSON), while that format's keys are being
    /// deleted.
    pub legacy: Option<String>,
    /// The version of the 0.1.0 head this one replaced (until the next write): a caller who
    /// read that version has seen what this head holds.
    pub migrated_from: Option<String>,
}

impl ChunkRef {
    /// Reads `[id, total, skip, live, bytes, tier, expires|null]`.
    fn read(r: &mut Reader<'_>) -> Option<ChunkRef> {
        let mut fields = (None, [0u64; 4], None, None);
        let mut at = 0;
        r.array(|r| {
            match at {
                0 => fields.0 = Some(r.string()?),
                1..=4 => *fields.1.get_mut(at - 1)? = r.u64()?,
                5 => fields.2 = Some(Tier::try_from(u8::try_from(r.u64()?).ok()?).ok()?),
                6 => fields.3 = Some(if r.null() { None } else { Some(r.u64()?) }),
                _ => return None,
            }
            at += 1;
            Some(())
        })?;
        let [total, skip, live, bytes] = fields.1;
        Some(ChunkRef(
            fields.0?, total, skip, live, bytes, fields.2?, fields.3?,
        ))
    }

    fn write(&self, out: &mut String) {
        out.push('[');
        write::string(out, &self.0);
        for n in [self.1, self.2, self.3, self.4, u64::from(u8::from(self.5))] {
            out.push(',');
            write::u64(out, n);
        }
        out.push(',');
        match self.6 {
            Some(e) => write::u64(out, e),
            None => out.push_str("null"),
        }
        out.push(']');
    }
}

/// The format version of a stored head (its `"v"`), if it is an object that has one.
pub fn version_of(text: &str) -> Option<u64> {
    let mut r = Reader::new(text);
    let mut version = None;
    r.object(|r, name| {
        if name == "v" {
            version = Some(r.u64()?);
        } else {
            r.value()?;
        }
        Some(())
    })?;
    r.end()?;
    version
}

impl Head {
    /// Parses a stored format-2 head; why not, if it is not one.
    pub fn parse(text: &str) -> Result<Head, String> {
        let mut head = Head::default();
        let mut version = None;
        let mut r = Reader::new(text);
        let mut member = String::new();
        let strings = |r: &mut Reader<'_>| {
            let mut out = Vec::new();
            r.array(|r| {
                out.push(r.string()?);
                Some(())
            })?;
            Some(out)
        };
        let opt_u64 = |r: &mut Reader<'_>| {
            if r.null() {
                Some(None)
            } else {
                r.u64().map(Some)
            }
        };
        let mut seen: Vec<String> = Vec::new();
        let parsed = r.object(|r, name| {
            member = name.to_string();
            // A member given twice: no writer makes that.
            if seen.iter().any(|s| s == name) {
                return None;
            }
            seen.push(name.to_string());
            match name {
                "v" => version = Some(u32::try_from(r.u64()?).ok()?),
                "g" => head.generation = r.string()?,
                "s" => head.seq = r.u64()?,
                "c" => head.created = opt_u64(r)?,
                "u" => head.updated = opt_u64(r)?,
                "k" => {
                    r.array(|r| {
                        head.chunks.push(ChunkRef::read(r)?);
                        Some(())
                    })?;
                }
                "n" => head.tail = strings(r)?,
                "o" => head.ops = strings(r)?,
                "t" => head.trash = strings(r)?,
                "x" => {
                    head.legacy = if r.null() {
                        None
                    } else {
                        Some(r.value()?.to_string())
                    }
                }
                "m" => head.migrated_from = if r.null() { None } else { Some(r.string()?) },
                // Members a later format may add.
                _ => {
                    r.value()?;
                }
            }
            Some(())
        });
        if parsed.and_then(|()| r.end()).is_none() {
            return Err(if member.is_empty() {
                "not a JSON object".into()
            } else {
                format!("member \"{member}\" is not what format 2 stores there")
            });
        }
        head.version = version.ok_or("no format version")?;
        Ok(head)
    }

    /// The head as stored.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(256 + self.tail_bytes() * 5 / 4);
        let mut o = write::Object::new(&mut out);
        o.u64("v", u64::from(self.version));
        o.str("g", &self.generation);
        o.u64("s", self.seq);
        if let Some(c) = self.created {
            o.u64("c", c);
        }
        if let Some(u) = self.updated {
            o.u64("u", u);
        }
        if !self.chunks.is_empty() {
            write::array(o.member("k"), &self.chunks, |out, c| c.write(out));
        }
        if !self.tail.is_empty() {
            write::array(o.member("n"), &self.tail, |out, t| write::string(out, t));
        }
        write::array(o.member("o"), &self.ops, |out, t| write::string(out, t));
        if !self.trash.is_empty() {
            write::array(o.member("t"), &self.trash, |out, t| write::string(out, t));
        }
        if let Some(x) = &self.legacy {
            o.raw("x", x);
        }
        if let Some(m) = &self.migrated_from {
            o.str("m", m);
        }
        o.end();
        out
    }

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
        h.legacy = Some(r#"{"v":1,"l":[[["a",1]]]}"#.into());
        h.migrated_from = Some("v1.7".into());
        let json = h.to_json();
        let back = Head::parse(&json).unwrap();
        assert_eq!(back, h);
        assert_eq!(h.len(), 9);
        assert_eq!(h.version_string(), "aaaaaaaaaaaa.1");
        assert!(h.is_version("aaaaaaaaaaaa.1") && !h.is_version("aaaaaaaaaaaa.0"));
        assert_eq!(h.chunks[0].live_range(), 2..9);
        assert_eq!(h.chunks[0].live_bytes(), 700);
    }

    #[test]
    fn stored_heads_of_other_shapes_are_refused() {
        for bad in [
            "[1,2]",
            "not json",
            r#"{"g":"aaaaaaaaaaaa"}"#,
            r#"{"v":2,"s":-1}"#,
            r#"{"v":2,"s":1.5}"#,
            r#"{"v":2,"k":[["a",1,0,1,10,7,null]]}"#,
            r#"{"v":2,"k":[["a",1,0,1,10,0]]}"#,
            r#"{"v":2,"n":[1]}"#,
            r#"{"v":2} x"#,
            r#"{"v":2,"v":2,"g":"aaaaaaaaaaaa"}"#,
        ] {
            assert!(Head::parse(bad).is_err(), "{bad}");
        }
        // Members a later writer adds are skipped.
        let h = Head::parse(r#"{"v":2,"g":"aaaaaaaaaaaa","future":{"a":[1]},"s":3}"#).unwrap();
        assert_eq!((h.version, h.seq), (2, 3));
        assert_eq!(version_of(r#"{"x":[{"v":9}],"v":1}"#), Some(1));
        assert_eq!(version_of("[]"), None);
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
