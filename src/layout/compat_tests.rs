//! Native unit tests of the upstream layout's writes against the in-memory store: lost races,
//! and writes the sidecar reports as conflicts after they landed.

use std::cell::Cell;

use super::Compat;
use crate::dapr::DaprError;
use crate::layout::Mode;
use crate::testing::{Action, Flavor, MemStore, Request, block_on};

const BASE: &str = "t:s";

fn compat(store: &MemStore) -> Compat<MemStore> {
    Compat::new(store.clone(), "s", BASE, None, None)
}

fn item(tag: &str) -> String {
    format!(r#"{{"role":"user","content":"{tag}"}}"#)
}

fn add(c: &Compat<MemStore>, tags: &[&str]) {
    let items: Vec<String> = tags.iter().map(|t| item(t)).collect();
    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
    block_on(c.add_items(&refs)).unwrap();
}

fn all(c: &Compat<MemStore>) -> Vec<String> {
    block_on(c.snapshot(None, Mode::Skip))
        .unwrap()
        .items
        .into_iter()
        .collect()
}

fn tags(tags: &[&str]) -> Vec<String> {
    tags.iter().map(|t| item(t)).collect()
}

fn saves_messages(r: &Request) -> bool {
    matches!(r, Request::Save(keys) if keys.iter().any(|k| k.ends_with(":messages")))
}

/// Applies the first save of the messages that `when` picks, then answers 409, as daprd does
/// when its Redis client runs the script again after the first run's answer was lost.
fn landed_then_conflict(store: &MemStore, skip: usize) {
    let seen = Cell::new(0usize);
    store.hook(move |r, _| {
        if saves_messages(r) {
            let n = seen.get();
            seen.set(n + 1);
            if n == skip {
                return Action::ApplyThenFail(DaprError::Status {
                    status: 409,
                    code: "ERR_STATE_SAVE".into(),
                    message: "possible etag mismatch".into(),
                });
            }
        }
        Action::Proceed
    });
}

#[test]
fn an_append_reported_as_a_conflict_after_it_landed_is_stored_once() {
    for flavor in [Flavor::REDIS, Flavor::SQL, Flavor::PLAIN] {
        let store = MemStore::new(flavor);
        let c = compat(&store);
        add(&c, &["a", "b"]);
        landed_then_conflict(&store, 0);
        add(&c, &["c", "d"]);
        store.unhook();
        assert_eq!(all(&c), tags(&["a", "b", "c", "d"]), "{flavor:?}");
    }
}

#[test]
fn an_append_that_landed_before_another_writers_is_stored_once() {
    let store = MemStore::new(Flavor::REDIS);
    let c = compat(&store);
    add(&c, &["a"]);
    // Ours lands and is answered 409; before we read again, another writer appends.
    let step = Cell::new(0);
    store.hook(move |r, s| match (step.get(), r) {
        (0, r) if saves_messages(r) => {
            step.set(1);
            Action::ApplyThenFail(DaprError::Status {
                status: 409,
                code: "ERR_STATE_SAVE".into(),
                message: "possible etag mismatch".into(),
            })
        }
        (1, Request::Get(key)) if key.ends_with(":messages") => {
            step.set(2);
            add(&compat(s), &["x"]);
            Action::Proceed
        }
        _ => Action::Proceed,
    });
    add(&c, &["b"]);
    store.unhook();
    assert_eq!(all(&c), tags(&["a", "b", "x"]));
}

#[test]
fn a_lost_race_is_retried_on_the_new_array() {
    let store = MemStore::new(Flavor::REDIS);
    let c = compat(&store);
    add(&c, &["a"]);
    let fired = Cell::new(false);
    store.hook(move |r, s| {
        if saves_messages(r) && !fired.replace(true) {
            // Another writer lands first: ours is refused, and must then be applied.
            add(&compat(s), &["x"]);
        }
        Action::Proceed
    });
    add(&c, &["b"]);
    store.unhook();
    assert_eq!(all(&c), tags(&["a", "x", "b"]));
}

#[test]
fn a_replace_reported_as_a_conflict_after_it_landed_succeeds() {
    let store = MemStore::new(Flavor::REDIS);
    let c = compat(&store);
    add(&c, &["a", "b", "c"]);
    landed_then_conflict(&store, 0);
    let new = tags(&["z"]);
    let refs: Vec<&str> = new.iter().map(String::as_str).collect();
    block_on(c.replace(Some(1), &refs, None)).unwrap();
    store.unhook();
    assert_eq!(all(&c), tags(&["a", "z"]));
}

#[test]
fn a_pop_refused_as_a_conflict_is_retried() {
    // A pop cannot tell its own landed write from another pop of the same item: a refused pop
    // runs again, so a sidecar that reports a landed pop as a conflict costs an item, never a
    // second return of one.
    let store = MemStore::new(Flavor::REDIS);
    let c = compat(&store);
    add(&c, &["a", "b"]);
    let fired = Cell::new(false);
    store.hook(move |r, s| {
        if saves_messages(r) && !fired.replace(true) {
            assert_eq!(
                block_on(compat(s).pop_item()).unwrap(),
                Some(item("b")),
                "the other pop"
            );
        }
        Action::Proceed
    });
    assert_eq!(block_on(c.pop_item()).unwrap(), Some(item("a")));
    store.unhook();
    assert!(all(&c).is_empty());
}

#[test]
fn a_conditional_replace_beaten_by_the_same_array_is_told_it_changed() {
    // Two callers remove the newest item with replace-suffix at the version they read: the
    // arrays they write are equal, and the second must learn that the session changed.
    let store = MemStore::new(Flavor::REDIS);
    let c = compat(&store);
    add(&c, &["a", "b"]);
    let version = block_on(c.snapshot(None, Mode::Skip)).unwrap().version;
    let v = version.clone();
    let fired = Cell::new(false);
    store.hook(move |r, s| {
        if saves_messages(r) && !fired.replace(true) {
            block_on(compat(s).replace(Some(1), &[], Some(&v))).unwrap();
        }
        Action::Proceed
    });
    let result = block_on(c.replace(Some(1), &[], Some(&version)));
    store.unhook();
    assert!(
        matches!(result, Err(crate::error::Error::Changed)),
        "{result:?}"
    );
    assert_eq!(all(&c), tags(&["a"]));
}
