//! The log layout (the default): append, pop and recent reads cost the same whatever the
//! length of the history.
//!
//! | key                    | value                                                          |
//! |------------------------|----------------------------------------------------------------|
//! | `{base}:head`          | the [`Head`]: timestamps, newest batch entries, page refs, and a copy of the newest items (the tail) |
//! | `{base}:i:{batch}:{n}` | item `n` of a batch: a JSON string holding the item's JSON     |
//! | `{base}:p:{page}`      | an immutable page of older entries (level-1 pages also carry copies of their batches' items) |
//! | `{base}:r`             | the recent key: copies of the batches just outside the tail    |
//!
//! The head is the only key rewritten under an etag; items and pages are written once under
//! fresh random names before (or in the same transaction as) the head that references them,
//! and the recent key is a cache whose every entry is right whoever wrote it. A writer that
//! loses a race leaves nothing visible, and its retry reuses its item keys. Every commit
//! records its operation id in the head, so after a timeout the next read tells whether the
//! write landed, and a retry never applies an operation twice. On stores with transactions the
//! item writes and the head update travel in one transaction; without, items go first and the
//! head after.
//!
//! Round trips, for an instance that has seen the head: `get-items(limit)` 1 while the tail
//! covers `limit`, a whole read of a few hundred items 1; `add-items` and `pop-item` 2, or 1 on
//! Redis, whose etags count writes (the instance that wrote last knows the next etag without
//! reading the head). For an instance that
//! has seen nothing (one per request, as serverless hosts run): `add-items` 2 (3 once per
//! 8 items, when the recent key takes in what left the tail), `get-items()` 2, plus one per
//! index level above the first. Bytes moved depend on the batch, the limit and the head (at
//! most `2 * FANOUT` entries per level, a bounded tail), not on the length of the history.

pub mod head;
pub mod page;
pub mod recent;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::value::RawValue;

use self::head::{Entry, FANOUT, Head, PullBack, VERSION, select_newest, take_covering};
use self::page::{COPY_BATCH_ITEMS, COPY_BYTES, Page};
use self::recent::{REFRESH_ITEMS, Recent};
use super::Timestamps;
use crate::clock;
use crate::dapr::{Concurrency, DaprClient, DaprError, Stored, TxOp, Write};
use crate::error::{Error, Result};
use crate::item;
use crate::join::{join_all, join2, try_join_all};
use crate::nonce;
use crate::retry::Backoff;

/// Largest body sent in one request: daprd's default `--max-body-size` is 4 MiB.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024 - 64 * 1024;
/// Largest stored item (its JSON-string encoding) that fits in one request.
pub const MAX_ITEM_BYTES: usize = MAX_REQUEST_BYTES - 4 * 1024;
/// Keys per bulk-get request.
const KEYS_PER_BULK_GET: usize = 1000;
/// Most items one `get-items` returns, and most item keys one `clear` deletes (the rest are
/// left unreferenced): a wasm32 instance cannot hold the keys and items of many more, and a
/// head claiming more (up to `u32::MAX`) must fail typed rather than exhaust memory.
pub const MAX_READ_ITEMS: u64 = 1 << 22;
/// Most item keys a read fetches on a guess, before it knows it needs them.
const GUESS_ITEMS: usize = 64;
/// Most pages a read fetches on a guess.
const GUESS_PAGES: usize = 16;
/// How often a read starts over because the head moved under it.
const READ_RESTARTS: u32 = 5;

/// A JSON value to write under a key.
type Value = (String, Box<RawValue>);

/// What the sidecar says about the store, asked once per session.
#[derive(Debug, Clone, Copy)]
struct Caps {
    transactional: bool,
    /// Redis etags are versions that go up by one per write: after its own commit, a
    /// writer knows the next etag.
    counting_etags: bool,
}

/// The last head this instance saw (read or committed), to predict the next operation.
struct Seen {
    head: Rc<Head>,
    /// Its etag, when known (read) or predicted (Redis, after our own commit).
    etag: Option<String>,
    at_ms: u64,
}

/// The log layout for one session.
pub struct Log {
    client: DaprClient,
    base: String,
    ttl_seconds: Option<u32>,
    caps: Cell<Option<Caps>>,
    seen: RefCell<Option<Seen>>,
    /// Immutable values (items, pages, the recent key) fetched ahead, by key; `None`: the key
    /// was absent.
    prefetched: RefCell<HashMap<String, Option<Stored>>>,
    /// This instance's view of the recent key.
    recent: RefCell<Recent>,
}

/// A head as read, with its etag.
struct Current {
    head: Rc<Head>,
    etag: Option<String>,
}

/// One attempt's plan: commit `head`, writing `values` and deleting `trash` with it.
struct Plan<T> {
    head: Head,
    values: Vec<Value>,
    /// Pages this attempt creates (garbage if the attempt does not land).
    fresh_pages: Vec<String>,
    trash: Vec<String>,
    result: T,
}

/// What an edit decided.
enum Step<T> {
    Write(Box<Plan<T>>),
    /// Nothing to write.
    Done(T),
}

/// An edit of the head, run once per attempt on the head as it is then.
trait Edit<T> {
    /// Plans the attempt tagged `tag` on `current`.
    async fn plan(&mut self, log: &Log, current: Option<&Current>, tag: &str) -> Result<Step<T>>;

