//! The JSON Dapr's HTTP state API takes and gives, and the values the client passes around.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// Consistency level Dapr passes to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Dapr's `eventual`.
    Eventual,
    /// Dapr's `strong`.
    Strong,
}

impl Consistency {
    /// The value Dapr expects on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Consistency::Eventual => "eventual",
            Consistency::Strong => "strong",
        }
    }
}

/// Dapr's optimistic-concurrency mode for a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Reject the write unless the etag matches (or, without an etag, unless the key is absent).
    FirstWrite,
    /// Overwrite unconditionally.
    LastWrite,
}

impl Concurrency {
    /// The value Dapr expects on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Concurrency::FirstWrite => "first-write",
            Concurrency::LastWrite => "last-write",
        }
    }
}

/// A stored value and its etag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The bytes the sidecar returned (normally JSON).
    pub data: Vec<u8>,
    /// The etag, if the store returned one.
    pub etag: Option<String>,
}

/// One key of a save or an upsert.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// State key.
    pub key: &'a str,
    /// JSON value to store.
    pub value: &'a RawValue,
    /// Etag the current value must have; `None` means "no etag".
    pub etag: Option<&'a str>,
    /// Concurrency mode.
    pub concurrency: Concurrency,
    /// Time to live in seconds; `None` stores the key without expiry (and clears an old one).
    pub ttl: Option<u32>,
}

impl<'a> Write<'a> {
    /// An unconditional write of `value` to `key`.
    pub fn put(key: &'a str, value: &'a RawValue, ttl: Option<u32>) -> Self {
        Write {
            key,
            value,
            etag: None,
            concurrency: Concurrency::LastWrite,
            ttl,
        }
    }

    /// A write of `value` to `key` that fails unless the key has `etag` (or, with `None`,
    /// does not exist).
    pub fn guarded(
        key: &'a str,
        value: &'a RawValue,
        etag: Option<&'a str>,
        ttl: Option<u32>,
    ) -> Self {
        Write {
            key,
            value,
            etag,
            concurrency: Concurrency::FirstWrite,
            ttl,
        }
    }
}

/// One operation of a state transaction.
#[derive(Debug, Clone, Copy)]
pub enum TxOp<'a> {
    /// Insert or replace a key.
    Upsert(Write<'a>),
    /// Delete a key, guarded by an etag if given.
    Delete {
        /// State key.
        key: &'a str,
        /// Etag the current value must have.
        etag: Option<&'a str>,
    },
}

#[derive(Serialize)]
pub(super) struct WireOptions {
    pub concurrency: &'static str,
    pub consistency: &'static str,
}

#[derive(Serialize)]
pub(super) struct WireMetadata {
    #[serde(rename = "ttlInSeconds")]
    pub ttl_in_seconds: String,
}

#[derive(Serialize)]
pub(super) struct WireSave<'a> {
    pub key: &'a str,
    pub value: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<&'a str>,
    pub options: WireOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<WireMetadata>,
}

#[derive(Serialize)]
pub(super) struct WireDelete<'a> {
    pub key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<&'a str>,
    pub options: WireOptions,
}

#[derive(Serialize)]
#[serde(tag = "operation", content = "request", rename_all = "lowercase")]
pub(super) enum WireTxOp<'a> {
    Upsert(WireSave<'a>),
    Delete(WireDelete<'a>),
}

#[derive(Serialize)]
pub(super) struct WireTransaction<'a> {
    pub operations: Vec<WireTxOp<'a>>,
}

#[derive(Deserialize)]
pub(super) struct WireError {
    #[serde(rename = "errorCode", default)]
    pub error_code: String,
    #[serde(default)]
    pub message: String,
}
