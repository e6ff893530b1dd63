//! The JSON Dapr's HTTP state API takes and gives, and the values the client passes around.

use crate::json::{Reader, write};

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
    /// JSON value to store (JSON text this component made or read back from the store).
    pub value: &'a str,
    /// Etag the current value must have; `None` means "no etag".
    pub etag: Option<&'a str>,
    /// Concurrency mode.
    pub concurrency: Concurrency,
    /// Time to live in seconds; `None` stores the key without expiry (and clears an old one).
    pub ttl: Option<u32>,
}

impl<'a> Write<'a> {
    /// An unconditional write of `value` to `key`.
    pub fn put(key: &'a str, value: &'a str, ttl: Option<u32>) -> Self {
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
    pub fn guarded(key: &'a str, value: &'a str, etag: Option<&'a str>, ttl: Option<u32>) -> Self {
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

/// Writes one save request (`{"key", "value", "etag", "options", "metadata"}`).
fn write_save(out: &mut String, w: &Write<'_>, consistency: Consistency) {
    let mut o = write::Object::new(out);
    o.str("key", w.key);
    o.raw("value", w.value);
    if let Some(etag) = w.etag.filter(|e| !e.is_empty()) {
        o.str("etag", etag);
    }
    write_options(&mut o, w.concurrency, consistency);
    if let Some(ttl) = w.ttl {
        let mut meta = write::Object::new(o.member("metadata"));
        let mut n = String::new();
        write::u64(&mut n, u64::from(ttl));
        // Dapr wants metadata values as strings.
        meta.str("ttlInSeconds", &n);
        meta.end();
    }
    o.end();
}

fn write_options(o: &mut write::Object<'_>, concurrency: Concurrency, consistency: Consistency) {
    let mut options = write::Object::new(o.member("options"));
    options.str("concurrency", concurrency.as_str());
    options.str("consistency", consistency.as_str());
    options.end();
}

/// The body of `POST /v1.0/state/{store}`: a JSON array of saves.
pub fn save_body(writes: &[Write<'_>], consistency: Consistency) -> String {
    let size: usize = writes
        .iter()
        .map(|w| w.key.len() + w.value.len() + 160)
        .sum();
    let mut out = String::with_capacity(size + 2);
    write::array(&mut out, writes, |out, w| write_save(out, w, consistency));
    out
}

/// The body of `POST /v1.0/state/{store}/transaction`.
pub fn transaction_body(ops: &[TxOp<'_>], consistency: Consistency) -> String {
    let size: usize = ops
        .iter()
        .map(|op| match op {
            TxOp::Upsert(w) => w.key.len() + w.value.len() + 200,
            TxOp::Delete { key, .. } => key.len() + 200,
        })
        .sum();
    let mut out = String::with_capacity(size + 20);
    let mut o = write::Object::new(&mut out);
    write::array(o.member("operations"), ops, |out, op| {
        let mut item = write::Object::new(out);
        match op {
            TxOp::Upsert(w) => {
                item.str("operation", "upsert");
                write_save(item.member("request"), w, consistency);
            }
            TxOp::Delete { key, etag } => {
                item.str("operation", "delete");
                let mut request = write::Object::new(item.member("request"));
                request.str("key", key);
                let etag = etag.filter(|e| !e.is_empty());
                if let Some(etag) = etag {
                    request.str("etag", etag);
                }
                let concurrency = if etag.is_some() {
                    Concurrency::FirstWrite
                } else {
                    Concurrency::LastWrite
                };
                write_options(&mut request, concurrency, consistency);
                request.end();
            }
        }
        item.end();
    });
    o.end();
    out
}

/// Dapr's `errorCode` and `message` from an error body, if it is Dapr's JSON.
pub fn error_body(body: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut r = Reader::new(text);
    let (mut code, mut message) = (String::new(), String::new());
    r.object(|r, name| {
        match name {
            "errorCode" => code = r.string()?,
            "message" => message = r.string()?,
            _ => {
                r.value()?;
            }
        }
        Some(())
    })?;
    r.end()?;
    Some((code, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_what_daprd_reads() {
        let w = Write::guarded("a\"b", r#"{"x":[1]}"#, Some("7"), Some(60));
        let body = save_body(&[w, Write::put("k", "\"v\"", None)], Consistency::Strong);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"key": "a\"b", "value": {"x": [1]}, "etag": "7",
                 "options": {"concurrency": "first-write", "consistency": "strong"},
                 "metadata": {"ttlInSeconds": "60"}},
                {"key": "k", "value": "v",
                 "options": {"concurrency": "last-write", "consistency": "strong"}}
            ])
        );
        let ops = [
            TxOp::Upsert(w),
            TxOp::Delete {
                key: "d",
                etag: Some(""),
            },
        ];
        let v: serde_json::Value =
            serde_json::from_str(&transaction_body(&ops, Consistency::Eventual)).unwrap();
        assert_eq!(v["operations"][0]["operation"], "upsert");
        assert_eq!(
            v["operations"][0]["request"]["options"]["consistency"],
            "eventual"
        );
        assert_eq!(
            v["operations"][1],
            serde_json::json!({"operation": "delete", "request": {"key": "d",
                "options": {"concurrency": "last-write", "consistency": "eventual"}}})
        );
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_body(br#"{"errorCode":"ERR_X","message":"m","details":[{}]}"#),
            Some(("ERR_X".into(), "m".into()))
        );
        assert_eq!(error_body(b"nope"), None);
    }
}