    /// Keys this operation writes in every attempt (deleted if it definitely failed).
    fn own_keys(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether planning on `seen` reads items or pages (then the head is read first, never
    /// bet on).
    fn needs_reads(&self, _log: &Log, _seen: &Head) -> bool {
        false
    }

    /// Immutable keys worth fetching together with the head, guessed from `seen`.
    fn ahead(&self, _log: &Log, _seen: &Head) -> Vec<String> {
        Vec::new()
    }
}

fn internal(message: impl std::fmt::Display) -> Error {
    Error::Store {
        status: 0,
        code: String::new(),
        message: format!("internal: {message}"),
    }
}

fn raw(json: String) -> Result<Box<RawValue>> {
    RawValue::from_string(json).map_err(internal)
}

fn to_raw<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>> {
    raw(serde_json::to_string(value).map_err(internal)?)
}

impl Log {
    /// The layout for the session whose keys start with `base`.
    pub fn new(client: DaprClient, base: &str, ttl_seconds: Option<u32>) -> Self {
        Log {
            client,
            base: base.to_string(),
            ttl_seconds,
            caps: Cell::new(None),
            seen: RefCell::new(None),
            prefetched: RefCell::new(HashMap::new()),
            recent: RefCell::new(Recent::default()),
        }
    }

    fn head_key(&self) -> String {
        format!("{}:head", self.base)
    }

    fn item_key(&self, batch: &str, index: u64) -> String {
        format!("{}:i:{batch}:{index}", self.base)
    }

    fn page_key(&self, page: &str) -> String {
        format!("{}:p:{page}", self.base)
    }

    fn recent_key(&self) -> String {
        format!("{}:r", self.base)
    }

    /// What the store supports; fails if it has no etags. Asks the sidecar once.
    async fn caps(&self) -> Result<Caps> {
        if let Some(c) = self.caps.get() {
            return Ok(c);
        }
        let components = self.client.components().await?;
        let store = self.client.store();
        let Some(info) = components
            .iter()
            .find(|c| c.name == store && c.kind.starts_with("state."))
        else {
            return Err(Error::StoreNotFound(format!(
                "the sidecar has no state store named '{store}'"
            )));
        };
        let has = |cap: &str| info.capabilities.iter().any(|c| c == cap);
        if !has("ETAG") {
            return Err(Error::Store {
                status: 0,
                code: "ERR_ETAG_UNSUPPORTED".into(),
                message: format!(
                    "state store '{store}' ({}) has no etags, which concurrent writers need",
                    info.kind
                ),
            });
        }
        let caps = Caps {
            transactional: has("TRANSACTIONAL"),
            counting_etags: info.kind == "state.redis",
        };
        self.caps.set(Some(caps));
        Ok(caps)
    }

    fn remember(&self, head: Rc<Head>, etag: Option<String>) {
        *self.seen.borrow_mut() = Some(Seen {
            head,
            etag,
            at_ms: clock::now_ms(),
        });
    }

    /// The last head seen with a known etag, if recent enough to bet a write on it: a write
    /// under a stale etag just fails and falls back to a read. With a TTL, only within half of
    /// it, so the head cannot have expired (on Redis, an etag for a missing key is ignored).
    fn bet(&self) -> Option<Current> {
        let seen = self.seen.borrow();
        let seen = seen.as_ref()?;
        let etag = seen.etag.clone()?;
        if let Some(ttl) = self.ttl_seconds
            && clock::now_ms().saturating_sub(seen.at_ms) >= u64::from(ttl) * 500
        {
            return None;
        }
        Some(Current {
            head: seen.head.clone(),
            etag: Some(etag),
        })
    }

    /// Reads the head and, at the same time, the immutable `ahead` keys (a guess from the
    /// last head seen), keeping them for [`Log::fetch`].
    async fn read_head_and(&self, ahead: &[String]) -> Result<Option<Current>> {
        let (head, values) = join2(self.read_head(), self.client_fetch(ahead)).await;
        let mut values = values.unwrap_or_default();
        *self.prefetched.borrow_mut() = ahead
            .iter()
            .map(|k| (k.clone(), values.remove(k)))
            .collect();
        head
    }

    /// Fetches whichever of `keys` are not fetched ahead yet, keeping them for
    /// [`Log::fetch`]: one request for what several later steps need.
    async fn prefetch(&self, keys: &[String]) -> Result<()> {
        let missing: Vec<String> = {
            let ahead = self.prefetched.borrow();
            keys.iter()
                .filter(|k| !ahead.contains_key(*k))
                .cloned()
                .collect()
        };
        let mut values = self.client_fetch(&missing).await?;
        self.prefetched
            .borrow_mut()
            .extend(missing.into_iter().map(|k| {
                let v = values.remove(&k);
                (k, v)
            }));
        Ok(())
    }

    /// The head, if the session exists. A head that does not parse is `corrupt`.
    async fn read_head(&self) -> Result<Option<Current>> {
        let Some(stored) = self.client.get(&self.head_key()).await? else {
            return Ok(None);
        };
        // An object: serde would also read a struct from an array (`[1]`).
        let object = stored.data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        let head: Head =
            serde_json::from_slice(if object { &stored.data } else { b"" }).map_err(|e| {
                Error::Corrupt(format!(
                    "{} is not a session head ({e}); left untouched",
                    self.head_key()
                ))
            })?;
        if let Some(why) = head.implausible(&self.base) {
            return Err(Error::Corrupt(format!(
                "{} is not a session head ({why}); left untouched",
                self.head_key()
            )));
        }
        if head.version > VERSION {
            return Err(Error::Corrupt(format!(
                "{} was written by a newer version (format {}); left untouched",
                self.head_key(),
                head.version
            )));
        }
        let head = Rc::new(head);
        self.remember(Rc::clone(&head), stored.etag.clone());
        Ok(Some(Current {
            head,
            etag: stored.etag,
        }))
    }

    /// Whether the head changed since `current` was read.
    async fn moved(&self, current: Option<&Current>) -> Result<bool> {
        let now = self.client.get(&self.head_key()).await?;
        Ok(match (current, now) {
            (None, None) => false,
            (Some(c), Some(n)) => c.etag != n.etag,
            _ => true,
        })
    }

    /// Bulk-gets `keys` (immutable items and pages), using what was fetched ahead. Missing
    /// keys are absent from the map.
    async fn fetch(&self, keys: &[String]) -> Result<HashMap<String, Stored>> {
        let mut out = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        {
            let mut ahead = self.prefetched.borrow_mut();
            for k in keys {
                match ahead.remove(k) {
                    Some(Some(v)) => {
                        out.insert(k.clone(), v);
                    }
                    Some(None) => {}
                    None => missing.push(k.clone()),
                }
            }
        }
        out.extend(self.client_fetch(&missing).await?);
        Ok(out)
    }

    /// Bulk-gets `keys` in parallel requests (one key: a plain, cheaper, GET).
    async fn client_fetch(&self, keys: &[String]) -> Result<HashMap<String, Stored>> {
        if let [key] = keys {
            let mut out = HashMap::with_capacity(1);
            if let Some(v) = self.client.get(key).await? {
                out.insert(key.clone(), v);
            }
            return Ok(out);
        }
        let requests = keys
            .chunks(KEYS_PER_BULK_GET)
            .map(|chunk| self.client.bulk_get(chunk))
            .collect();
        let mut out = HashMap::with_capacity(keys.len());
        for part in try_join_all(requests).await? {
            out.extend(part);
        }
        Ok(out)
    }

    /// Saves `values` (keys nobody else writes) in parallel requests of bounded size.
    async fn save_all(&self, values: &[Value]) -> std::result::Result<(), DaprError> {
        let mut groups: Vec<Vec<Write<'_>>> = Vec::new();
        let mut size = 0usize;
        for (key, value) in values {
            let len = key.len() + value.get().len() + 128;
            if groups.is_empty() || size + len > MAX_REQUEST_BYTES {
                groups.push(Vec::new());
                size = 0;
            }
            size += len;
            if let Some(g) = groups.last_mut() {
                g.push(Write {
                    key,
                    value,
                    etag: None,
                    concurrency: Concurrency::LastWrite,
                });
            }
        }
        // Where the store has transactions, each group is one, one after the other: daprd
        // applies a multi-key save key by key in parallel, which state.sqlite fails from about
        // 2,000 keys (SQLITE_BUSY, then "unable to open database file") and which is many
        // times slower; and transactions in parallel hold a single-writer store's lock long
        // enough for other sessions' writes to time out on it.
        if self.caps.get().is_some_and(|c| c.transactional) {
            for g in &groups {
                let ops: Vec<TxOp<'_>> = g.iter().cloned().map(TxOp::Upsert).collect();
                self.client.transact(&ops).await?;
            }
            return Ok(());
        }
        try_join_all(groups.iter().map(|g| self.client.save(g)).collect()).await?;
        Ok(())
    }

    /// Deletes keys nothing references any more; returns those it could not delete.
    async fn delete_all(&self, keys: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        // A bounded number of requests in flight at once.
        for chunk in keys.chunks(64) {
            let results =
                join_all(chunk.iter().map(|k| self.client.delete(k, None)).collect()).await;
            failed.extend(
                chunk
                    .iter()
                    .zip(results)
                    .filter(|(_, r)| r.is_err())
                    .map(|(k, _)| k.clone()),
            );
        }
        failed
    }

    /// Writes `values` and deletes `trash`, then commits `head` over `current` (or creates it).
    /// One transaction when the store has them and the payload fits one request. Returns the
    /// head as committed (trash that could not be deleted stays in it).
    async fn commit(
        &self,
        mut head: Head,
        current: Option<&Current>,
        values: &[Value],
        trash: Vec<String>,
    ) -> std::result::Result<Head, DaprError> {
        let head_key = self.head_key();
        let etag = current.and_then(|c| c.etag.as_deref());
        let payload: usize = values
            .iter()
            .map(|(k, v)| k.len() + v.get().len() + 128)
            .sum::<usize>()
            + trash.iter().map(|k| k.len() + 64).sum::<usize>();
        // A head is created by a plain save only: inside a transaction, some stores (Redis)
        // do not enforce first-write for a key without an etag.
        if self.caps.get().is_some_and(|c| c.transactional)
            && etag.is_some()
            && payload < MAX_REQUEST_BYTES / 2
        {
            let head_value = to_raw(&head).map_err(|e| DaprError::Protocol(e.to_string()))?;
            let mut ops: Vec<TxOp<'_>> = values
                .iter()
                .map(|(key, value)| {
                    TxOp::Upsert(Write {
                        key,
                        value,
                        etag: None,
                        concurrency: Concurrency::LastWrite,
                    })
                })
                .collect();
            ops.extend(trash.iter().map(|key| TxOp::Delete { key, etag: None }));
            ops.push(TxOp::Upsert(Write {
                key: &head_key,
                value: &head_value,
                etag,
                concurrency: Concurrency::FirstWrite,
            }));
            self.client.transact(&ops).await?;
            self.remember_commit(&head, etag);
            return Ok(head);
        }
        let (saved, undeleted) = join2(self.save_all(values), self.delete_all(&trash)).await;
        saved?;
        head.trash.extend(undeleted);
        let head_value = to_raw(&head).map_err(|e| DaprError::Protocol(e.to_string()))?;
        self.client
            .save(&[Write {
                key: &head_key,
                value: &head_value,
                etag,
                concurrency: Concurrency::FirstWrite,
            }])
            .await?;
        self.remember_commit(&head, etag);
        Ok(head)
    }

    /// After a commit over `etag`: the new head, and its etag where the store's etags count
    /// writes (a fresh head starts at version 1).
    fn remember_commit(&self, head: &Head, etag: Option<&str>) {
        let counting = self.caps.get().is_some_and(|c| c.counting_etags);
        let next = match etag {
            None => Some(1),
            Some(e) => e.parse::<u64>().ok().and_then(|n| n.checked_add(1)),
        }
        .filter(|_| counting)
        .map(|n| n.to_string());
        self.remember(Rc::new(head.clone()), next);
    }

    /// Plans and commits `edit` until it lands, then returns what the landed attempt planned.
    ///
    /// Each attempt records `op.attempt` in the head. After a lost race the next attempt
    /// plans again on the new head; after an ambiguous failure (timeout, reset) the next read
    /// tells whether the attempt landed after all. An operation is never applied twice.
    async fn run<T>(&self, op: &str, mut edit: impl Edit<T>) -> Result<T> {
        // First attempt without reading the head when its etag is known (no one else wrote:
        // one round trip); a wrong bet fails the etag check and falls back to a read.
        let mut bet = self
            .bet()
            .filter(|current| !edit.needs_reads(self, &current.head));
        // An instance that has seen nothing (as in a serverless host, one per request) asks
        // the sidecar about the store while it reads the head.
        let mut first_read = None;
        if self.caps.get().is_none() && bet.is_none() {
            let (caps, read) = join2(self.caps(), self.read_head_and(&[])).await;
            caps?;
            first_read = Some(read?);
        } else {
            self.caps().await?;
        }
        let mut backoff = Backoff::new();
        // Per attempt: what it planned to return, and the pages it wrote.
        let mut attempts: Vec<(Option<T>, Vec<String>)> = Vec::new();
        let mut orphans: Vec<String> = Vec::new();
        let mut ambiguous = false;
        loop {
            let betting = bet.is_some();
            let current = match (bet.take(), first_read.take()) {
                (Some(c), _) => Some(c),
                (None, Some(read)) => read,
                (None, None) => {
                    let ahead = self
                        .seen
                        .borrow()
                        .as_ref()
                        .map(|s| edit.ahead(self, &s.head))
                        .unwrap_or_default();
                    self.read_head_and(&ahead).await?
                }
            };
            if let Some(landed) = current
                .as_ref()
                .and_then(|c| committed_attempt(&c.head, op))
            {
                let mut stale = std::mem::take(&mut orphans);
                for (i, (_, pages)) in attempts.iter_mut().enumerate() {
                    if i != landed {
                        stale.append(pages);
                    }
                }
                self.delete_all(&stale).await;
                return attempts
                    .get_mut(landed)
                    .and_then(|(result, _)| result.take())
                    .ok_or_else(|| internal("the landed attempt is unknown"));
            }
            if !backoff.start_attempt() {
                if !ambiguous {
                    // Nothing of this operation can land any more.
                    let mut keys = std::mem::take(&mut orphans);
                    keys.extend(edit.own_keys());
                    self.delete_all(&keys).await;
                }
                return Err(Error::Conflict(backoff.attempts()));
            }
            let tag = format!("{op}.{}", attempts.len());
            let plan = match edit.plan(self, current.as_ref(), &tag).await? {
                Step::Done(result) => {
                    self.delete_all(&orphans).await;
                    return Ok(result);
                }
                Step::Write(plan) => *plan,
            };
            attempts.push((Some(plan.result), plan.fresh_pages));
            match self
                .commit(plan.head, current.as_ref(), &plan.values, plan.trash)
                .await
            {
                Ok(committed) => {
                    self.delete_all(&orphans).await;
                    self.maybe_refresh(&committed).await;
                    return attempts
                        .pop()
                        .and_then(|(result, _)| result)
                        .ok_or_else(|| internal("no result"));
                }
                Err(e) => {
                    if e.is_ambiguous() {
                        ambiguous = true;
                    } else if let Some((_, pages)) = attempts.last_mut() {
                        orphans.append(pages);
                    }
                    if betting && !e.is_ambiguous() {
                        // The bet on the etag lost: read the head, without backing off.
                        *self.seen.borrow_mut() = None;
                        continue;
                    }
                    let lost_race = e.is_ambiguous()
                        || e.status() == Some(409)
                        || self.moved(current.as_ref()).await?;
                    if !lost_race {
                        // The head did not move: this was no race, but a failure.
                        if !ambiguous {
                            let mut keys = std::mem::take(&mut orphans);
                            keys.extend(edit.own_keys());
                            self.delete_all(&keys).await;
                        }
                        return Err(e.into());
                    }
                    backoff.pause().await;
                }
            }
        }
    }

    /// Every key the head references (pages of every level, every item) and its trash.
    async fn all_keys(&self, head: &Head) -> Result<Vec<String>> {
        let mut keys = head.trash.clone();
        keys.push(self.recent_key());
        let mut batches: Vec<Entry> = head.levels.first().cloned().unwrap_or_default();
        let mut pending: Vec<(usize, Entry)> = head
            .levels
            .iter()
            .enumerate()
            .skip(1)
            .flat_map(|(k, l)| l.iter().map(move |e| (k, e.clone())))
            .collect();
        while !pending.is_empty() {
            let page_keys: Vec<String> =
                pending.iter().map(|(_, e)| self.page_key(e.id())).collect();
            let pages = self.fetch(&page_keys).await?;
            let mut next = Vec::new();
            for ((level, parent), key) in pending.iter().zip(&page_keys) {
                for e in pages
                    .get(key)
                    .map(|p| parse_page(&p.data, parent))
                    .unwrap_or_default()
                {
                    if *level == 1 {
                        batches.push(e);
                    } else {
                        next.push((level - 1, e));
                    }
                }
            }
            keys.extend(page_keys);
            pending = next;
        }
        let mut room = MAX_READ_ITEMS;
        for b in &batches {
            let n = b.items().min(room);
            room -= n;
            keys.extend((0..n).map(|i| self.item_key(b.id(), i)));
        }
        Ok(keys)
    }

    /// With a TTL, every key of the session is rewritten once a third of the TTL has passed
    /// since the last rewrite: a session written at least every TTL/2 never loses keys to
    /// expiry, and one left alone for a TTL is gone entirely. Best effort: what fails is
    /// retried by the next write.
    async fn maybe_refresh(&self, head: &Head) {
        let Some(ttl) = self.ttl_seconds else { return };
        let now = clock::now_ms();
        let last = head.refreshed.or(head.created).unwrap_or(now);
        if now.saturating_sub(last) < u64::from(ttl) * 1000 / 3 {
            return;
        }
        let Ok(keys) = self.all_keys(head).await else {
            return;
        };
        let Ok(stored) = self.fetch(&keys).await else {
            return;
        };
        let values: Vec<Value> = stored
            .into_iter()
            .filter_map(|(k, v)| {
                let text = String::from_utf8(v.data).ok()?;
                Some((k, RawValue::from_string(text).ok()?))
            })
            .collect();
        if self.save_all(&values).await.is_err() {
            return;
        }
        let mut backoff = Backoff::new();
        while backoff.start_attempt() {
            let Ok(Some(current)) = self.read_head().await else {
                return;
            };
            if current.head.refreshed.is_some_and(|r| r >= now) {
                return;
            }
            let mut next = Head::clone(&current.head);
            next.refreshed = Some(now);
            match self.commit(next, Some(&current), &[], Vec::new()).await {
                Ok(_) => return,
                Err(e) if !e.is_ambiguous() => backoff.pause().await,
                Err(_) => return,
            }
        }
    }

    /// Expands the selection of the newest entries down to batches (newest first), fetching
    /// pages level by level, and whether every page was read: the entries of a page that is
    /// missing or unreadable are skipped.
    async fn newest_batches(
        &self,
        head: &Head,
        want: Option<u64>,
    ) -> Result<(Vec<Entry>, Copies, bool)> {
        let selected = select_newest(&head.levels, want);
        let deepest = selected.iter().rposition(|s| !s.is_empty()).unwrap_or(0);
        let mut carry: Vec<Entry> = Vec::new();
        let mut copies = Copies::new();
        let mut complete = true;
        for k in (1..=deepest).rev() {
            let covered_below: u64 = selected.iter().take(k).flatten().map(Entry::items).sum();
            let need = want.map(|w| w.saturating_sub(covered_below));
            let mut refs = selected.get(k).cloned().unwrap_or_default();
            refs.append(&mut carry);
            let chosen = take_covering(refs, need);
            let keys: Vec<String> = chosen.iter().map(|e| self.page_key(e.id())).collect();
            let pages = self.fetch(&keys).await?;
            for (parent, key) in chosen.iter().zip(&keys) {
                let Some(page) = pages.get(key).and_then(|p| read_page(&p.data, parent)) else {
                    complete = false;
                    continue;
                };
                for (e, items) in page.entries.iter().zip(page.items) {
                    if let Some(items) = items.filter(|t| t.len() as u64 == e.items()) {
                        copies.insert(e.id().to_string(), items);
                    }
                }
                // Pages hold entries oldest first; `carry` is newest first.
                carry.extend(page.entries.into_iter().rev());
            }
        }
        let mut batches = selected.into_iter().next().unwrap_or_default();
        batches.append(&mut carry);
        Ok((take_covering(batches, want), copies, complete))
    }

    /// See [`super::Layout::get_items`].
    pub async fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>> {
        let limit = limit.map(u64::from);
        let mut restarts = 0;
        'read: loop {
            // Guess what the read needs beyond the head from the last head seen, and fetch it
            // with the head: when nothing changed, one round trip.
            let ahead = match (restarts, self.seen.borrow().as_ref()) {
                (0, Some(seen)) if !tail_covers(&seen.head, limit) => {
                    self.reads_for(&seen.head, limit, Some(GUESS_ITEMS))
                }
                _ => Vec::new(),
            };
            let current = match self.read_head_and(&ahead).await {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(Vec::new()),
                // Reads skip what they cannot decode, as the upstream layout does.
                Err(Error::Corrupt(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            let total = current.head.len();
            let tail = &current.head.tail;
            // The head's tail alone answers recent reads.
            if tail_covers(&current.head, limit) {
                let n = limit.map_or(tail.len(), |l| {
                    usize::try_from(l.min(total)).unwrap_or(usize::MAX)
                });
                return Ok(newest_of(tail, n).to_vec());
            }
            if limit.map_or(total, |l| l.min(total)) > MAX_READ_ITEMS {
                return Err(Error::Store {
                    status: 0,
                    code: "ERR_TOO_MANY_ITEMS".into(),
                    message: format!(
                        "the session holds {total} items; one get-items returns at most \
                         {MAX_READ_ITEMS}: pass a limit"
                    ),
                });
            }
            // Older items: the recent key, pages' copies, item keys. What the head shows is
            // needed at the first levels goes in one request (usually fetched with the head).
            self.prefetch(&self.reads_for(&current.head, limit, None))
                .await?;
            let recent = match current.head.recent {
                Some(_) => {
                    let recent = Recent::parse(
                        &self
                            .fetch(&[self.recent_key()])
                            .await?
                            .remove(&self.recent_key())
                            .map(|s| s.data)
                            .unwrap_or_default(),
                    );
                    *self.recent.borrow_mut() = recent.clone();
                    recent
                }
                None => Recent::default(),
            };
            let mut want = limit.map(|l| l.min(total));
            loop {
                let (batches, mut copies, complete) =
                    self.newest_batches(&current.head, want).await?;
                let refs = newest_items(&batches, want);
                // The newest of them are in the tail, older ones may be copied in pages: fetch
                // the rest only. Past a skipped page, only level 0 is known to be the newest.
                let contiguous = match (complete, current.head.levels.first()) {
                    (false, Some(level)) => level.iter().map(Entry::items).sum::<u64>(),
                    (false, None) => 0,
                    (true, _) => u64::MAX,
                };
                let from_tail = tail
                    .len()
                    .min(refs.len())
                    .min(usize::try_from(contiguous).unwrap_or(usize::MAX));
                let older = refs.get(..refs.len() - from_tail).unwrap_or_default();
                let index = |i: u64| usize::try_from(i).unwrap_or(usize::MAX);
                let keys: Vec<String> = older
                    .iter()
                    .filter(|(b, i)| {
                        copies
                            .get(b)
                            .or_else(|| recent.get(b))
                            .and_then(|t| t.get(index(*i)))
                            .is_none()
                    })
                    .map(|(b, i)| self.item_key(b, *i))
                    .collect();
                let stored = self.fetch(&keys).await?;
                let incomplete = !complete || keys.iter().any(|k| !stored.contains_key(k));
                if incomplete && restarts < READ_RESTARTS && self.moved(Some(&current)).await? {
                    // A concurrent pop or clear removed what this head referenced.
                    restarts += 1;
                    continue 'read;
                }
                // Each item is taken once: out of the pages' copies, else copied from the
                // recent key, else decoded from its key.
                let items: Vec<String> = older
                    .iter()
                    .filter_map(|(b, i)| {
                        let copy = match copies.get_mut(b) {
                            Some(t) => t.get_mut(index(*i)).map(std::mem::take),
                            None => recent.get(b).and_then(|t| t.get(index(*i))).cloned(),
                        };
                        copy.or_else(|| {
                            stored
                                .get(&self.item_key(b, *i))
                                .and_then(|s| decode_item(&s.data))
                        })
                    })
                    .chain(newest_of(tail, from_tail).iter().cloned())
                    .collect();
                let found = items.len() as u64;
                match (limit, want) {
                    // Unreadable items were skipped: look further back while there is more,
                    // at least twice as far each time (a long run of unreadable items costs
                    // a few rounds, not one per item).
                    (Some(l), Some(w)) if found < l && w < total && w < MAX_READ_ITEMS => {
                        want = Some((w + (l - found)).max(w * 2).min(total).min(MAX_READ_ITEMS));
                    }
                    _ => {
                        let skip = limit.map_or(0, |l| found.saturating_sub(l));
                        return Ok(items
                            .into_iter()
                            .skip(usize::try_from(skip).unwrap_or(0))
                            .collect());
                    }
                }
            }
        }
    }

    /// The keys beyond `head` a read of the newest `limit` items (all, if `None`) needs, as
    /// far as `head` shows them: the recent key, the items of level-0 batches outside the tail
    /// that the head does not record in the recent key, and level-1 pages. A guess (`cap`:
    /// made before the head is read) fetches at most `cap` item keys, so it costs little when
    /// wrong.
    fn reads_for(&self, head: &Head, limit: Option<u64>, cap: Option<usize>) -> Vec<String> {
        let want = limit.map(|l| l.min(head.len()));
        let selected = select_newest(&head.levels, want);
        let mut keys = Vec::new();
        if head.recent.is_some() {
            keys.push(self.recent_key());
        }
        let uncovered: Vec<&str> = head
            .outside_tail_marked()
            .into_iter()
            .filter(|(e, covered)| !covered || e.items() > COPY_BATCH_ITEMS)
            .map(|(e, _)| e.id())
            .collect();
        let cap = cap.unwrap_or(usize::MAX);
        // Only the newest `want` items: not every item of a large batch for a small limit.
        let mut remaining = want.unwrap_or(u64::MAX);
        let items: Vec<String> = selected
            .first()
            .into_iter()
            .flatten()
            .map(|e| {
                let take = e.items().min(remaining);
                remaining -= take;
                (e, take)
            })
            .filter(|(e, _)| uncovered.contains(&e.id()))
            .flat_map(|(e, take)| (e.items() - take..e.items()).map(|i| self.item_key(e.id(), i)))
            .take(cap.saturating_add(1))
            .collect();
        if items.len() <= cap {
            keys.extend(items);
        }
        if let Some(pages) = selected.get(1).filter(|p| p.len() <= GUESS_PAGES) {
            keys.extend(pages.iter().map(|e| self.page_key(e.id())));
        }
        keys
    }

    /// See [`super::Layout::add_items`].
    pub async fn add_items(&self, items: &[&str]) -> Result<()> {
        let batch = nonce::new();
        let mut values: Vec<Value> = Vec::with_capacity(items.len());
        for (i, text) in items.iter().enumerate() {
            let encoded = item::encode_string(text);
            if encoded.len() > MAX_ITEM_BYTES {
                return Err(Error::invalid_item(
                    i,
                    format!(
                        "item is {} bytes; one request to the sidecar carries at most {MAX_ITEM_BYTES}",
                        encoded.len()
                    ),
                ));
            }
            values.push((self.item_key(&batch, i as u64), raw(encoded)?));
        }
        let count = items.len() as u64;
        self.run(
            &batch,
            Add {
                batch: &batch,
                count,
                items: values,
                texts: items,
            },
        )
        .await
    }

    /// See [`super::Layout::pop_item`]. An unreadable newest item is removed and the next
    /// one popped, as upstream does.
    pub async fn pop_item(&self) -> Result<Option<String>> {
        loop {
            match self.run(&nonce::new(), Pop).await? {
                Popped::Empty => return Ok(None),
                Popped::Item(item) => return Ok(Some(item)),
                Popped::Unreadable => continue,
            }
        }
    }

    /// See [`super::Layout::clear`]: commits an empty head, then deletes everything the old
    /// head referenced. Keys a failed delete leaves behind are unreferenced (and expire with a
    /// TTL).
    pub async fn clear(&self) -> Result<()> {
        if let Some(old) = self.run(&nonce::new(), Clear).await? {
            let keys = self.all_keys(&old).await?;
            self.delete_all(&keys).await;
        }
        Ok(())
    }

    /// See [`super::Layout::timestamps`].
    pub async fn timestamps(&self) -> Result<Timestamps> {
        Ok(match self.read_head().await? {
            Some(c) => Timestamps {
                created_at: c.head.created,
                updated_at: c.head.updated,
            },
            None => Timestamps::default(),
        })
    }

    /// Level-0 batches of `head` outside its tail that the head does not record in the
    /// recent key (and small enough for it), once they hold [`REFRESH_ITEMS`] items: then the
    /// key is rewritten to take them in.
    fn due_for_recent(head: &Head) -> Vec<Entry> {
        let missing: Vec<Entry> = head
            .outside_tail_marked()
            .into_iter()
            .filter(|(e, covered)| !covered && e.items() <= COPY_BATCH_ITEMS)
            .map(|(e, _)| e.clone())
            .collect();
        if missing.iter().map(Entry::items).sum::<u64>() >= REFRESH_ITEMS {
            missing
        } else {
            Vec::new()
        }
    }

    /// Whether this instance's copy of the recent key is the one `head` records.
    fn knows_recent(&self, head: &Head) -> bool {
        head.recent.is_none() || self.recent.borrow().coverage() == head.recent
    }

    /// The item keys a page of `batches` copies.
    fn copy_keys(&self, batches: &[Entry]) -> Vec<String> {
        batches
            .iter()
            .filter(|b| b.items() <= COPY_BATCH_ITEMS)
            .flat_map(|b| (0..b.items()).map(|i| self.item_key(b.id(), i)))
            .collect()
    }

    /// The items of `batches` to copy into their page: each batch's items, or `None` when it
    /// is too large, unreadable, or over the page's byte budget.
    async fn copies_for(&self, batches: &[Entry]) -> Result<Vec<Option<Vec<String>>>> {
        let stored = self.fetch(&self.copy_keys(batches)).await?;
        let mut budget = COPY_BYTES;
        Ok(batches
            .iter()
            .map(|b| {
                if b.items() > COPY_BATCH_ITEMS {
                    return None;
                }
                let items: Option<Vec<String>> = (0..b.items())
                    .map(|i| {
                        stored
                            .get(&self.item_key(b.id(), i))
                            .and_then(|s| decode_item(&s.data))
                    })
                    .collect();
                let items = items?;
                let size: usize = items.iter().map(String::len).sum();
                if size > budget {
                    return None;
                }
                budget -= size;
                Some(items)
            })
            .collect())
    }

    /// The entries of the page a pull-back needs.
    fn pulled_entries(
        &self,
        fetched: &HashMap<String, Stored>,
        pull: &PullBack,
    ) -> Result<Vec<Entry>> {
        let key = self.page_key(pull.page.id());
        fetched
            .get(&key)
            .and_then(|p| read_page(&p.data, &pull.page))
            .map(|p| p.entries)
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "page {key} is missing or unreadable; left untouched"
                ))
            })
    }
}

