//! Envelopes written by this crate, as JSON on stdout, for Python to read back:
//! `cargo run -p dapr-session-encrypt --example rust_vectors | python tests/vectors/make_vectors.py --check-rust -`
//!
//! Each case is one session's stored items and the item texts they hold; the item texts cover
//! how JSON text the caller passes maps onto what Python's `json.loads` reads (whitespace,
//! escapes, number spellings, non-ASCII text, deep nesting, a 1 MiB item).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::Cell;

use dapr_session_encrypt::config::Settings;
use dapr_session_encrypt::error::Result;
use dapr_session_encrypt::inner::{Inner, Metadata, Snapshot};
use dapr_session_encrypt::key::MasterKey;
use dapr_session_encrypt::platform::Platform;
use dapr_session_encrypt::session::EncryptedSession;
use std::cell::RefCell;

const T: u64 = 1_767_225_600;

/// Collects what the session appends.
#[derive(Default)]
struct Sink(RefCell<Vec<String>>);

impl Inner for &Sink {
    fn get_snapshot(&self, _: Option<u32>) -> Result<Snapshot> {
        Ok(Snapshot {
            items: self.0.borrow().clone(),
            first: 0,
            version: String::new(),
        })
    }
    fn add_items(&self, items: &[String]) -> Result<()> {
        self.0.borrow_mut().extend(items.iter().cloned());
        Ok(())
    }
    fn replace(&self, _: &[String], _: Option<&str>) -> Result<()> {
        unreachable!()
    }
    fn replace_suffix(&self, _: u64, _: &[String], _: Option<&str>) -> Result<()> {
        unreachable!()
    }
    fn clear(&self) -> Result<()> {
        unreachable!()
    }
    fn ping(&self) -> Result<()> {
        unreachable!()
    }
    fn metadata(&self) -> Result<Metadata> {
        unreachable!()
    }
}

struct Counter(Cell<u8>);

impl Platform for &Counter {
    fn now(&self) -> u64 {
        T
    }
    fn iv(&self) -> [u8; 16] {
        let n = self.0.get();
        self.0.set(n.wrapping_add(1));
        [n.wrapping_mul(37); 16]
    }
    fn sleep(&self, _: std::time::Duration) {
        unreachable!("nothing races the vectors' in-memory session")
    }
}

fn main() {
    let items: Vec<String> = vec![
        r#"{"role":"user","content":"What city is the Golden Gate Bridge in?"}"#.into(),
        " {\"role\" : \"assistant\",\n \"content\": \"San Francisco.\" }\t".into(),
        r#"{"content":"Grüße, 日本語, 🙂, עברית"}"#.into(),
        r#"{"escaped":"\u00e9\u65e5\ud83d\ude42 \/ \" \\ \n \t \u0000"}"#.into(),
        r#"{"n":[1.0,1e2,-0,1E-7,12345678901234567890123,0.1,3.141592653589793]}"#.into(),
        r#"{"empty":{},"list":[],"t":true,"f":false,"z":null}"#.into(),
        format!(r#"{{"deep":{}1{}}}"#, "[".repeat(120), "]".repeat(120)),
        format!(r#"{{"big":"{}"}}"#, "ü🙂x".repeat(150_000)),
    ];
    let mut cases = Vec::new();
    for (name, key, id) in [
        (
            "fernet key",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "user-123",
        ),
        (
            "raw key, non-ASCII id",
            "correct horse battery staple",
            "sess:ü/日本語/🙂",
        ),
    ] {
        let sink = Sink::default();
        let platform = Counter(Cell::new(1));
        let settings = Settings {
            key: MasterKey::parse(key).unwrap(),
            ttl_seconds: None,
            max_scan_items: 100,
        };
        let s = EncryptedSession::new(id.to_string(), &sink, &platform, &settings, None);
        s.add_items(&items).unwrap();
        let trimmed: Vec<&str> = items.iter().map(|i| i.trim()).collect();
        assert_eq!(s.get_items(None).unwrap(), trimmed);
        cases.push(serde_json::json!({
            "name": name,
            "encryption_key": key,
            "session_id": id,
            "ttl": 600,
            "now": T + 10,
            "stored": sink.0.borrow().clone(),
            "items": trimmed,
        }));
    }
    println!("{}", serde_json::json!({ "cases": cases }));
}
