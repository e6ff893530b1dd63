//! Where items live, and when they move: the tail in the head, then chunks in three tiers.
//!
//! New items go into the head's tail. When the tail grows past [`TAIL_MAX_ITEMS`] or
//! [`TAIL_MAX_BYTES`], its oldest items are flushed, leaving the newest (at most
//! [`TAIL_KEEP_ITEMS`] and [`TAIL_KEEP_BYTES`]) for recent reads and pops to find in the head.
//! A flush goes into the *small* chunk (rewritten, up to [`SMALL_MAX`]); a full small chunk is
//! merged into the *large* one (rewritten, up to [`LARGE_MAX`]); a full large chunk is
//! *sealed* and never rewritten again. So a session has at most one small and one large chunk
//! plus one sealed chunk per megabyte or so, each item is rewritten a bounded number of times
//! (about `SMALL_MAX / flush / 2 + LARGE_MAX / SMALL_MAX / 2`), and only live items are copied
//! when a chunk is rewritten, which reclaims popped and dropped ones.
//!
//! Everything here is arithmetic on the head; the caller fetches and writes.

use super::head::{ChunkRef, Head};

/// The tail is flushed when it holds more items than this...
pub const TAIL_MAX_ITEMS: usize = 64;
/// ...or more bytes.
pub const TAIL_MAX_BYTES: usize = 16 * 1024;
/// A flush leaves at most this many of the newest items in the tail...
pub const TAIL_KEEP_ITEMS: usize = 32;
/// ...and at most this many bytes of them.
pub const TAIL_KEEP_BYTES: usize = 8 * 1024;
/// The small chunk takes flushes up to this size.
pub const SMALL_MAX: u64 = 128 * 1024;
/// The large chunk takes small chunks up to this size, then is sealed.
pub const LARGE_MAX: u64 = 1024 * 1024;

/// The tier of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Takes flushes of the tail.
    Small,
    /// Takes full small chunks.
    Large,
    /// Never rewritten.
    Sealed,
}

impl From<Tier> for u8 {
    fn from(t: Tier) -> u8 {
        match t {
            Tier::Small => 0,
            Tier::Large => 1,
            Tier::Sealed => 2,
        }
    }
}

impl TryFrom<u8> for Tier {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, String> {
        match n {
            0 => Ok(Tier::Small),
            1 => Ok(Tier::Large),
            2 => Ok(Tier::Sealed),
            _ => Err(format!("no chunk tier {n}")),
        }
    }
}

/// How many of the tail's oldest items to flush, if it is due.
pub fn flush_due(head: &Head) -> Option<usize> {
    if head.tail.len() <= TAIL_MAX_ITEMS && head.tail_bytes() <= TAIL_MAX_BYTES {
        return None;
    }
    Some(head.tail.len() - keep_count(&head.tail))
}

/// How many of the newest `items` fit the tail after a flush.
pub fn keep_count<S: AsRef<str>>(items: &[S]) -> usize {
    let mut bytes = 0;
    let mut keep = 0;
    for item in items.iter().rev() {
        bytes += item.as_ref().len();
        if keep == TAIL_KEEP_ITEMS || bytes > TAIL_KEEP_BYTES {
            break;
        }
        keep += 1;
    }
    keep
}

/// Where the items of a chunk to write come from, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The live items of the existing chunk at this index.
    Chunk(usize),
    /// These flushed items (a range of the flushed list).
    Flushed(std::ops::Range<usize>),
}

/// A chunk to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChunk {
    /// What it holds, oldest first.
    pub sources: Vec<Source>,
    /// Its tier.
    pub tier: Tier,
}

/// What a flush does to the chunk list: keep the first `keep` chunks (with new tiers where
/// `retier` says), drop the rest into trash, and append `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrangement {
    /// Existing chunks kept, a prefix of the list.
    pub keep: usize,
    /// Kept chunks whose tier changes (no rewrite).
    pub retier: Vec<(usize, Tier)>,
    /// Chunks to write after the kept ones.
    pub new: Vec<NewChunk>,
}

/// Where flushed items go, given the chunk list and the flushed items' sizes (bytes each, as
/// stored).
pub fn arrange(chunks: &[ChunkRef], flushed: &[u64]) -> Arrangement {
    let f: u64 = flushed.iter().sum();
    let n = chunks.len();
    let small = chunks
        .last()
        .filter(|c| c.tier() == Tier::Small)
        .map(|_| n - 1);
    let large_at = small.map_or(n, |s| s).checked_sub(1);
    let large = large_at.filter(|&i| chunks.get(i).is_some_and(|c| c.tier() == Tier::Large));
    let size = |i: usize| chunks.get(i).map_or(0, ChunkRef::live_bytes);
    let fresh = |tier| NewChunk {
        sources: vec![Source::Flushed(0..flushed.len())],
        tier,
    };

    if f > SMALL_MAX {
        // A big flush: what was open is sealed as it is; the flush is cut into pieces.
        let mut retier = Vec::new();
        retier.extend(small.map(|i| (i, Tier::Sealed)));
        retier.extend(large.map(|i| (i, Tier::Sealed)));
        return Arrangement {
            keep: n,
            retier,
            new: pieces(flushed, 0),
        };
    }
    match (large, small) {
        (_, Some(s)) if size(s) + f <= SMALL_MAX => Arrangement {
            keep: s,
            retier: Vec::new(),
            new: vec![NewChunk {
                sources: vec![Source::Chunk(s), Source::Flushed(0..flushed.len())],
                tier: Tier::Small,
            }],
        },
        (Some(l), Some(s)) if size(l) + size(s) <= LARGE_MAX => Arrangement {
            keep: l,
            retier: Vec::new(),
            new: vec![
                NewChunk {
                    sources: vec![Source::Chunk(l), Source::Chunk(s)],
                    tier: Tier::Large,
                },
                fresh(Tier::Small),
            ],
        },
        (large, Some(s)) => {
            let mut retier: Vec<(usize, Tier)> =
                large.map(|l| (l, Tier::Sealed)).into_iter().collect();
            retier.push((s, Tier::Large));
            Arrangement {
                keep: n,
                retier,
                new: vec![fresh(Tier::Small)],
            }
        }
        (_, None) => Arrangement {
            keep: n,
            retier: Vec::new(),
            new: vec![fresh(Tier::Small)],
        },
    }
}

