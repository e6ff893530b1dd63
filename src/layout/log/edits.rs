//! What each write does to the head: append, pop, clear and replace, each planned on the head
//! as it is at the attempt, with what they share: retention, flushing the tail into chunks,
//! and refreshing chunks' TTL.

use super::commit::{ChunkWrite, Edit, Plan, Step};
use super::head::{ChunkRef, Head};
use super::read::Fetched;
use super::tiers::{self, Source, Tier};
use super::{Current, Log};
use crate::error::{Error, Result};
use crate::layout::chunk;
use crate::store::Store;

/// A head being edited, with what the commit must write and delete.
struct Draft {
    head: Head,
    writes: Vec<ChunkWrite>,
    deletes: Vec<String>,
}

impl Draft {
    /// A draft on `current` (or a new session), taking over its trash for deletion.
    fn on<S: Store>(log: &Log<S>, current: Option<&Current>) -> Draft {
        let mut head = current.map_or_else(|| Head::new(log.nonce()), |c| Head::clone(&c.head));
        let deletes = std::mem::take(&mut head.trash)
            .into_iter()
            .filter(|k| !log.is_gone(k))
            .collect();
        Draft {
            head,
            writes: Vec::new(),
            deletes,
        }
    }

    /// Drops chunk `i` from the head; its key goes to the trash.
    fn drop_chunk<S: Store>(&mut self, log: &Log<S>, i: usize) {
        if i < self.head.chunks.len() {
            let c = self.head.chunks.remove(i);
            self.head.trash.push(log.keys().chunk(c.id()));
        }
    }

    /// Drops the oldest items beyond the retention bound.
    fn retain<S: Store>(&mut self, log: &Log<S>) {
        let Some(max) = log.max_items() else { return };
        let mut excess = self.head.len().saturating_sub(u64::from(max));
        while excess > 0 {
            match self.head.chunks.first_mut() {
                Some(c) if c.live() <= excess => {
                    excess -= c.live();
                    self.drop_chunk(log, 0);
                }
                Some(c) => {
                    c.2 += excess;
                    c.3 -= excess;
                    excess = 0;
                }
                None => {
                    let n = usize::try_from(excess)
                        .unwrap_or(usize::MAX)
                        .min(self.head.tail.len());
                    self.head.tail.drain(..n);
                    excess = 0;
                }
            }
        }
    }

    /// Flushes the tail into chunks if it is over its bounds.
    async fn flush<S: Store>(&mut self, log: &Log<S>) -> Result<()> {
        let Some(n) = tiers::flush_due(&self.head) else {
            return Ok(());
        };
        let flushed: Vec<String> = self.head.tail.drain(..n).collect();
        let sizes: Vec<u64> = flushed
            .iter()
            .map(|t| chunk::encoded_len(t) as u64 + 1)
            .collect();
        let plan = tiers::arrange(&self.head.chunks, &sizes);
        let reads: Vec<usize> = plan
            .new
            .iter()
            .flat_map(|c| &c.sources)
            .filter_map(|s| match s {
                Source::Chunk(i) => Some(*i),
                Source::Flushed(_) => None,
            })
            .collect();
        let fetched = self.fetch_strict(log, &reads).await?;
        let now = log.store().now_ms();
        let mut fresh = Vec::with_capacity(plan.new.len());
        for new in &plan.new {
            let mut builder = chunk::Builder::with_capacity(64 * 1024);
            for source in &new.sources {
                match source {
                    Source::Chunk(i) => {
                        let (_, f, spans) = fetched
                            .iter()
                            .find(|(at, _, _)| at == i)
                            .ok_or_else(|| Error::internal("a merged chunk was not fetched"))?;
                        builder
                            .push_stored(&f.text, spans)
                            .ok_or_else(|| Error::internal("a fetched chunk does not splice"))?;
                    }
                    Source::Flushed(range) => {
                        builder.push_items(flushed.get(range.clone()).unwrap_or_default());
                    }
                }
            }
            fresh.push(self.new_chunk(log, builder, new.tier, now)?);
        }
        for (i, tier) in plan.retier {
            if let Some(c) = self.head.chunks.get_mut(i) {
                c.5 = tier;
            }
        }
        while self.head.chunks.len() > plan.keep {
            self.drop_chunk(log, plan.keep);
        }
        self.head.chunks.extend(fresh);
        Ok(())
    }

