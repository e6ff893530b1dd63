//! The state store as the storage layouts see it: a small trait over the few calls they make
//! (and the clock, randomness and sleep they use with them), so that their protocols run
//! against the sidecar in the component and against an in-memory store in native unit tests.

use std::future::Future;
use std::time::Duration;

use crate::dapr::{DaprClient, DaprError, Stored, TxOp, Write};
use crate::error::{Error, Result};
use crate::join::join_all;

/// Requests in flight at once when reading or deleting many keys.
pub const PARALLEL: usize = 32;

/// What a state store supports, as the sidecar reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Multi-key transactions (`TRANSACTIONAL`).
    pub transactional: bool,
    /// Etags are versions that go up by one per write (Redis): after its own commit, a writer
    /// knows the next etag.
    pub counting_etags: bool,
}

/// A Dapr state store, with the clock and randomness its users need.
#[allow(async_fn_in_trait)]
pub trait Store {
    /// Reads one key; `None` when it does not exist.
    async fn get(&self, key: &str) -> Result<Option<Stored>, DaprError>;
    /// Saves keys in one request (not atomic across keys).
    async fn save(&self, writes: &[Write<'_>]) -> Result<(), DaprError>;
    /// Runs a transaction: all of it or nothing (Redis: no rollback of what succeeded).
    async fn transact(&self, ops: &[TxOp<'_>]) -> Result<(), DaprError>;
    /// Deletes a key, guarded by `etag` if given; deleting a missing key succeeds.
    async fn delete(&self, key: &str, etag: Option<&str>) -> Result<(), DaprError>;
    /// What the store supports. Fails when it has no etags, which writers need.
    async fn features(&self) -> Result<Features>;
    /// Wall-clock time, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Fills `buf` with random bytes.
    fn random(&self, buf: &mut [u8]);
    /// Waits `duration`.
    async fn sleep(&self, duration: Duration);

    /// Reads `keys` concurrently, in order; at most [`PARALLEL`] requests at once.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Stored>>, DaprError> {
        let mut out = Vec::with_capacity(keys.len());
        for group in keys.chunks(PARALLEL) {
            for got in join_all(group.iter().map(|k| self.get(k)).collect()).await {
                out.push(got?);
            }
        }
        Ok(out)
    }

    /// Deletes `keys` concurrently; returns those that could not be deleted.
    async fn delete_many(&self, keys: &[String]) -> Vec<String> {
        let mut failed = Vec::new();
        for group in keys.chunks(PARALLEL) {
            let results = join_all(group.iter().map(|k| self.delete(k, None)).collect()).await;
            failed.extend(
                group
                    .iter()
                    .zip(results)
                    .filter(|(_, r)| r.is_err())
                    .map(|(k, _)| k.clone()),
            );
        }
        failed
    }
}

impl Store for DaprClient {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Stored>, DaprError>> {
        DaprClient::get(self, key)
    }

    fn save(&self, writes: &[Write<'_>]) -> impl Future<Output = Result<(), DaprError>> {
        DaprClient::save(self, writes)
    }

    fn transact(&self, ops: &[TxOp<'_>]) -> impl Future<Output = Result<(), DaprError>> {
        DaprClient::transact(self, ops)
    }

    fn delete(&self, key: &str, etag: Option<&str>) -> impl Future<Output = Result<(), DaprError>> {
        DaprClient::delete(self, key, etag)
    }

    async fn features(&self) -> Result<Features> {
        let components = self.components().await?;
        let store = self.store();
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
            return Err(Error::Unsupported(format!(
                "state store '{store}' ({}) has no etags, which concurrent writers need",
                info.kind
            )));
        }
        Ok(Features {
            transactional: has("TRANSACTIONAL"),
            counting_etags: info.kind == "state.redis",
        })
    }

    fn now_ms(&self) -> u64 {
        crate::clock::now_ms()
    }

    fn random(&self, buf: &mut [u8]) {
        // `wasi:random/random`, which every `wasi:http` proxy host has.
        crate::runtime::random(buf);
    }

    async fn sleep(&self, duration: Duration) {
        crate::runtime::sleep(duration).await;
    }
}