/// Whether `head`'s tail holds the newest `limit` items (all, if `None`).
fn tail_covers(head: &Head, limit: Option<u64>) -> bool {
    let total = head.len();
    let have = head.tail.len() as u64;
    match limit {
        Some(l) => have >= l.min(total),
        None => have == total,
    }
}

/// Items copied from pages, by batch nonce.
type Copies = HashMap<String, Vec<String>>;

/// The newest `want` items of `batches` (newest first), as (batch, index), oldest first.
fn newest_items(batches: &[Entry], want: Option<u64>) -> Vec<(String, u64)> {
    let mut remaining = want.unwrap_or(u64::MAX);
    let mut out = Vec::new();
    for b in batches {
        if remaining == 0 {
            break;
        }
        let take = b.items().min(remaining);
        out.extend(
            (b.items() - take..b.items())
                .rev()
                .map(|i| (b.id().to_string(), i)),
        );
        remaining -= take;
    }
    out.reverse();
    out
}

/// The last `n` elements of `v` (all of it if shorter).
fn newest_of<T>(v: &[T], n: usize) -> &[T] {
    v.get(v.len().saturating_sub(n)..).unwrap_or_default()
}

/// The attempt of operation `op` the head records (`op.attempt`), if any.
fn committed_attempt(head: &Head, op: &str) -> Option<usize> {
    head.ops.iter().find_map(|o| {
        o.strip_prefix(op)
            .and_then(|rest| rest.strip_prefix('.'))
            .and_then(|n| n.parse().ok())
    })
}