    /// A chunk of what `builder` holds, to write with the commit.
    fn new_chunk<S: Store>(
        &mut self,
        log: &Log<S>,
        builder: chunk::Builder,
        tier: Tier,
        now: u64,
    ) -> Result<ChunkRef> {
        let count = builder.len() as u64;
        let json = builder.finish();
        let bytes = json.len() as u64;
        let id = log.nonce();
        self.writes.push(ChunkWrite {
            key: log.keys().chunk(&id),
            value: json,
            ttl: log.ttl().chunk(),
            fresh: true,
        });
        Ok(ChunkRef(
            id,
            count,
            0,
            count,
            bytes,
            tier,
            log.ttl().chunk_expiry(now),
        ))
    }

    /// Fetches the chunks at `indexes`, which this write rewrites: each must be there and
    /// whole, else the write fails and leaves them as they are.
    async fn fetch_strict<S: Store>(
        &self,
        log: &Log<S>,
        indexes: &[usize],
    ) -> Result<Vec<(usize, Fetched, Vec<std::ops::Range<usize>>)>> {
        let refs: Vec<ChunkRef> = indexes
            .iter()
            .filter_map(|i| self.head.chunks.get(*i).cloned())
            .collect();
        let fetched = log.fetch_chunks(&refs).await?;
        let mut out = Vec::with_capacity(refs.len());
        for ((i, c), f) in indexes.iter().zip(refs).zip(fetched) {
            let spans = f.as_ref().and_then(|f| f.live_spans(&c));
            let (Some(f), Some(spans)) = (f, spans) else {
                return Err(Error::Corrupt(format!(
                    "chunk {} of the session is missing or unreadable; left untouched",
                    log.keys().chunk(c.id())
                )));
            };
            out.push((*i, f, spans));
        }
        Ok(out)
    }

    /// Rewrites, with a fresh TTL, the chunks that would otherwise not outlive the head this
    /// commit writes. A chunk that cannot be read is left as it is (reads skip it).
    async fn refresh<S: Store>(&mut self, log: &Log<S>) -> Result<()> {
        let now = log.store().now_ms();
        let ttl = log.ttl();
        let due: Vec<ChunkRef> = self
            .head
            .chunks
            .iter()
            .filter(|c| ttl.refresh_due(c.expires(), now))
            .cloned()
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = due.iter().map(|c| log.keys().chunk(c.id())).collect();
        let stored = log.store().get_many(&keys).await?;
        for ((c, key), s) in due.iter().zip(keys).zip(stored) {
            let Some(value) = s
                .and_then(|s| String::from_utf8(s.data).ok())
                .filter(|text| crate::json::is_value(text))
            else {
                continue;
            };
            self.writes.push(ChunkWrite {
                key,
                value,
                ttl: ttl.chunk(),
                fresh: false,
            });
            if let Some(r) = self.head.chunks.iter_mut().find(|r| r.id() == c.id()) {
                r.6 = ttl.chunk_expiry(now);
            }
        }
        Ok(())
    }

    /// The plan to commit: retention, flush and refresh done, the operation recorded.
    async fn finish<S: Store, T>(mut self, log: &Log<S>, tag: &str, result: T) -> Result<Step<T>> {
        self.retain(log);
        self.flush(log).await?;
        self.refresh(log).await?;
        self.head.record_op(tag);
        self.head.touch(log.store().now_ms());
        Ok(Step::Write(Box::new(Plan {
            head: self.head,
            writes: self.writes,
            deletes: self.deletes,
            after: Vec::new(),
            result,
        })))
    }
}

/// Appends one batch.
pub struct Add {
    items: Vec<String>,
}

impl Add {
    /// An append of `items` (checked item texts).
    pub fn new(items: Vec<String>) -> Self {
        Add { items }
    }
}

impl<S: Store> Edit<S> for Add {
    type Output = ();

    async fn plan(
        &mut self,
        log: &Log<S>,
        current: Option<&Current>,
        tag: &str,
    ) -> Result<Step<()>> {
        let mut draft = Draft::on(log, current);
        draft.head.tail.extend(self.items.iter().cloned());
        draft.finish(log, tag, ()).await
    }

    fn reads_chunks(&self, log: &Log<S>, seen: &Head) -> bool {
        let mut next = seen.clone();
        next.tail.extend(self.items.iter().cloned());
        tiers::flush_due(&next).is_some() || needs_refresh(log, seen)
    }
}

