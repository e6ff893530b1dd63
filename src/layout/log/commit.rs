//! The commit protocol: every write plans a new head on the current one and commits it under
//! the current head's etag, with the chunks it writes and the keys it deletes.
//!
//! - **Lost races** (the etag moved) are retried on the new head, with backoff.
//! - **Ambiguous failures** (a timeout, a broken connection: the commit may have landed) are
//!   resolved by the head itself: each attempt records `op.attempt` in the head, and the next
//!   read tells whether one landed. An operation is never applied twice, and its result is
//!   the one the landed attempt planned.
//! - **Atomicity**: where the store has transactions, the chunks, the deletes and the head go
//!   in one transaction; elsewhere the chunks go first and the head last, so a head never
//!   names a chunk that is not there. Chunks a commit stops referencing are deleted once it
//!   landed (a reader still holding the old head starts over), and listed in the new head's
//!   trash for the next writer in case that fails; a commit's own deletes only ever name such
//!   keys, which no head can reference again, so a transaction that a store applies in part
//!   (Redis has no rollback) loses nothing.
//! - **Bets**: an instance that committed last on a store whose etags count writes (Redis)
//!   knows the next etag, and commits without reading first; a wrong bet costs a read.

use super::head::Head;
use super::{Current, Found, Log, MAX_REQUEST_BYTES};
use crate::dapr::{DaprError, TxOp, Write};
use crate::error::{Error, Result};
use crate::join::join2;
use crate::retry::Backoff;
use crate::store::Store;

/// Commits in a row whose outcome is unknown (timeouts, broken connections) before an
/// operation reports the failure instead of trying again.
const MAX_UNCONFIRMED: u32 = 3;

/// Largest payload committed in one transaction; larger commits write their chunks first.
const MAX_TRANSACTION_BYTES: usize = MAX_REQUEST_BYTES / 2;

/// A chunk value to write.
#[derive(Debug, Clone)]
pub struct ChunkWrite {
    /// Its key.
    pub key: String,
    /// Its JSON.
    pub value: String,
    /// Its TTL.
    pub ttl: Option<u32>,
    /// Whether this attempt created the key (else it rewrites a referenced chunk).
    pub fresh: bool,
}

/// One attempt's plan: commit `head`, writing `writes` and deleting `deletes` with it.
#[derive(Debug)]
pub struct Plan<T> {
    /// The head to commit.
    pub head: Head,
    /// Chunks to write.
    pub writes: Vec<ChunkWrite>,
    /// Keys no head references any more, deleted with the commit.
    pub deletes: Vec<String>,
    /// Keys to delete once the commit landed (what a clear removed).
    pub after: Vec<String>,
    /// What the operation returns if this attempt lands.
    pub result: T,
}

/// What an edit decided.
#[derive(Debug)]
pub enum Step<T> {
    /// Commit this plan.
    Write(Box<Plan<T>>),
    /// Nothing to write: the operation's result.
    Done(T),
}

/// What the run loop keeps of an attempt that may land.
struct Attempt<T> {
    result: Option<T>,
    fresh: Vec<String>,
    after: Vec<String>,
}

/// An operation on the head, planned once per attempt on the head as it is then.
#[allow(async_fn_in_trait)]
pub trait Edit<S: Store> {
    /// What the operation returns.
    type Output;

    /// Plans the attempt tagged `tag` on `current` (`None`: no session yet).
    async fn plan(
        &mut self,
        log: &Log<S>,
        current: Option<&Current>,
        tag: &str,
    ) -> Result<Step<Self::Output>>;

    /// Whether planning on `seen` reads chunks: then the head is read first, never bet on.
    fn reads_chunks(&self, _log: &Log<S>, _seen: &Head) -> bool {
        false
    }
}

