//! Test tooling for the native unit tests of the storage protocols (compiled only for
//! tests): an in-memory [`Store`] that answers like daprd's stores do (etags, first-write,
//! transactions, TTL on a virtual clock, Redis's quirks when asked), with hooks that see every
//! request and can fail it, apply it and then fail, or run another writer first; and an
//! executor for futures that never wait.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use crate::dapr::{Concurrency, DaprError, Stored, TxOp, Write};
use crate::error::Result;
use crate::store::{Features, Store};

/// Runs a future that never waits (everything here answers at once) to completion.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a future waited on something the in-memory store never wakes"),
    }
}

/// How the store behaves where Dapr's stores differ.
#[derive(Debug, Clone, Copy)]
pub struct Flavor {
    /// Multi-key transactions.
    pub transactional: bool,
    /// Redis: etags count writes, an etag given for a missing key is ignored, a transaction
    /// applies what it can (no rollback), a first-write create of an existing key is a 500.
    pub redis: bool,
}

impl Flavor {
    /// daprd with `state.redis`.
    pub const REDIS: Flavor = Flavor {
        transactional: true,
        redis: true,
    };
    /// daprd with `state.sqlite` / `state.postgresql` (random etags, atomic transactions).
    pub const SQL: Flavor = Flavor {
        transactional: true,
        redis: false,
    };
    /// A store without transactions.
    pub const PLAIN: Flavor = Flavor {
        transactional: false,
        redis: false,
    };
}

/// A request as the hooks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A read of a key.
    Get(String),
    /// A save of keys.
    Save(Vec<String>),
    /// A transaction touching keys.
    Transact(Vec<String>),
    /// A delete of a key.
    Delete(String),
}

impl Request {
    /// Whether the request writes `key`.
    pub fn writes(&self, key: &str) -> bool {
        match self {
            Request::Save(keys) | Request::Transact(keys) => keys.iter().any(|k| k == key),
            Request::Delete(k) => k == key,
            Request::Get(_) => false,
        }
    }
}

/// What a hook decides about a request.
pub enum Action {
    /// Answer it normally.
    Proceed,
    /// Fail it without applying it.
    Fail(DaprError),
    /// Apply it, then report this failure (a lost answer).
    ApplyThenFail(DaprError),
}

type Hook = Box<dyn FnMut(&Request, &MemStore) -> Action>;

#[derive(Debug, Clone)]
struct Entry {
    data: Vec<u8>,
    etag: String,
    version: u64,
    expires: Option<u64>,
}

struct State {
    flavor: Flavor,
    data: BTreeMap<String, Entry>,
    now_ms: u64,
    rng: u64,
    etags: u64,
    requests: Vec<Request>,
}

/// An in-memory state store shared by every clone (one per simulated instance).
#[derive(Clone)]
pub struct MemStore {
    state: Rc<RefCell<State>>,
    hooks: Rc<RefCell<Vec<Hook>>>,
}

impl MemStore {
    /// An empty store of `flavor`, its clock at a fixed time.
    pub fn new(flavor: Flavor) -> Self {
        MemStore {
            state: Rc::new(RefCell::new(State {
                flavor,
                data: BTreeMap::new(),
                now_ms: 1_700_000_000_000,
                rng: 0x9e37_79b9_7f4a_7c15,
                etags: 0,
                requests: Vec::new(),
            })),
            hooks: Rc::new(RefCell::new(Vec::new())),
        }
    }

    /// Adds a hook that sees every request (hooks do not see requests made while one runs).
    pub fn hook(&self, hook: impl FnMut(&Request, &MemStore) -> Action + 'static) {
        self.hooks.borrow_mut().push(Box::new(hook));
    }

    /// Removes every hook.
    pub fn unhook(&self) {
        self.hooks.borrow_mut().clear();
    }