/// Items of sizes `sizes` cut into chunks of at most [`LARGE_MAX`] (an item larger than that
/// gets a chunk of its own), sealed but the last, which is large or small by its size.
/// `first` is the index of `sizes[0]` in the flushed list.
pub fn pieces(sizes: &[u64], first: usize) -> Vec<NewChunk> {
    let mut out: Vec<(std::ops::Range<usize>, u64)> = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        let at = first + i;
        match out.last_mut() {
            Some((range, bytes)) if *bytes + size <= LARGE_MAX => {
                range.end = at + 1;
                *bytes += size;
            }
            _ => out.push((at..at + 1, size)),
        }
    }
    let last = out.len().saturating_sub(1);
    out.into_iter()
        .enumerate()
        .map(|(i, (range, bytes))| NewChunk {
            sources: vec![Source::Flushed(range)],
            tier: if i < last {
                Tier::Sealed
            } else if bytes > SMALL_MAX {
                Tier::Large
            } else {
                Tier::Small
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(bytes: u64, tier: Tier) -> ChunkRef {
        ChunkRef("aaaaaaaaaaaa".into(), 10, 0, 10, bytes, tier, None)
    }

    #[test]
    fn the_tail_flushes_down_to_what_it_keeps() {
        let mut h = Head::new("aaaaaaaaaaaa".into());
        h.tail = vec!["{}".to_string(); TAIL_MAX_ITEMS];
        assert_eq!(flush_due(&h), None);
        h.tail.push("{}".into());
        assert_eq!(flush_due(&h), Some(TAIL_MAX_ITEMS + 1 - TAIL_KEEP_ITEMS));
        // Bytes bound it too: one big item leaves an empty tail.
        h.tail = vec!["x".repeat(TAIL_MAX_BYTES + 1)];
        assert_eq!(flush_due(&h), Some(1));
        assert_eq!(
            keep_count(&["x".repeat(100), "y".repeat(TAIL_KEEP_BYTES + 1)]),
            0
        );
    }

    #[test]
    fn flushes_fill_small_then_large_then_seal() {
        let f = [4096u64];
        // Nothing yet: a new small chunk.
        let a = arrange(&[], &f);
        assert_eq!((a.keep, a.new.len(), a.new[0].tier), (0, 1, Tier::Small));
        // Room in small: rewrite it with the flush.
        let a = arrange(&[chunk(8192, Tier::Small)], &f);
        assert_eq!(a.keep, 0);
        assert_eq!(
            a.new[0].sources,
            vec![Source::Chunk(0), Source::Flushed(0..1)]
        );
        // Small full, no large: small becomes large, flush a new small.
        let a = arrange(&[chunk(SMALL_MAX, Tier::Small)], &f);
        assert_eq!((a.keep, a.retier.clone()), (1, vec![(0, Tier::Large)]));
        // Small full, room in large: merge them.
        let a = arrange(
            &[chunk(SMALL_MAX, Tier::Large), chunk(SMALL_MAX, Tier::Small)],
            &f,
        );
        assert_eq!(a.keep, 0);
        assert_eq!(a.new[0].sources, vec![Source::Chunk(0), Source::Chunk(1)]);
        assert_eq!(a.new[1].tier, Tier::Small);
        // Large full: seal it, small becomes large.
        let a = arrange(
            &[
                chunk(LARGE_MAX, Tier::Sealed),
                chunk(LARGE_MAX - 10, Tier::Large),
                chunk(SMALL_MAX, Tier::Small),
            ],
            &f,
        );
        assert_eq!(a.keep, 3);
        assert_eq!(a.retier, vec![(1, Tier::Sealed), (2, Tier::Large)]);
    }

    #[test]
    fn big_flushes_are_cut_into_pieces() {
        let sizes = vec![300 * 1024u64; 8];
        let a = arrange(&[chunk(1000, Tier::Small)], &sizes);
        assert_eq!(a.retier, vec![(0, Tier::Sealed)]);
        let tiers: Vec<Tier> = a.new.iter().map(|c| c.tier).collect();
        assert_eq!(tiers, vec![Tier::Sealed, Tier::Sealed, Tier::Large]);
        assert_eq!(a.new[0].sources, vec![Source::Flushed(0..3)]);
        // One item bigger than a chunk gets its own.
        let p = pieces(&[10, 2 * LARGE_MAX, 10], 5);
        let ranges: Vec<Vec<Source>> = p.into_iter().map(|c| c.sources).collect();
        assert_eq!(
            ranges,
            vec![
                vec![Source::Flushed(5..6)],
                vec![Source::Flushed(6..7)],
                vec![Source::Flushed(7..8)]
            ]
        );
    }
}