impl<S: Store> Log<S> {
    /// Plans and commits `edit` until it lands, then returns what the landed attempt planned.
    pub async fn run<E: Edit<S>>(&self, edit: &mut E) -> Result<E::Output> {
        let op = self.nonce();
        let mut bet = self.bet().filter(|c| !edit.reads_chunks(self, &c.head));
        // An instance that has seen nothing (a serverless host runs one per request) asks the
        // sidecar about the store while it reads the head.
        let mut first_read = None;
        if self.known_features().is_none() && bet.is_none() {
            let (features, read) = join2(self.features(), self.read_head()).await;
            features?;
            first_read = Some(read?);
        } else {
            self.features().await?;
        }
        let mut backoff = Backoff::new();
        // Per attempt: what it would return, the keys it created, and those to delete once
        // it landed.
        let mut attempts: Vec<Attempt<E::Output>> = Vec::new();
        let mut failed_keys: Vec<String> = Vec::new();
        let mut ambiguous = false;
        // Ambiguous failures in a row: the sidecar may be applying writes it cannot confirm.
        let mut unconfirmed = 0u32;
        let mut tidied = false;
        loop {
            let betting = bet.is_some();
            let found = match (bet.take(), first_read.take()) {
                (Some(c), _) => Found::Current(c),
                (None, Some(read)) => read,
                (None, None) => self.read_head().await?,
            };
            let current = match found {
                Found::Absent => None,
                Found::Legacy(old) => {
                    if !backoff.start_attempt() {
                        return Err(Error::Conflict(backoff.attempts()));
                    }
                    self.migrate(old).await?;
                    continue;
                }
                Found::Current(c) => {
                    if c.head.legacy.is_some() && !tidied {
                        tidied = true;
                        self.finish_migration(&c).await;
                        continue;
                    }
                    Some(c)
                }
            };
            if let Some(landed) = current.as_ref().and_then(|c| c.head.attempt_of(&op)) {
                let mut stale = std::mem::take(&mut failed_keys);
                let mut result = None;
                for (i, attempt) in attempts.into_iter().enumerate() {
                    if i == landed {
                        stale.extend(attempt.after);
                        result = attempt.result;
                    } else {
                        stale.extend(attempt.fresh);
                    }
                }
                self.delete_unreferenced(&stale).await;
                return result.ok_or_else(|| Error::internal("the landed attempt is unknown"));
            }
            if !backoff.start_attempt() {
                if !ambiguous {
                    self.store.delete_many(&failed_keys).await;
                }
                return Err(Error::Conflict(backoff.attempts()));
            }
            let tag = format!("{op}.{}", attempts.len());
            let plan = match edit.plan(self, current.as_ref(), &tag).await {
                Ok(Step::Write(plan)) => *plan,
                Ok(Step::Done(result)) => {
                    self.store.delete_many(&failed_keys).await;
                    return Ok(result);
                }
                // A chunk the plan needed is gone because the head moved on (the commit after
                // the one that dropped it deleted it): a lost race, not corruption.
                Err(Error::Corrupt(_)) if self.moved(current.as_ref()).await? => {
                    backoff.pause(&self.store).await;
                    continue;
                }
                Err(e) => {
                    if !ambiguous {
                        self.store.delete_many(&failed_keys).await;
                    }
                    return Err(e);
                }
            };
            let Plan {
                head,
                writes,
                deletes,
                mut after,
                result,
            } = plan;
            // What this commit stops referencing is deleted as soon as it lands (and listed in
            // its head, for the next writer, in case that fails).
            after.extend(head.trash.iter().cloned());
            let fresh: Vec<String> = writes
                .iter()
                .filter(|w| w.fresh)
                .map(|w| w.key.clone())
                .collect();
            match self.commit(head, current.as_ref(), &writes, &deletes).await {
                Ok(()) => {
                    let mut leftover = std::mem::take(&mut failed_keys);
                    leftover.extend(after);
                    self.delete_unreferenced(&leftover).await;
                    return Ok(result);
                }
                Err(e) => {
                    if e.is_ambiguous() {
                        ambiguous = true;
                        unconfirmed += 1;
                        attempts.push(Attempt {
                            result: Some(result),
                            fresh,
                            after,
                        });
                    } else {
                        unconfirmed = 0;
                        // Nothing of it is referenced; on Redis some of it may be written.
                        failed_keys.extend(fresh);
                        attempts.push(Attempt {
                            result: None,
                            fresh: Vec::new(),
                            after: Vec::new(),
                        });
                    }
                    if betting && !e.is_ambiguous() {
                        // The bet on the etag lost: read the head, without backing off.
                        self.forget();
                        continue;
                    }
                    if unconfirmed >= MAX_UNCONFIRMED {
                        // Report what keeps happening, not a conflict: an attempt may still
                        // land (the next read of the head tells).
                        return Err(e.into());
                    }
                    let raced =
                        e.is_ambiguous() || e.is_conflict() || self.moved(current.as_ref()).await?;
                    if !raced {
                        // The head did not move: no race, a failure.
                        if !ambiguous {
                            self.store.delete_many(&failed_keys).await;
                        }
                        return Err(e.into());
                    }
                    backoff.pause(&self.store).await;
                }
            }
        }
    }