/// Whether a commit now would rewrite chunks for their TTL.
fn needs_refresh<S: Store>(log: &Log<S>, head: &Head) -> bool {
    let now = log.store().now_ms();
    head.chunks
        .iter()
        .any(|c| log.ttl().refresh_due(c.expires(), now))
}

/// Removes the newest item. Entries that are not items (or chunks that cannot be read) at
/// the end are removed with it, as upstream does.
pub struct Pop;

impl<S: Store> Edit<S> for Pop {
    type Output = Option<String>;

    async fn plan(
        &mut self,
        log: &Log<S>,
        current: Option<&Current>,
        tag: &str,
    ) -> Result<Step<Option<String>>> {
        let Some(current) = current else {
            return Ok(Step::Done(None));
        };
        if current.head.is_empty() {
            return Ok(Step::Done(None));
        }
        let mut draft = Draft::on(log, Some(current));
        let popped = loop {
            if let Some(item) = draft.head.tail.pop() {
                break Some(item);
            }
            let Some(last) = draft.head.chunks.len().checked_sub(1) else {
                break None;
            };
            let Some(c) = draft.head.chunks.get(last).cloned() else {
                break None;
            };
            let fetched = log.fetch_chunks(std::slice::from_ref(&c)).await?;
            let Some(mut items) = fetched
                .into_iter()
                .next()
                .flatten()
                .and_then(|f| f.items(&c))
            else {
                // Unreadable: its items are gone as far as any reader can tell.
                draft.drop_chunk(log, last);
                continue;
            };
            // The newest readable item, and the readable ones before it back into the tail.
            while items.last().is_some_and(Option::is_none) {
                items.pop();
            }
            let Some(Some(item)) = items.pop() else {
                draft.drop_chunk(log, last);
                continue;
            };
            let readable: Vec<String> = items.iter().flatten().cloned().collect();
            let back = tiers::keep_count(&readable);
            // Entries pulled back: the newest `back` readable ones and anything unreadable
            // among them.
            let mut pulled = 0;
            let mut seen = 0;
            for e in items.iter().rev() {
                if seen == back {
                    break;
                }
                pulled += 1;
                if e.is_some() {
                    seen += 1;
                }
            }
            let keep_live = items.len() - pulled;
            draft.head.tail = readable
                .get(readable.len() - back..)
                .unwrap_or_default()
                .to_vec();
            if keep_live == 0 {
                draft.drop_chunk(log, last);
            } else if let Some(r) = draft.head.chunks.get_mut(last) {
                r.3 = keep_live as u64;
            }
            break Some(item);
        };
        if popped.is_none() && draft.head.chunks.len() == current.head.chunks.len() {
            return Ok(Step::Done(None));
        }
        draft.finish(log, tag, popped).await
    }

    fn reads_chunks(&self, log: &Log<S>, seen: &Head) -> bool {
        seen.tail.is_empty() || needs_refresh(log, seen)
    }
}

/// Empties the session: an empty head (a clear must not delete the head: on Redis an etag
/// given for a missing key is ignored, so a writer holding an old etag could bring the cleared
/// session back), then the old chunks are deleted.
pub struct Clear;

impl<S: Store> Edit<S> for Clear {
    type Output = ();

    async fn plan(
        &mut self,
        log: &Log<S>,
        current: Option<&Current>,
        tag: &str,
    ) -> Result<Step<()>> {
        let Some(current) = current else {
            return Ok(Step::Done(()));
        };
        let old = &current.head;
        let mut head = Head::new(old.generation.clone());
        head.seq = old.seq.saturating_add(1);
        head.ops = old.ops.clone();
        head.record_op(tag);
        Ok(Step::Write(Box::new(Plan {
            head,
            writes: Vec::new(),
            deletes: old
                .trash
                .iter()
                .filter(|k| !log.is_gone(k))
                .cloned()
                .collect(),
            after: old
                .chunks
                .iter()
                .map(|c| log.keys().chunk(c.id()))
                .collect(),
            result: (),
        })))
    }
}

/// Replaces the items from a position (all of them, or a suffix) with new ones, optionally
/// only if the session is at an expected version.
pub struct Replace {
    start: Option<u64>,
    items: Vec<String>,
    expected: Option<String>,
}

impl Replace {
    /// Replaces the items from `start` (all if `None`) with `items`, if the session is at
    /// version `expected` (when given).
    pub fn new(start: Option<u64>, items: Vec<String>, expected: Option<String>) -> Self {
        Replace {
            start,
            items,
            expected,
        }
    }
}

