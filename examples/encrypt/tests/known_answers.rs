//! Known answers from Python (`tests/vectors/python.json`, made by `make_vectors.py` with
//! `cryptography` and openai-agents 0.24.0's `EncryptedSession`): key parsing, key derivation,
//! Fernet tokens made and checked, and whole sessions written and read.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use dapr_session_encrypt::config::Settings;
use dapr_session_encrypt::fernet::{self, Ttl, Verified};
use dapr_session_encrypt::key::{MasterKey, SessionKey};
use dapr_session_encrypt::platform::Platform;
use dapr_session_encrypt::python_base64::urlsafe_b64decode;
use dapr_session_encrypt::session::EncryptedSession;
use serde_json::Value;
use support::Memory;

fn vectors() -> Value {
    serde_json::from_str(include_str!("vectors/python.json")).unwrap()
}

fn cases<'a>(v: &'a Value, name: &str) -> &'a Vec<Value> {
    let cases = v[name].as_array().unwrap();
    assert!(!cases.is_empty(), "{name}");
    cases
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn fernet_key(s: &str) -> SessionKey {
    SessionKey::from_bytes(&URL_SAFE.decode(s).unwrap().try_into().unwrap())
}

/// A platform at a fixed time that hands out one fixed IV.
struct Fixed {
    now: u64,
    iv: [u8; 16],
}

impl Platform for &Fixed {
    fn now(&self) -> u64 {
        self.now
    }
    fn iv(&self) -> [u8; 16] {
        self.iv
    }
    fn sleep(&self, _: std::time::Duration) {
        unreachable!("known answers never retry")
    }
}

#[test]
fn master_keys_parse_as_python_parses_them() {
    let v = vectors();
    let mut decoded = 0;
    for case in cases(&v, "master_keys") {
        let key = text(&case["key"]);
        let master = MasterKey::parse(key).unwrap();
        assert_eq!(master.bytes(), hex(text(&case["master_hex"])), "{key:?}");
        let ours = key.is_ascii() && urlsafe_b64decode(key.as_bytes()).is_ok_and(|b| b.len() == 32);
        assert_eq!(ours, case["decoded"].as_bool().unwrap(), "{key:?}");
        decoded += usize::from(ours);
    }
    assert!(
        decoded >= 20,
        "the cases exercise the 32-byte rule ({decoded})"
    );
}

#[test]
fn session_keys_derive_as_python_derives_them() {
    let v = vectors();
    for case in cases(&v, "derived_keys") {
        let derived = MasterKey::parse(text(&case["key"]))
            .unwrap()
            .derive(text(&case["session_id"]));
        let want = fernet_key(text(&case["fernet_key"]));
        assert_eq!(derived.signing(), want.signing());
        assert_eq!(derived.encryption(), want.encryption());
    }
}

#[test]
fn fernet_tokens_are_made_byte_for_byte() {
    let v = vectors();
    for case in cases(&v, "fernet_encrypt") {
        let key = fernet_key(text(&case["fernet_key"]));
        let plaintext = hex(text(&case["plaintext_hex"]));
        let iv: [u8; 16] = hex(text(&case["iv_hex"])).try_into().unwrap();
        let time = case["time"].as_u64().unwrap();
        let token = fernet::encrypt(&key, &plaintext, time, &iv);
        assert_eq!(token, text(&case["token"]));
        assert_eq!(
            fernet::decrypt(&key, token.as_bytes(), None).unwrap(),
            plaintext
        );
    }
}

#[test]
fn fernet_tokens_are_accepted_and_refused_as_python_does() {
    let v = vectors();
    for case in cases(&v, "fernet_decrypt") {
        let name = text(&case["name"]);
        let key = fernet_key(text(&case["fernet_key"]));
        let token = text(&case["token"]).as_bytes();
        let ttl = case["ttl"].as_u64().map(|seconds| Ttl {
            seconds,
            now: case["now"].as_u64().unwrap(),
        });
        let got = fernet::decrypt(&key, token, ttl);
        if case["ok"].as_bool().unwrap() {
            assert_eq!(got.unwrap(), hex(text(&case["plaintext_hex"])), "{name}");
        } else {
            assert!(got.is_err(), "{name}: {got:?}");
        }
        let stamp = Verified::new(&key, token).ok().map(|t| t.timestamp());
        assert_eq!(stamp, case["authenticated_timestamp"].as_u64(), "{name}");
    }
}

#[test]
fn python_items_are_written_and_read_byte_for_byte() {
    let v = vectors();
    for case in cases(&v, "session_items") {
        let id = text(&case["session_id"]);
        let settings = Settings {
            key: MasterKey::parse(text(&case["encryption_key"])).unwrap(),
            ttl_seconds: Some(600),
            max_scan_items: 100,
        };
        let platform = Fixed {
            now: case["time"].as_u64().unwrap(),
            iv: hex(text(&case["iv_hex"])).try_into().unwrap(),
        };
        let memory = Memory::default();
        let s = EncryptedSession::new(id.to_string(), &memory, &platform, &settings, None);
        let plaintext = text(&case["plaintext"]).to_string();
        s.add_items(std::slice::from_ref(&plaintext)).unwrap();
        assert_eq!(memory.items(), [text(&case["stored"])], "{plaintext}");
        assert_eq!(s.get_items(None).unwrap(), [plaintext]);
    }
}

#[test]
fn mixed_stored_items_read_as_python_reads_them() {
    let v = vectors();
    for case in cases(&v, "session_reads") {
        let stored: Vec<String> = case["stored"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| text(s).to_string())
            .collect();
        let settings = Settings {
            key: MasterKey::parse(text(&case["encryption_key"])).unwrap(),
            ttl_seconds: case["ttl"].as_u64().map(|t| u32::try_from(t).unwrap()),
            max_scan_items: 10_000,
        };
        let platform = Fixed {
            now: case["now"].as_u64().unwrap(),
            iv: [0; 16],
        };
        let memory = Memory::with(&stored);
        let id = text(&case["session_id"]).to_string();
        let s = EncryptedSession::new(id, &memory, &platform, &settings, None);
        let limit = case["limit"].as_u64().map(|l| u32::try_from(l).unwrap());
        let want: Vec<&str> = case["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(text)
            .collect();
        assert_eq!(
            s.get_items(limit).unwrap(),
            want,
            "now {} limit {limit:?}",
            case["now"]
        );
    }
}
