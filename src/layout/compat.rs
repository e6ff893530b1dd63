//! The upstream layout, shared with the Python `DaprSession`.
//!
//! | key                | value                                                           |
//! |--------------------|-----------------------------------------------------------------|
//! | `{base}:messages`  | JSON array; each entry a JSON string holding one item's JSON    |
//! | `{base}:metadata`  | `{"session_id", "created_at", "updated_at"}`, epoch seconds as strings |
//!
//! Every change rewrites the whole array under an etag (first-write concurrency), so cost
//! grows with the history; the point of this layout is interoperability.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Timestamps, lost_race, newest};
use crate::clock;
use crate::dapr::{Concurrency, DaprClient, Write};
use crate::error::{Error, Result};
use crate::item;
use crate::retry::Backoff;

/// The upstream layout for one session.
pub struct Compat {
    client: DaprClient,
    session_id: String,
    messages_key: String,
    metadata_key: String,
}

#[derive(Serialize)]
struct MetadataOut<'a> {
    session_id: &'a str,
    created_at: String,
    updated_at: String,
}

#[derive(Deserialize)]
struct MetadataIn<'a> {
    #[serde(default, borrow)]
    created_at: Option<&'a RawValue>,
    #[serde(default, borrow)]
    updated_at: Option<&'a RawValue>,
}

impl Compat {
    /// The layout for `session_id`, whose keys start with `base`.
    pub fn new(client: DaprClient, session_id: &str, base: &str) -> Self {
        Compat {
            client,
            session_id: session_id.to_string(),
            messages_key: format!("{base}:messages"),
            metadata_key: format!("{base}:metadata"),
        }
    }

    /// See [`super::Layout::get_items`]. A stored value that is not a JSON array reads as empty.
    pub async fn get_items(&self, limit: Option<u32>) -> Result<Vec<String>> {
        let Some(stored) = self.client.get(&self.messages_key).await? else {
            return Ok(Vec::new());
        };
        let Ok(entries) = parse_entries(&stored.data) else {
            return Ok(Vec::new());
        };
        Ok(newest(&entries, limit, |e| item::decode_entry(e)))
    }

    /// See [`super::Layout::add_items`]. Fails with `corrupt` if the stored value is not a
    /// JSON array, leaving it untouched.
    pub async fn add_items(&self, items: &[&str]) -> Result<()> {
        let encoded: Vec<String> = items.iter().map(|i| item::encode_string(i)).collect();
        let mut backoff = Backoff::new();
        loop {
            if !backoff.start_attempt() {
                return Err(Error::Conflict(backoff.attempts()));
            }
            let current = self.client.get(&self.messages_key).await?;
            let (value, etag) = match &current {
                None => (format!("[{}]", encoded.join(",")), None),
                Some(stored) => {
                    let entries = parse_entries(&stored.data).map_err(corrupt)?;
                    (
                        append(&stored.data, entries.is_empty(), &encoded)?,
                        stored.etag.as_deref(),
                    )
                }
            };
            let value = raw(value)?;
            let write = Write {
                key: &self.messages_key,
                value: &value,
                etag,
                concurrency: Concurrency::FirstWrite,
            };
            match self.client.save(&[write]).await {
                Ok(()) => break,
                Err(e) => {
                    lost_race(&self.client, &self.messages_key, etag.is_some(), e).await?;
                    backoff.pause().await;
                }
            }
        }
        self.touch_metadata().await;
        Ok(())
    }

    /// See [`super::Layout::pop_item`]. Undecodable entries at the end are removed along with
    /// the item returned; `None` if only such entries were left.
    pub async fn pop_item(&self) -> Result<Option<String>> {
        let mut backoff = Backoff::new();
        let popped = loop {
            if !backoff.start_attempt() {
                return Err(Error::Conflict(backoff.attempts()));
            }
            let Some(stored) = self.client.get(&self.messages_key).await? else {
                return Ok(None);
            };
            let entries = parse_entries(&stored.data).map_err(corrupt)?;
            if entries.is_empty() {
                return Ok(None);
            }
            // Drop the newest valid entry and every undecodable entry after it.
            let mut keep = entries.len();
            let mut popped = None;
            while keep > 0 {
                keep -= 1;
                if let Some(item) = entries.get(keep).and_then(|e| item::decode_entry(e)) {
                    popped = Some(item);
                    break;
                }
            }
            let rest: Vec<&str> = entries.iter().take(keep).map(|e| e.get()).collect();
            let value = raw(format!("[{}]", rest.join(",")))?;
            let etag = stored.etag.as_deref();
            let write = Write {
                key: &self.messages_key,
                value: &value,
                etag,
                concurrency: Concurrency::FirstWrite,
            };
            match self.client.save(&[write]).await {
                Ok(()) => break popped,
                Err(e) => {
                    lost_race(&self.client, &self.messages_key, etag.is_some(), e).await?;
                    backoff.pause().await;
                }
            }
        };
        self.touch_metadata().await;
        Ok(popped)
    }

