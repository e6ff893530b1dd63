//! The state store behind the test server: daprd's `state.in-memory` semantics.
//!
//! Etags are fresh UUID-like strings on every write; a first-write without an etag fails if
//! the key exists; an etag given for a missing key is a mismatch; transactions check every
//! etag before applying anything; TTL expiry is checked on every read.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The stored bytes (what GET returns).
    pub data: Vec<u8>,
    /// Current etag.
    pub etag: String,
    /// When the value expires, if it has a TTL.
    pub expire: Option<SystemTime>,
}

/// Why a conditional write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtagMismatch(pub String);

/// Concurrency mode of a write, as Dapr names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Concurrency {
    /// `first-write`.
    FirstWrite,
    /// `last-write` or unspecified.
    #[default]
    LastWrite,
}

/// One operation of a transaction, already decoded.
#[derive(Debug, Clone)]
pub enum Op {
    /// Upsert of a key.
    Set {
        /// Key.
        key: String,
        /// Serialized value.
        data: Vec<u8>,
        /// Etag to check.
        etag: Option<String>,
        /// Concurrency mode.
        concurrency: Concurrency,
        /// TTL in seconds (0 = none).
        ttl: i64,
    },
    /// Delete of a key.
    Delete {
        /// Key.
        key: String,
        /// Etag to check.
        etag: Option<String>,
        /// Concurrency mode.
        concurrency: Concurrency,
    },
}

/// An in-memory state store.
#[derive(Debug, Default)]
pub struct Store {
    items: BTreeMap<String, Item>,
}

static ETAG_COUNTER: AtomicU64 = AtomicU64::new(1);

fn new_etag() -> String {
    let n = ETAG_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        nanos,
        n & 0xffff,
        (n >> 16) & 0xfff,
        (n >> 28) & 0xfff,
        n
    )
}

impl Store {
    fn expire(&mut self, key: &str, now: SystemTime) {
        if self
            .items
            .get(key)
            .and_then(|i| i.expire)
            .is_some_and(|e| e <= now)
        {
            self.items.remove(key);
        }
    }

    /// Removes every expired item.
    pub fn sweep(&mut self, now: SystemTime) {
        self.items.retain(|_, i| i.expire.is_none_or(|e| e > now));
    }

    /// The live item at `key`.
    pub fn get(&mut self, key: &str, now: SystemTime) -> Option<&Item> {
        self.expire(key, now);
        self.items.get(key)
    }

    fn validate(
        &self,
        key: &str,
        etag: Option<&str>,
        concurrency: Concurrency,
    ) -> Result<(), EtagMismatch> {
        let etag = etag.filter(|e| !e.is_empty());
        match (etag, self.items.get(key)) {
            (None, Some(_)) if concurrency == Concurrency::FirstWrite => Err(EtagMismatch(
                "item already exists and no etag was passed".into(),
            )),
            (None, _) => Ok(()),
            (Some(_), None) => Err(EtagMismatch(format!(
                "state not exist or expired for key={key}"
            ))),
            (Some(want), Some(item)) if item.etag != want => Err(EtagMismatch(format!(
                "state etag not match for key={key}: current={}, expect={want}",
                item.etag
            ))),
            (Some(_), Some(_)) => Ok(()),
        }
    }

    /// A checked write.
    pub fn set(
        &mut self,
        key: &str,
        data: Vec<u8>,
        etag: Option<&str>,
        concurrency: Concurrency,
        ttl: i64,
        now: SystemTime,
    ) -> Result<(), EtagMismatch> {
        self.expire(key, now);
        self.validate(key, etag, concurrency)?;
        self.put(key, data, ttl, now);
        Ok(())
    }

    /// An unchecked write (tests use it to plant data).
    pub fn put(&mut self, key: &str, data: Vec<u8>, ttl: i64, now: SystemTime) {
        let expire = (ttl > 0).then(|| now + Duration::from_secs(ttl.unsigned_abs()));
        self.items.insert(
            key.to_string(),
            Item {
                data,
                etag: new_etag(),
                expire,
            },
        );
    }

    /// A checked delete; deleting a missing key without an etag succeeds.
    pub fn delete(
        &mut self,
        key: &str,
        etag: Option<&str>,
        concurrency: Concurrency,
        now: SystemTime,
    ) -> Result<(), EtagMismatch> {
        self.expire(key, now);
        self.validate(key, etag, concurrency)?;
        self.items.remove(key);
        Ok(())
    }

    /// Applies `ops` atomically: every etag is checked before anything changes.
    pub fn transact(&mut self, ops: Vec<Op>, now: SystemTime) -> Result<(), EtagMismatch> {
        for op in &ops {
            let key = match op {
                Op::Set { key, .. } | Op::Delete { key, .. } => key,
            };
            self.expire(key, now);
        }
        for op in &ops {
            match op {
                Op::Set {
                    key,
                    etag,
                    concurrency,
                    ..
                }
                | Op::Delete {
                    key,
                    etag,
                    concurrency,
                } => self.validate(key, etag.as_deref(), *concurrency)?,
            }
        }
        for op in ops {
            match op {
                Op::Set { key, data, ttl, .. } => self.put(&key, data, ttl, now),
                Op::Delete { key, .. } => {
                    self.items.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// Every live key, sorted.
    pub fn keys(&mut self, now: SystemTime) -> Vec<String> {
        self.sweep(now);
        self.items.keys().cloned().collect()
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.items.clear();
    }
}
