//! Native unit tests of the log layout's protocol, against the in-memory store.

mod basics;
mod migration;
mod races;
mod retention;
mod ttl;

use std::rc::Rc;

use super::Log;
use super::head::Head;
use super::ttl::Ttl;
use crate::layout::keys::Keys;
use crate::layout::{Mode, chunk};
use crate::testing::{MemStore, block_on};

/// The session base every test uses.
const BASE: &str = "t:s";

/// An instance of the layout on `store` (no TTL, no retention).
fn log(store: &MemStore) -> Log<MemStore> {
    Log::new(store.clone(), BASE, Ttl::new(None, 10_000), None)
}

/// `n` chat items tagged `tag`, about 110 bytes each, like the benchmark's.
fn items(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                r#"{{"role":"user","content":"{tag} {i}: a typical chat message, about a hundred bytes long."}}"#
            )
        })
        .collect()
}

/// Appends `items` in batches of `batch`.
fn fill(log: &Log<MemStore>, items: &[String], batch: usize) {
    for b in items.chunks(batch) {
        let refs: Vec<&str> = b.iter().map(String::as_str).collect();
        block_on(log.add_items(&refs)).unwrap();
    }
}

fn add(log: &Log<MemStore>, items: &[String]) -> crate::error::Result<()> {
    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
    block_on(log.add_items(&refs))
}

fn all(log: &Log<MemStore>) -> Vec<String> {
    block_on(log.get_items(None)).unwrap()
}

/// The head as stored.
fn stored_head(store: &MemStore) -> Head {
    Head::parse(&String::from_utf8(store.raw(&Keys::new(BASE).head()).unwrap()).unwrap()).unwrap()
}

/// Keys of the session that its head neither references nor lists as trash.
fn unreferenced(store: &MemStore) -> Vec<String> {
    let keys = Keys::new(BASE);
    let head = store.raw(&keys.head()).map(|_| stored_head(store));
    store
        .keys()
        .into_iter()
        .filter(|k| *k != keys.head())
        .filter(|k| {
            head.as_ref().is_none_or(|h| {
                !h.chunks.iter().any(|c| keys.chunk(c.id()) == *k) && !h.trash.contains(k)
            })
        })
        .collect()
}

/// What the `compat` layout would store for `items`: the array and a typical metadata value.
fn compat_bytes(items: &[String]) -> usize {
    let keys = Keys::new(BASE);
    chunk::encode(items).len()
        + keys.messages().len()
        + keys.metadata().len()
        + r#"{"session_id":"s","created_at":"1764741026","updated_at":"1764741026"}"#.len()
}

/// The tag an item of [`items`] was made with.
fn tag_of(item: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(item).unwrap();
    let content = v["content"].as_str().unwrap();
    content.split(' ').next().unwrap().to_string()
}