/// The entries of the page `parent` names; an unreadable page reads as empty.
fn parse_page(data: &[u8], parent: &Entry) -> Vec<Entry> {
    read_page(data, parent)
        .map(|p| p.entries)
        .unwrap_or_default()
}

/// The page `parent` names, if it parses, every entry is [plausible](Entry::is_plausible)
/// (entries name keys, and an entry of another form could name another session's keys), and
/// its entries hold the items `parent` counts (pages never change, so they always do).
fn read_page(data: &[u8], parent: &Entry) -> Option<Page> {
    Page::parse(data).filter(|p| {
        p.entries.iter().all(Entry::is_plausible)
            && p.entries
                .iter()
                .try_fold(0u64, |sum, e| sum.checked_add(e.items()))
                == Some(parent.items())
    })
}

/// An item as stored: a JSON string holding the item's JSON object.
fn decode_item(data: &[u8]) -> Option<String> {
    let raw: &RawValue = serde_json::from_slice(data).ok()?;
    item::decode_entry(raw)
}

/// Appends one batch.
struct Add<'a> {
    batch: &'a str,
    count: u64,
    items: Vec<Value>,
    texts: &'a [&'a str],
}

impl Edit<()> for Add<'_> {
    async fn plan(&mut self, log: &Log, current: Option<&Current>, tag: &str) -> Result<Step<()>> {
        let mut head = current.map_or_else(Head::new, |c| Head::clone(&c.head));
        let trash = std::mem::take(&mut head.trash);
        let pages = head.append(Entry(self.batch.to_string(), self.count), nonce::new);
        head.push_tail(self.texts);
        head.record_op(tag);
        head.touch(clock::now_ms());
        let mut values: Vec<Value> = self.items.clone();
        // Batches that left the tail are copied into the recent key, a few at a time; the
        // head records which batches the key then holds.
        let missing = Log::due_for_recent(&head);
        if !missing.is_empty() {
            let mut keys = log.copy_keys(&missing);
            let known = log.knows_recent(&head);
            if !known {
                keys.push(log.recent_key());
            }
            let mut stored = log.fetch(&keys).await?;
            let more: Vec<(String, Vec<String>)> = missing
                .iter()
                .filter_map(|b| {
                    let items: Option<Vec<String>> = (0..b.items())
                        .map(|i| {
                            stored
                                .get(&log.item_key(b.id(), i))
                                .and_then(|s| decode_item(&s.data))
                        })
                        .collect();
                    items.map(|i| (b.id().to_string(), i))
                })
                .collect();
            let old = if known {
                log.recent.borrow().clone()
            } else {
                stored
                    .remove(&log.recent_key())
                    .map(|s| Recent::parse(&s.data))
                    .unwrap_or_default()
            };
            let outside: Vec<&str> = head.outside_tail().iter().map(|e| e.id()).collect();
            let recent = old.rebuilt(&outside, &more);
            head.recent = recent.coverage();
            values.push((log.recent_key(), to_raw(&recent)?));
            *log.recent.borrow_mut() = recent;
        }
        let mut fresh_pages = Vec::with_capacity(pages.len());
        for p in pages {
            let key = log.page_key(&p.id);
            let json = if p.level == 0 {
                // A page of batches carries copies of their items, for long reads.
                let copies = log.copies_for(&p.entries).await?;
                Page::encode_batches(p.entries, copies)
            } else {
                Page::encode_refs(&p.entries)
            };
            values.push((key.clone(), raw(json.map_err(internal)?)?));
            fresh_pages.push(key);
        }
        Ok(Step::Write(Box::new(Plan {
            head,
            values,
            fresh_pages,
            trash,
            result: (),
        })))
    }

    fn own_keys(&self) -> Vec<String> {
        self.items.iter().map(|(k, _)| k.clone()).collect()
    }

    fn needs_reads(&self, _log: &Log, seen: &Head) -> bool {
        spill_is_due(seen) || !Log::due_for_recent(&self.appended_to(seen)).is_empty()
    }

    fn ahead(&self, log: &Log, seen: &Head) -> Vec<String> {
        let mut keys = Vec::new();
        if spill_is_due(seen) {
            let oldest: Vec<Entry> = seen
                .levels
                .first()
                .map(|l| l.iter().take(FANOUT).cloned().collect())
                .unwrap_or_default();
            keys = log.copy_keys(&oldest);
        }
        let next = self.appended_to(seen);
        let due = Log::due_for_recent(&next);
        if !due.is_empty() {
            keys.extend(log.copy_keys(&due));
            if !log.knows_recent(&next) {
                keys.push(log.recent_key());
            }
        }
        keys
    }
}