    /// Moves the clock on.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let mut s = self.state.borrow_mut();
        s.now_ms = s.now_ms.saturating_add(ms);
    }

    /// The keys stored now, sorted.
    pub fn keys(&self) -> Vec<String> {
        let s = self.state.borrow();
        s.data
            .iter()
            .filter(|(_, e)| e.expires.is_none_or(|x| x > s.now_ms))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The bytes stored under `key`, if any.
    pub fn raw(&self, key: &str) -> Option<Vec<u8>> {
        let s = self.state.borrow();
        s.data
            .get(key)
            .filter(|e| e.expires.is_none_or(|x| x > s.now_ms))
            .map(|e| e.data.clone())
    }

    /// Stores `data` under `key` directly, as another program would.
    pub fn put_raw(&self, key: &str, data: &[u8]) {
        let mut s = self.state.borrow_mut();
        let etag = s.next_etag(key);
        let version = etag.1;
        s.data.insert(
            key.to_string(),
            Entry {
                data: data.to_vec(),
                etag: etag.0,
                version,
                expires: None,
            },
        );
    }

    /// Deletes `key` directly.
    pub fn remove_raw(&self, key: &str) {
        self.state.borrow_mut().data.remove(key);
    }

    /// When `key` expires, if it has a TTL.
    pub fn expiry(&self, key: &str) -> Option<u64> {
        self.state.borrow().data.get(key).and_then(|e| e.expires)
    }

    /// Total bytes stored (values and keys).
    pub fn bytes(&self) -> usize {
        let keys = self.keys();
        keys.iter()
            .map(|k| k.len() + self.raw(k).map_or(0, |v| v.len()))
            .sum()
    }

    /// Every request made so far.
    pub fn requests(&self) -> Vec<Request> {
        self.state.borrow().requests.clone()
    }

    /// Forgets the requests made so far.
    pub fn clear_requests(&self) {
        self.state.borrow_mut().requests.clear();
    }

    fn decide(&self, request: &Request) -> Action {
        self.state.borrow_mut().requests.push(request.clone());
        // Hooks run without the hook list borrowed: what they do goes unhooked.
        let mut hooks = std::mem::take(&mut *self.hooks.borrow_mut());
        let mut action = Action::Proceed;
        for hook in hooks.iter_mut() {
            match hook(request, self) {
                Action::Proceed => {}
                other => {
                    action = other;
                    break;
                }
            }
        }
        let mut mine = self.hooks.borrow_mut();
        hooks.append(&mut mine);
        *mine = hooks;
        action
    }

    /// Runs `apply` under the hooks' decision.
    fn with_hooks<T>(
        &self,
        request: Request,
        apply: impl FnOnce(&mut State) -> Result<T, DaprError>,
    ) -> Result<T, DaprError> {
        match self.decide(&request) {
            Action::Proceed => apply(&mut self.state.borrow_mut()),
            Action::Fail(e) => Err(e),
            Action::ApplyThenFail(e) => {
                let _ = apply(&mut self.state.borrow_mut());
                Err(e)
            }
        }
    }
}

fn conflict(what: &str) -> DaprError {
    DaprError::Status {
        status: 409,
        code: "ERR_STATE_SAVE".into(),
        message: format!("possible etag mismatch: {what}"),
    }
}

impl State {
    fn live(&self, key: &str) -> Option<&Entry> {
        self.data
            .get(key)
            .filter(|e| e.expires.is_none_or(|x| x > self.now_ms))
    }

    fn next_etag(&mut self, key: &str) -> (String, u64) {
        let version = self.live(key).map_or(0, |e| e.version) + 1;
        if self.flavor.redis {
            (version.to_string(), version)
        } else {
            self.etags += 1;
            (format!("etag-{:08x}", self.etags), version)
        }
    }

    /// Whether `w` may be applied now.
    fn check(&self, w: &Write<'_>) -> Result<(), DaprError> {
        let current = self.live(w.key);
        match (w.etag, current) {
            (Some(_), None) if self.flavor.redis => Ok(()),
            (Some(_), None) => Err(conflict("no such key")),
            (Some(e), Some(c)) if e != c.etag => Err(conflict(w.key)),
            (None, Some(_)) if w.concurrency == Concurrency::FirstWrite => {
                if self.flavor.redis {
                    Err(DaprError::Status {
                        status: 500,
                        code: "ERR_STATE_SAVE".into(),
                        message: "failed to set key: first-write".into(),
                    })
                } else {
                    Err(conflict("first-write on an existing key"))
                }
            }
            _ => Ok(()),
        }
    }

