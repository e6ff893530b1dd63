//! The log layout as stored (format 2), read the way the cases check it: the head
//! (`{base}:head`, a JSON object with `"v":2`), its chunk references, and the chunks
//! (`{base}:c:{nonce}`, each a JSON array of JSON strings, one item's text each).

use std::collections::BTreeSet;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::Exchange;
use serde_json::{Value, json};

use super::bad_input::is_nonce;
use crate::harness::{CaseResult, Ctx};

/// Tier of a chunk: takes flushes of the tail.
pub const SMALL: u64 = 0;
/// Tier of a chunk: takes full small chunks.
pub const LARGE: u64 = 1;
/// Tier of a chunk: never rewritten.
pub const SEALED: u64 = 2;
/// Largest small chunk the merge policy writes.
pub const SMALL_MAX: u64 = 128 * 1024;
/// Largest large or sealed chunk the merge policy writes (one item larger than this gets a
/// chunk of its own).
pub const LARGE_MAX: u64 = 1024 * 1024;
/// The tail is flushed once it holds more items than this.
pub const TAIL_MAX_ITEMS: usize = 64;

/// One chunk reference of a head: `[nonce, total, skip, live, bytes, tier, expires]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRef {
    /// Nonce naming the key.
    pub id: String,
    /// Items stored in the chunk.
    pub total: u64,
    /// Items at its start that are no longer the session's.
    pub skip: u64,
    /// Items after those that are.
    pub live: u64,
    /// Size of the stored value.
    pub bytes: u64,
    /// Tier: [`SMALL`], [`LARGE`] or [`SEALED`].
    pub tier: u64,
    /// Earliest expiry (ms since the epoch), if it has a TTL.
    pub expires: Option<u64>,
}

impl ChunkRef {
    /// The chunk's key in session `base`.
    pub fn key(&self, base: &str) -> String {
        format!("{base}:c:{}", self.id)
    }
}

/// A stored head, parsed.
#[derive(Debug, Clone)]
pub struct Head {
    /// The head as stored.
    pub raw: Value,
    /// Its chunk references, oldest first.
    pub chunks: Vec<ChunkRef>,
    /// The newest items, held in the head, oldest first.
    pub tail: Vec<String>,
}

impl Head {
    /// Parses a stored format-2 head; fails on anything a writer does not make.
    pub fn parse(raw: Value) -> anyhow::Result<Head> {
        ensure!(raw["v"] == json!(2), "not a format-2 head: {raw}");
        ensure!(
            raw["g"].as_str().is_some_and(is_nonce),
            "generation is not a nonce: {raw}"
        );
        ensure!(raw["s"].is_u64(), "no commit sequence: {raw}");
        let chunks = match raw.get("k") {
            None => Vec::new(),
            Some(k) => k
                .as_array()
                .context("chunk list not an array")?
                .iter()
                .map(parse_ref)
                .collect::<anyhow::Result<_>>()?,
        };
        let tail = match raw.get("n") {
            None => Vec::new(),
            Some(n) => n
                .as_array()
                .context("tail not an array")?
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_string)
                        .context("tail entry not a string")
                })
                .collect::<anyhow::Result<_>>()?,
        };
        Ok(Head { raw, chunks, tail })
    }

    /// Items the head says the session holds.
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(|c| c.live).sum::<u64>() + self.tail.len() as u64
    }

    /// The session's version as `get-snapshot` reports it.
    pub fn version(&self) -> String {
        format!(
            "{}.{}",
            self.raw["g"].as_str().unwrap_or_default(),
            self.raw["s"]
        )
    }

    /// The keys it references: itself and its chunks.
    pub fn keys(&self, base: &str) -> BTreeSet<String> {
        let mut keys: BTreeSet<String> = self.chunks.iter().map(|c| c.key(base)).collect();
        keys.insert(format!("{base}:head"));
        keys
    }

    /// The tiers of its chunks, oldest first.
    pub fn tiers(&self) -> Vec<u64> {
        self.chunks.iter().map(|c| c.tier).collect()
    }
}