impl Add<'_> {
    /// `seen` with this batch appended (pages unnamed), to foresee what planning will need.
    fn appended_to(&self, seen: &Head) -> Head {
        let mut next = seen.clone();
        next.append(Entry(self.batch.to_string(), self.count), String::new);
        next.push_tail(self.texts);
        next
    }
}

/// Whether the next append moves level 0's oldest batches into a page.
fn spill_is_due(head: &Head) -> bool {
    head.levels.first().map_or(0, Vec::len) + 1 > 2 * FANOUT
}

/// What a pop found.
enum Popped {
    Empty,
    Item(String),
    /// The newest item could not be read; it was removed.
    Unreadable,
}

/// Removes the newest item, pulling pages back into the head as levels run low.
struct Pop;

impl Edit<Popped> for Pop {
    fn needs_reads(&self, _log: &Log, seen: &Head) -> bool {
        seen.tail.is_empty() || !seen.pull_backs_for_pop().is_empty()
    }

    fn ahead(&self, log: &Log, seen: &Head) -> Vec<String> {
        let Some(newest) = seen.newest_batch() else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        if seen.tail.is_empty() {
            keys.push(log.item_key(newest.id(), newest.items().saturating_sub(1)));
        }
        keys.extend(
            seen.pull_backs_for_pop()
                .iter()
                .map(|p| log.page_key(p.page.id())),
        );
        keys
    }

