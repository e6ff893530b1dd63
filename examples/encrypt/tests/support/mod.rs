//! Test doubles: an in-memory session to wrap (versioned, counting calls, with a simulated
//! second writer) and a platform with a settable clock and distinct IVs.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};

use dapr_session_encrypt::config::Settings;
use dapr_session_encrypt::error::{Error, Result};
use dapr_session_encrypt::inner::{Inner, Metadata, Snapshot};
use dapr_session_encrypt::key::MasterKey;
use dapr_session_encrypt::platform::Platform;
use dapr_session_encrypt::session::EncryptedSession;

/// A session held in memory: items in order, a version bumped by every write.
#[derive(Default)]
pub struct Memory {
    items: RefCell<Vec<String>>,
    version: Cell<u64>,
    /// Calls made, by operation name.
    pub calls: RefCell<Vec<String>>,
    /// How many of the next conditional writes find that another writer appended first.
    pub interfere: Cell<u32>,
}

impl Memory {
    /// A session already holding `items`.
    pub fn with(items: &[String]) -> Self {
        let m = Self::default();
        *m.items.borrow_mut() = items.to_vec();
        m
    }

    /// The stored items.
    pub fn items(&self) -> Vec<String> {
        self.items.borrow().clone()
    }

    /// Stores `items` after the others, as another writer would.
    pub fn push(&self, items: &[String]) {
        self.items.borrow_mut().extend(items.iter().cloned());
        self.bump();
    }

    /// Names of the calls made, then forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    fn version(&self) -> String {
        format!("v{}", self.version.get())
    }

    fn bump(&self) {
        self.version.set(self.version.get() + 1);
    }

    fn log(&self, call: String) {
        self.calls.borrow_mut().push(call);
    }

    /// A conditional write's check, after the simulated other writer had its turn.
    fn check(&self, expected: Option<&str>) -> Result<()> {
        if self.interfere.get() > 0 {
            self.interfere.set(self.interfere.get() - 1);
            self.push(&[r#"{"role":"user","content":"another writer"}"#.to_string()]);
        }
        match expected {
            Some(v) if v != self.version() => Err(Error::Changed),
            _ => Ok(()),
        }
    }
}

impl Inner for &Memory {
    fn get_snapshot(&self, limit: Option<u32>) -> Result<Snapshot> {
        self.log(format!("get-snapshot({limit:?})"));
        let items = self.items.borrow();
        let n = limit.map_or(items.len(), |l| items.len().min(l as usize));
        let first = items.len() - n;
        Ok(Snapshot {
            items: items[first..].to_vec(),
            first: first as u64,
            version: self.version(),
        })
    }

    fn add_items(&self, items: &[String]) -> Result<()> {
        self.log(format!("add-items({})", items.len()));
        self.push(items);
        Ok(())
    }

    fn replace(&self, items: &[String], expected: Option<&str>) -> Result<()> {
        self.log(format!("replace({})", items.len()));
        self.check(expected)?;
        *self.items.borrow_mut() = items.to_vec();
        self.bump();
        Ok(())
    }

    fn replace_suffix(&self, start: u64, items: &[String], expected: Option<&str>) -> Result<()> {
        self.log(format!("replace-suffix({start}, {})", items.len()));
        self.check(expected)?;
        let mut stored = self.items.borrow_mut();
        let start = usize::try_from(start).unwrap();
        if start > stored.len() {
            return Err(Error::invalid("start past the end"));
        }
        stored.truncate(start);
        stored.extend(items.iter().cloned());
        drop(stored);
        self.bump();
        Ok(())
    }

    fn clear(&self) -> Result<()> {
        self.log("clear".into());
        self.items.borrow_mut().clear();
        self.bump();
        Ok(())
    }

    fn ping(&self) -> Result<()> {
        self.log("ping".into());
        Ok(())
    }

    fn metadata(&self) -> Result<Metadata> {
        self.log("metadata".into());
        Ok(Metadata {
            created_at: Some(1),
            updated_at: Some(self.version.get()),
        })
    }
}

/// A clock the test sets and IVs that differ on every call.
pub struct TestPlatform {
    /// Seconds since the Unix epoch.
    pub now: Cell<u64>,
    next_iv: Cell<u8>,
    /// Pauses asked for, in order (the tests do not wait).
    pub slept: std::cell::RefCell<Vec<std::time::Duration>>,
}

impl TestPlatform {
    /// A platform at `now`.
    pub fn at(now: u64) -> Self {
        Self {
            now: Cell::new(now),
            next_iv: Cell::new(0),
            slept: Default::default(),
        }
    }
}

impl Platform for &TestPlatform {
    fn now(&self) -> u64 {
        self.now.get()
    }

    fn iv(&self) -> [u8; 16] {
        let n = self.next_iv.get();
        self.next_iv.set(n.wrapping_add(1));
        [n; 16]
    }

    fn sleep(&self, duration: std::time::Duration) {
        self.slept.borrow_mut().push(duration);
    }
}

/// Settings with `key`, an optional TTL and a scan bound.
pub fn settings(key: &str, ttl_seconds: Option<u32>, max_scan_items: u32) -> Settings {
    Settings {
        key: MasterKey::parse(key).unwrap(),
        ttl_seconds,
        max_scan_items,
    }
}

/// The encrypted session `id` over `memory`.
pub fn open<'a>(
    id: &str,
    memory: &'a Memory,
    platform: &'a TestPlatform,
    settings: &Settings,
) -> EncryptedSession<&'a Memory, &'a TestPlatform> {
    EncryptedSession::new(id.to_string(), memory, platform, settings, None)
}

/// Item texts `{"n":i}` for each `i`.
pub fn items(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!(r#"{{"n":{i}}}"#)).collect()
}

/// A plain (unencrypted) item.
pub fn plain(i: u32) -> String {
    format!(r#"{{"role":"user","content":"plain {i}"}}"#)
}