    /// See [`super::Layout::clear`]: deletes both keys.
    pub async fn clear(&self) -> Result<()> {
        self.client.delete(&self.messages_key, None).await?;
        self.client.delete(&self.metadata_key, None).await?;
        Ok(())
    }

    /// See [`super::Layout::timestamps`].
    pub async fn timestamps(&self) -> Result<Timestamps> {
        let Some(stored) = self.client.get(&self.metadata_key).await? else {
            return Ok(Timestamps::default());
        };
        let meta = parse_metadata(&stored.data).map_err(|e| {
            Error::Corrupt(format!("{} is not a JSON object: {e}", self.metadata_key))
        })?;
        Ok(Timestamps {
            created_at: meta.created_at.as_ref().and_then(seconds_to_ms),
            updated_at: meta.updated_at.as_ref().and_then(seconds_to_ms),
        })
    }

    /// Keeps `created_at`, sets `updated_at` to now. Like upstream, a failure here does not fail
    /// the write that preceded it: the items are stored, and reporting an error would invite
    /// the caller to add them twice.
    async fn touch_metadata(&self) {
        let mut backoff = Backoff::new();
        while backoff.start_attempt() {
            let now = clock::now_ms() / 1000;
            let Ok(current) = self.client.get(&self.metadata_key).await else {
                return;
            };
            let (created, updated, etag) = match &current {
                None => (now, now, None),
                Some(stored) => {
                    // Never overwrite metadata we cannot read.
                    let Ok(meta) = parse_metadata(&stored.data) else {
                        return;
                    };
                    let created = meta.created_at.as_ref().and_then(seconds).unwrap_or(now);
                    let updated = meta
                        .updated_at
                        .as_ref()
                        .and_then(seconds)
                        .unwrap_or(0)
                        .max(now);
                    (created, updated, stored.etag.as_deref())
                }
            };
            let out = MetadataOut {
                session_id: &self.session_id,
                created_at: created.to_string(),
                updated_at: updated.to_string(),
            };
            let Ok(value) = serde_json::to_string(&out)
                .map_err(|_| ())
                .and_then(|v| raw(v).map_err(|_| ()))
            else {
                return;
            };
            // With an etag, first-write guards against a concurrent update; without one (a new
            // key), upstream writes last-write so a Redis key created by Python stays writable.
            let write = Write {
                key: &self.metadata_key,
                value: &value,
                etag,
                concurrency: if etag.is_some() {
                    Concurrency::FirstWrite
                } else {
                    Concurrency::LastWrite
                },
            };
            match self.client.save(&[write]).await {
                Ok(()) => return,
                Err(e) if e.status() == Some(409) => backoff.pause().await,
                Err(_) => return,
            }
        }
    }
}

/// Parses the stored metadata: a JSON object only (serde would also read an array).
fn parse_metadata(data: &[u8]) -> serde_json::Result<MetadataIn<'_>> {
    let object = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    serde_json::from_slice(if object { data } else { b"" })
}

/// Parses the stored messages value as a JSON array, keeping each entry's raw JSON.
fn parse_entries(data: &[u8]) -> std::result::Result<Vec<&RawValue>, String> {
    serde_json::from_slice(data)
        .map_err(|e| format!("the stored messages are not a JSON array: {e}"))
}

fn corrupt(why: String) -> Error {
    Error::Corrupt(format!("{why}; left untouched"))
}

/// The stored array text with `encoded` entries appended, keeping existing entries verbatim.
fn append(stored: &[u8], was_empty: bool, encoded: &[String]) -> Result<String> {
    let text = std::str::from_utf8(stored)
        .map_err(|e| corrupt(format!("the stored messages are not UTF-8: {e}")))?;
    let head = text
        .trim_end()
        .strip_suffix(']')
        .ok_or_else(|| corrupt("the stored messages do not end with ']'".into()))?;
    let sep = if was_empty { "" } else { "," };
    Ok(format!("{head}{sep}{}]", encoded.join(",")))
}

fn raw(json: String) -> Result<Box<RawValue>> {
    RawValue::from_string(json).map_err(|e| Error::Store {
        status: 0,
        code: String::new(),
        message: format!("internal: built invalid JSON: {e}"),
    })
}

/// Epoch seconds from a JSON string or number (`"1700000000"`, `1700000000`, `1700000000.5`).
fn seconds(v: &&RawValue) -> Option<u64> {
    let text = v.get().trim_matches('"').trim();
    let whole = text.split('.').next().unwrap_or_default();
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    whole.parse().ok()
}

fn seconds_to_ms(v: &&RawValue) -> Option<u64> {
    seconds(v).map(|s| s.saturating_mul(1000))
}