    async fn plan(
        &mut self,
        log: &Log,
        current: Option<&Current>,
        tag: &str,
    ) -> Result<Step<Popped>> {
        let Some(current) = current else {
            return Ok(Step::Done(Popped::Empty));
        };
        let mut head = Head::clone(&current.head);
        let trash = std::mem::take(&mut head.trash);
        // Level 0 is empty under deeper levels only if an earlier pull-back was lost.
        while head.levels.first().is_none_or(Vec::is_empty) && head.levels.len() > 1 {
            let Some(pull) = head.pull_backs_for_pop().into_iter().next() else {
                break;
            };
            let fetched = log.fetch(&[log.page_key(pull.page.id())]).await?;
            let entries = log.pulled_entries(&fetched, &pull)?;
            head.pull_back(&pull, entries);
            // Still referenced by the committed head: delete only after this commit.
            head.trash.push(log.page_key(pull.page.id()));
            head.trim();
        }
        let Some(newest) = head.newest_batch().cloned() else {
            return Ok(Step::Done(Popped::Empty));
        };
        let pulls = head.pull_backs_for_pop();
        let item_key = log.item_key(newest.id(), newest.items().saturating_sub(1));
        // The head's tail holds the newest item when it is not empty.
        let from_tail = head.tail.last().cloned();
        let mut keys = Vec::new();
        if from_tail.is_none() {
            keys.push(item_key.clone());
        }
        keys.extend(pulls.iter().map(|p| log.page_key(p.page.id())));
        let fetched = log.fetch(&keys).await?;
        head.remove_newest_item();
        for pull in &pulls {
            let entries = log.pulled_entries(&fetched, pull)?;
            head.pull_back(pull, entries);
            head.trash.push(log.page_key(pull.page.id()));
        }
        head.trim();
        head.trash.push(item_key.clone());
        head.record_op(tag);
        head.touch(clock::now_ms());
        let item = from_tail.or_else(|| fetched.get(&item_key).and_then(|s| decode_item(&s.data)));
        let result = match item {
            Some(item) => Popped::Item(item),
            None => Popped::Unreadable,
        };
        Ok(Step::Write(Box::new(Plan {
            head,
            values: Vec::new(),
            fresh_pages: Vec::new(),
            trash,
            result,
        })))
    }
}

/// Replaces the head with an empty one; returns the old head.
struct Clear;

impl Edit<Option<Head>> for Clear {
    async fn plan(
        &mut self,
        log: &Log,
        current: Option<&Current>,
        tag: &str,
    ) -> Result<Step<Option<Head>>> {
        let Some(current) = current else {
            return Ok(Step::Done(None));
        };
        *log.recent.borrow_mut() = Recent::default();
        // The head stays (empty): a writer holding an old etag must fail, and on Redis an
        // etag given for a missing key is ignored.
        let mut head = Head::new();
        head.ops = current.head.ops.clone();
        head.record_op(tag);
        Ok(Step::Write(Box::new(Plan {
            head,
            values: Vec::new(),
            fresh_pages: Vec::new(),
            trash: Vec::new(),
            result: Some(Head::clone(&current.head)),
        })))
    }
}