fn parse_ref(v: &Value) -> anyhow::Result<ChunkRef> {
    let a = v.as_array().context("chunk reference not an array")?;
    ensure!(a.len() == 7, "chunk reference of {} fields: {v}", a.len());
    let n = |i: usize| a[i].as_u64().with_context(|| format!("field {i} of {v}"));
    let id = a[0].as_str().context("chunk id not a string")?.to_string();
    ensure!(is_nonce(&id), "chunk id {id:?} is not a nonce");
    let expires = match &a[6] {
        Value::Null => None,
        e => Some(e.as_u64().with_context(|| format!("expiry of {v}"))?),
    };
    let r = ChunkRef {
        id,
        total: n(1)?,
        skip: n(2)?,
        live: n(3)?,
        bytes: n(4)?,
        tier: n(5)?,
        expires,
    };
    ensure!(r.skip + r.live <= r.total && r.live > 0, "implausible {v}");
    ensure!(r.tier <= SEALED, "tier {} in {v}", r.tier);
    Ok(r)
}

/// The stored head of session `base`, parsed.
pub async fn head_of(ctx: &Ctx, base: &str) -> anyhow::Result<Head> {
    let raw = ctx
        .backend
        .get_bytes(&format!("{base}:head"))
        .await?
        .context("no head")?;
    Head::parse(serde_json::from_slice(&raw).context("the head is not JSON")?)
}

/// The items stored in chunk `c` of session `base` (all `total` of them), checking that the
/// chunk is a JSON array of `total` JSON strings.
pub async fn chunk_items(ctx: &Ctx, base: &str, c: &ChunkRef) -> anyhow::Result<Vec<String>> {
    let key = c.key(base);
    let raw = ctx
        .backend
        .get_bytes(&key)
        .await?
        .with_context(|| format!("{key} is missing"))?;
    let items: Vec<String> = serde_json::from_slice(&raw)
        .with_context(|| format!("{key} is not a JSON array of strings"))?;
    ensure!(
        items.len() as u64 == c.total,
        "{key} holds {} items, the head says {}",
        items.len(),
        c.total
    );
    Ok(items)
}

/// Checks what session `base` stores against `expected` (its items, oldest first): the
/// stored keys are exactly the head and the chunks it references (nothing left behind), each
/// chunk is a JSON array of JSON strings of the length the head records, the live items of
/// the chunks then the tail are `expected`, the tail obeys its bound, and, with `once`,
/// every item is stored exactly once (no chunk holds popped or dropped items). Returns the
/// head.
pub async fn check_stored(
    ctx: &Ctx,
    base: &str,
    expected: &[String],
    once: bool,
) -> anyhow::Result<Head> {
    let head = head_of(ctx, base).await?;
    let stored: BTreeSet<String> = ctx
        .backend
        .keys(&format!("{base}:"))
        .await?
        .into_iter()
        .filter(|k| super::bad_input::belongs(k, base, dapr_session_host_tests::host::Layout::Log))
        .collect();
    ensure!(
        stored == head.keys(base),
        "stored keys {stored:?}, the head references {:?}",
        head.keys(base)
    );
    ensure!(
        head.tail.len() <= TAIL_MAX_ITEMS,
        "tail of {}",
        head.tail.len()
    );
    let mut items = Vec::new();
    let mut copies = 0;
    for c in &head.chunks {
        let all = chunk_items(ctx, base, c).await?;
        copies += all.len();
        items.extend(all.into_iter().skip(c.skip as usize).take(c.live as usize));
    }
    copies += head.tail.len();
    items.extend(head.tail.iter().cloned());
    ensure!(
        items.len() == expected.len(),
        "stored {} items, expected {}",
        items.len(),
        expected.len()
    );
    if let Some(i) = (0..items.len()).find(|&i| items[i] != expected[i]) {
        anyhow::bail!(
            "item {i} stored as {:?}, expected {:?}",
            items[i],
            expected[i]
        );
    }
    if once {
        ensure!(
            copies == expected.len(),
            "{copies} stored entries for {} items",
            expected.len()
        );
    }
    Ok(head)
}

/// Fails unless session `base` stores nothing but an empty head.
pub async fn only_an_empty_head(ctx: &Ctx, base: &str) -> CaseResult {
    let head = check_stored(ctx, base, &[], true).await?;
    ensure!(
        head.chunks.is_empty() && head.tail.is_empty(),
        "{}",
        head.raw
    );
    Ok(())
}

/// The upserts of a save or a transaction.
pub fn upserts(e: &Exchange) -> Vec<Value> {
    if e.method != "POST" {
        return Vec::new();
    }
    let body = e.json();
    if let Some(saves) = body.as_array() {
        return saves.clone();
    }
    body["operations"]
        .as_array()
        .map(|ops| {
            ops.iter()
                .filter(|o| o["operation"] == "upsert")
                .map(|o| o["request"].clone())
                .collect()
        })
        .unwrap_or_default()
}