    /// Writes `writes`, deletes `deletes` and commits `head` over `current` (or creates it),
    /// in one transaction when the store has them and it fits one request.
    pub async fn commit(
        &self,
        mut head: Head,
        current: Option<&Current>,
        writes: &[ChunkWrite],
        deletes: &[String],
    ) -> std::result::Result<(), DaprError> {
        let head_key = self.keys().head();
        let etag = current.and_then(|c| c.etag.as_deref());
        let transactional = self.known_features().is_some_and(|f| f.transactional);
        let payload: usize = writes
            .iter()
            .map(|w| w.key.len() + w.value.len() + 160)
            .sum::<usize>()
            + deletes.iter().map(|k| k.len() + 96).sum::<usize>();
        // A head is created by a plain save only: inside a transaction, some stores (Redis)
        // do not enforce first-write for a key without an etag.
        if transactional
            && etag.is_some()
            && (!writes.is_empty() || !deletes.is_empty())
            && payload < MAX_TRANSACTION_BYTES
        {
            let value = head.to_json();
            let mut ops: Vec<TxOp<'_>> = writes
                .iter()
                .map(|w| TxOp::Upsert(Write::put(&w.key, &w.value, w.ttl)))
                .collect();
            ops.extend(deletes.iter().map(|key| TxOp::Delete { key, etag: None }));
            ops.push(TxOp::Upsert(Write::guarded(
                &head_key,
                &value,
                etag,
                self.ttl().head(),
            )));
            self.store.transact(&ops).await?;
            self.committed(head, etag);
            return Ok(());
        }
        let (saved, undeleted) =
            join2(self.save_chunks(writes), self.store.delete_many(deletes)).await;
        saved?;
        head.trash.extend(undeleted);
        let value = head.to_json();
        self.store
            .save(&[Write::guarded(&head_key, &value, etag, self.ttl().head())])
            .await?;
        self.committed(head, etag);
        Ok(())
    }

    /// Saves chunk values in requests of bounded size: transactions one after the other where
    /// the store has them (daprd applies a multi-key save key by key, in parallel, which
    /// SQLite fails under load), parallel saves elsewhere.
    async fn save_chunks(&self, writes: &[ChunkWrite]) -> std::result::Result<(), DaprError> {
        let mut groups: Vec<Vec<Write<'_>>> = Vec::new();
        let mut size = 0usize;
        for w in writes {
            let len = w.key.len() + w.value.len() + 160;
            if groups.is_empty() || size + len > MAX_REQUEST_BYTES {
                groups.push(Vec::new());
                size = 0;
            }
            size += len;
            if let Some(g) = groups.last_mut() {
                g.push(Write::put(&w.key, &w.value, w.ttl));
            }
        }
        if self.known_features().is_some_and(|f| f.transactional) {
            for g in &groups {
                let ops: Vec<TxOp<'_>> = g.iter().copied().map(TxOp::Upsert).collect();
                self.store.transact(&ops).await?;
            }
            return Ok(());
        }
        crate::join::try_join_all(groups.iter().map(|g| self.store.save(g)).collect()).await?;
        Ok(())
    }

    /// After a commit over `etag`: the new head, and its etag where the store's etags count
    /// writes (a created head starts at version 1).
    fn committed(&self, head: Head, etag: Option<&str>) {
        let counting = self.known_features().is_some_and(|f| f.counting_etags);
        let next = match etag {
            None => Some(1),
            Some(e) => e.parse::<u64>().ok().and_then(|n| n.checked_add(1)),
        }
        .filter(|_| counting)
        .map(|n| n.to_string());
        self.remember(Current {
            head: std::rc::Rc::new(head),
            etag: next,
        });
    }
}