    fn apply(&mut self, w: &Write<'_>) {
        let (etag, version) = self.next_etag(w.key);
        let expires = w.ttl.map(|t| self.now_ms + u64::from(t) * 1000);
        self.data.insert(
            w.key.to_string(),
            Entry {
                data: w.value.as_bytes().to_vec(),
                etag,
                version,
                expires,
            },
        );
    }
}

impl Store for MemStore {
    async fn get(&self, key: &str) -> Result<Option<Stored>, DaprError> {
        self.with_hooks(Request::Get(key.to_string()), |s| {
            Ok(s.live(key).map(|e| Stored {
                data: e.data.clone(),
                etag: Some(e.etag.clone()),
            }))
        })
    }

    async fn save(&self, writes: &[Write<'_>]) -> Result<(), DaprError> {
        let keys = writes.iter().map(|w| w.key.to_string()).collect();
        self.with_hooks(Request::Save(keys), |s| {
            // Key by key, as daprd's bulk save: what passes is applied.
            let mut failed = None;
            for w in writes {
                match s.check(w) {
                    Ok(()) => s.apply(w),
                    Err(e) => failed = Some(e),
                }
            }
            failed.map_or(Ok(()), Err)
        })
    }

    async fn transact(&self, ops: &[TxOp<'_>]) -> Result<(), DaprError> {
        let keys = ops
            .iter()
            .map(|op| match op {
                TxOp::Upsert(w) => w.key.to_string(),
                TxOp::Delete { key, .. } => key.to_string(),
            })
            .collect();
        self.with_hooks(Request::Transact(keys), |s| {
            if !s.flavor.transactional {
                return Err(DaprError::Status {
                    status: 500,
                    code: "ERR_STATE_STORE_NOT_SUPPORTED".into(),
                    message: "no transactions".into(),
                });
            }
            let check = |s: &State, op: &TxOp<'_>| match op {
                TxOp::Upsert(w) => s.check(w),
                TxOp::Delete { key, etag } => match (etag, s.live(key)) {
                    (Some(e), Some(c)) if *e != c.etag => Err(conflict(key)),
                    _ => Ok(()),
                },
            };
            let failed = ops.iter().any(|op| check(s, op).is_err());
            if failed && !s.flavor.redis {
                return Err(DaprError::Status {
                    status: 500,
                    code: "ERR_STATE_TRANSACTION".into(),
                    message: "possible etag mismatch".into(),
                });
            }
            for op in ops {
                if check(s, op).is_err() {
                    continue;
                }
                match op {
                    TxOp::Upsert(w) => s.apply(w),
                    TxOp::Delete { key, .. } => {
                        s.data.remove(*key);
                    }
                }
            }
            if failed {
                Err(DaprError::Status {
                    status: 500,
                    code: "ERR_STATE_TRANSACTION".into(),
                    message: "possible etag mismatch (no rollback)".into(),
                })
            } else {
                Ok(())
            }
        })
    }

    async fn delete(&self, key: &str, etag: Option<&str>) -> Result<(), DaprError> {
        self.with_hooks(Request::Delete(key.to_string()), |s| {
            match (etag, s.live(key)) {
                (Some(e), Some(c)) if e != c.etag => return Err(conflict(key)),
                (Some(_), None) if !s.flavor.redis => return Err(conflict(key)),
                _ => {}
            }
            s.data.remove(key);
            Ok(())
        })
    }

    async fn features(&self) -> Result<Features> {
        let flavor = self.state.borrow().flavor;
        Ok(Features {
            transactional: flavor.transactional,
            counting_etags: flavor.redis,
        })
    }

    fn now_ms(&self) -> u64 {
        self.state.borrow().now_ms
    }

    fn random(&self, buf: &mut [u8]) {
        let mut s = self.state.borrow_mut();
        for b in buf {
            // xorshift64
            s.rng ^= s.rng << 13;
            s.rng ^= s.rng >> 7;
            s.rng ^= s.rng << 17;
            *b = (s.rng >> 24) as u8;
        }
    }

    async fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}