impl<S: Store> Edit<S> for Replace {
    type Output = ();

    async fn plan(
        &mut self,
        log: &Log<S>,
        current: Option<&Current>,
        tag: &str,
    ) -> Result<Step<()>> {
        if let Some(expected) = &self.expected {
            let same = match current {
                None => expected == "0",
                Some(c) => c.head.is_version(expected),
            };
            if !same {
                return Err(Error::Changed);
            }
        }
        let len = current.map_or(0, |c| c.head.len());
        let start = self.start.unwrap_or(0);
        if start > len {
            return Err(Error::invalid(format!(
                "start {start} is past the end of the session ({len} items)"
            )));
        }
        let mut draft = Draft::on(log, current);
        // Keep the first `start` items: whole chunks, a prefix of one, the tail's start.
        let mut position = 0u64;
        let mut i = 0;
        while i < draft.head.chunks.len() {
            let live = draft.head.chunks.get(i).map_or(0, ChunkRef::live);
            if position + live <= start {
                position += live;
                i += 1;
            } else if position < start {
                if let Some(c) = draft.head.chunks.get_mut(i) {
                    c.3 = start - position;
                }
                position = start;
                i += 1;
            } else {
                draft.drop_chunk(log, i);
            }
        }
        let in_tail = usize::try_from(start - position).unwrap_or(usize::MAX);
        draft.head.tail.truncate(in_tail);
        draft.head.tail.extend(self.items.iter().cloned());
        draft.finish(log, tag, ()).await
    }

    fn reads_chunks(&self, _log: &Log<S>, _seen: &Head) -> bool {
        // The version check must see the head as it is.
        true
    }
}

/// The format-2 head `head` with `items` (a migrated session's, oldest first) laid out in its
/// tail and chunks, and the chunks to write.
pub async fn migrated<S: Store>(
    log: &Log<S>,
    items: Vec<String>,
    mut head: Head,
) -> Result<(Head, Vec<ChunkWrite>)> {
    head.tail = items;
    let mut draft = Draft {
        head,
        writes: Vec::new(),
        deletes: Vec::new(),
    };
    draft.flush(log).await?;
    Ok((draft.head, draft.writes))
}

/// Every write, as one type: the commit loop is compiled once, not once per kind of write
/// (the component's size matters to the hosts that load it).
pub enum AnyEdit {
    /// An append.
    Add(Add),
    /// A pop.
    Pop(Pop),
    /// A clear.
    Clear(Clear),
    /// A replace.
    Replace(Replace),
}

/// What a write returns.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Nothing (an append, a clear, a replace).
    Done,
    /// A pop's item.
    Popped(Option<String>),
}

fn map_step<T, U>(step: Step<T>, f: impl FnOnce(T) -> U) -> Step<U> {
    match step {
        Step::Done(t) => Step::Done(f(t)),
        Step::Write(plan) => {
            let Plan {
                head,
                writes,
                deletes,
                after,
                result,
            } = *plan;
            Step::Write(Box::new(Plan {
                head,
                writes,
                deletes,
                after,
                result: f(result),
            }))
        }
    }
}

impl<S: Store> Edit<S> for AnyEdit {
    type Output = Written;

    async fn plan(
        &mut self,
        log: &Log<S>,
        current: Option<&Current>,
        tag: &str,
    ) -> Result<Step<Written>> {
        Ok(match self {
            AnyEdit::Add(e) => map_step(e.plan(log, current, tag).await?, |()| Written::Done),
            AnyEdit::Pop(e) => map_step(e.plan(log, current, tag).await?, Written::Popped),
            AnyEdit::Clear(e) => map_step(e.plan(log, current, tag).await?, |()| Written::Done),
            AnyEdit::Replace(e) => map_step(e.plan(log, current, tag).await?, |()| Written::Done),
        })
    }

    fn reads_chunks(&self, log: &Log<S>, seen: &Head) -> bool {
        match self {
            AnyEdit::Add(e) => Edit::<S>::reads_chunks(e, log, seen),
            AnyEdit::Pop(e) => Edit::<S>::reads_chunks(e, log, seen),
            AnyEdit::Clear(e) => Edit::<S>::reads_chunks(e, log, seen),
            AnyEdit::Replace(e) => Edit::<S>::reads_chunks(e, log, seen),
        }
    }
}
