//! The wrapping logic over an in-memory session: reads that skip and widen, pops that never
//! remove what the key cannot authenticate, snapshots and replaces translated onto stored
//! positions, TTL, wrong keys and conflicts.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod support;

use dapr_session_encrypt::codec::{self, Opened};
use dapr_session_encrypt::error::Error;
use dapr_session_encrypt::session::{EncryptedSession, MAX_ATTEMPTS};
use support::{Memory, TestPlatform, items, open, plain, settings};

const KEY: &str = "test master key, not a Fernet key";
const OTHER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const T: u64 = 1_767_225_600;
const ID: &str = "user-123";

/// Stored items `ID` would write for `texts` with `key`, stamped `at`.
fn sealed(key: &str, id: &str, texts: &[String], at: u64) -> Vec<String> {
    let memory = Memory::default();
    let platform = TestPlatform::at(at);
    open(id, &memory, &platform, &settings(key, None, 100))
        .add_items(texts)
        .unwrap();
    memory.items()
}

fn is_write(call: &str) -> bool {
    ["add-items", "replace", "clear"]
        .iter()
        .any(|w| call.starts_with(w))
}

#[test]
fn items_round_trip_byte_for_byte_and_are_stored_encrypted() {
    let memory = Memory::default();
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 100));
    let given = vec![
        " {\"role\":\"user\",\"content\":\"Grüße 🙂 distinctive-phrase\"}\n".to_string(),
        "{\"a\": [1, 2.50, {\"b\":null}], \"e\":\"\\u00e9\"}".to_string(),
        "{\"role\":\"user\",\"content\":\"Grüße 🙂 distinctive-phrase\"}".to_string(),
    ];
    s.add_items(&given).unwrap();
    let trimmed: Vec<String> = given.iter().map(|t| t.trim().to_string()).collect();
    assert_eq!(s.get_items(None).unwrap(), trimmed);
    assert_eq!(s.get_items(Some(2)).unwrap(), trimmed[1..]);

    let stored = memory.items();
    assert_eq!(stored.len(), 3);
    for text in &stored {
        assert!(text.starts_with(r#"{"__enc__":1,"v":1,"kid":"hkdf-v1","payload":"gAAAAA"#));
        for secret in ["Grüße", "distinctive", "role", "2.50", "\\u00e9"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    // The same item twice: different IVs, different bytes.
    assert_ne!(stored[0], stored[2]);

    // A 1 MiB item.
    let big = format!(r#"{{"content":"{}"}}"#, "ß€🙂x".repeat(1 << 18));
    s.add_items(std::slice::from_ref(&big)).unwrap();
    assert_eq!(s.get_items(Some(1)).unwrap(), vec![big.clone()]);
    let newest = memory.items().pop().unwrap();
    assert!(!newest.contains("ß€🙂x"));
}

#[test]
fn bad_items_are_refused_and_nothing_is_written() {
    let memory = Memory::default();
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 100));
    for (bad, index) in [("[1]", 1), ("{\"a\":", 1), ("\"s\"", 1)] {
        let e = s
            .add_items(&[r#"{"ok":1}"#.to_string(), bad.to_string()])
            .unwrap_err();
        assert!(
            matches!(e, Error::InvalidInput { item_index: Some(i), .. } if i == index),
            "{e:?}"
        );
    }
    assert!(memory.items().is_empty());
    assert!(memory.take_calls().is_empty());
    s.add_items(&[]).unwrap();
    assert!(memory.take_calls().is_empty());
}

#[test]
fn limited_reads_skip_unreadable_items_and_widen() {
    let mut stored = sealed(KEY, ID, &items(0..3), T);
    stored.push(plain(0));
    stored.extend(sealed(KEY, "another-session", &items(10..11), T));
    stored.extend(sealed(OTHER_KEY, ID, &items(20..21), T));
    for _ in 0..4 {
        stored.push(r#"{"__enc__":1,"v":1,"kid":"hkdf-v1","payload":"garbage"}"#.to_string());
    }
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 10_000));

    assert_eq!(s.get_items(Some(2)).unwrap(), items(1..3));
    assert_eq!(
        memory.take_calls(),
        [
            "get-snapshot(Some(2))",
            "get-snapshot(Some(4))",
            "get-snapshot(Some(8))",
            "get-snapshot(Some(16))"
        ]
    );
    assert_eq!(s.get_items(Some(5)).unwrap(), items(0..3));
    assert_eq!(s.get_items(None).unwrap(), items(0..3));
    assert_eq!(memory.take_calls().last().unwrap(), "get-snapshot(None)");
    assert!(s.get_items(Some(0)).unwrap().is_empty());
    assert!(memory.take_calls().is_empty());
    assert_eq!(memory.items(), stored);

    // default-limit counts live items.
    let with_default = EncryptedSession::new(
        ID.to_string(),
        &memory,
        &platform,
        &settings(KEY, None, 10_000),
        Some(2),
    );
    assert_eq!(with_default.get_items(None).unwrap(), items(1..3));
    assert_eq!(with_default.get_items(Some(1)).unwrap(), items(2..3));
}

#[test]
fn the_scan_bound_gives_too_many_items() {
    let mut stored = sealed(KEY, ID, &items(0..1), T);
    stored.extend((0..20).map(plain));
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 8));
    assert_eq!(s.get_items(Some(1)).unwrap_err(), Error::TooManyItems(7));
    assert_eq!(s.pop_item().unwrap_err(), Error::TooManyItems(7));
    assert_eq!(memory.items(), stored);
    // Whole reads are bounded by the wrapped session, not by the scan bound.
    assert_eq!(s.get_items(None).unwrap(), items(0..1));
    // A bound large enough finds it.
    let s = open(ID, &memory, &platform, &settings(KEY, None, 64));
    assert_eq!(s.get_items(Some(1)).unwrap(), items(0..1));
}

#[test]
fn expired_items_are_skipped_and_a_limited_read_still_fills() {
    // Live items written at T+500, then (a writer with a slow clock) items stamped T after
    // them; read at T+700 with a TTL of 600: the T items have expired.
    let mut stored = sealed(KEY, ID, &items(0..4), T + 500);
    stored.extend(sealed(KEY, ID, &items(10..13), T));
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T + 700);
    let s = open(ID, &memory, &platform, &settings(KEY, Some(600), 100));
    assert_eq!(s.get_items(None).unwrap(), items(0..4));
    assert_eq!(s.get_items(Some(3)).unwrap(), items(1..4));
    // At T+600 nothing has expired yet; at T+1101 everything has.
    platform.now.set(T + 600);
    assert_eq!(s.get_items(None).unwrap().len(), 7);
    platform.now.set(T + 1101);
    assert!(s.get_items(Some(3)).unwrap().is_empty());
    assert_eq!(s.pop_item().unwrap(), None);
    assert_eq!(
        memory.items(),
        stored,
        "a pop that finds nothing writes nothing"
    );
    // Without a TTL nothing expires.
    let s = open(ID, &memory, &platform, &settings(KEY, None, 100));
    assert_eq!(s.get_items(None).unwrap().len(), 7);
}

#[test]
fn items_from_beyond_the_clock_skew_are_skipped_and_kept() {
    let stored = sealed(KEY, ID, &items(0..2), T + 1000);
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, Some(600), 100));
    assert!(s.get_items(None).unwrap().is_empty());
    assert_eq!(s.pop_item().unwrap(), None);
    assert_eq!(memory.items(), stored);
    platform.now.set(T + 940);
    assert_eq!(s.get_items(None).unwrap(), items(0..2));
}

#[test]
fn a_wrong_key_reads_nothing_pops_nothing_and_changes_nothing() {
    let stored = sealed(KEY, ID, &items(0..3), T);
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    for (key, id) in [(OTHER_KEY, ID), (KEY, "user-1234")] {
        let s = open(id, &memory, &platform, &settings(key, Some(600), 100));
        assert!(s.get_items(None).unwrap().is_empty());
        assert!(s.get_items(Some(2)).unwrap().is_empty());
        assert_eq!(s.pop_item().unwrap(), None);
        assert_eq!(s.get_snapshot(Some(2)).unwrap().items, Vec::<String>::new());
        assert!(!memory.take_calls().iter().any(|c| is_write(c)));
        assert_eq!(memory.items(), stored);
    }
}

#[test]
fn pop_returns_the_newest_live_item_and_keeps_unreadable_ones_byte_for_byte() {
    let mut stored = sealed(KEY, ID, &items(0..2), T);
    let foreign = sealed(OTHER_KEY, ID, &items(9..10), T);
    stored.push(plain(0));
    stored.extend(foreign.iter().cloned());
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, Some(600), 100));

    assert_eq!(s.pop_item().unwrap(), Some(items(1..2).remove(0)));
    assert_eq!(
        memory.take_calls(),
        [
            "get-snapshot(Some(1))",
            "get-snapshot(Some(2))",
            "get-snapshot(Some(4))",
            "replace-suffix(1, 2)"
        ]
    );
    assert_eq!(
        memory.items(),
        vec![stored[0].clone(), plain(0), foreign[0].clone()]
    );
    assert_eq!(s.pop_item().unwrap(), Some(items(0..1).remove(0)));
    assert_eq!(memory.items(), vec![plain(0), foreign[0].clone()]);
    memory.take_calls();
    assert_eq!(s.pop_item().unwrap(), None);
    assert_eq!(memory.items(), vec![plain(0), foreign[0].clone()]);
    assert!(!memory.take_calls().iter().any(|c| is_write(c)));

    // The common case: the newest item is live: one read of one item, one write.
    s.add_items(&items(5..7)).unwrap();
    memory.take_calls();
    assert_eq!(s.pop_item().unwrap(), Some(items(6..7).remove(0)));
    assert_eq!(
        memory.take_calls(),
        ["get-snapshot(Some(1))", "replace-suffix(3, 0)"]
    );
}

#[test]
fn pop_drops_only_authenticated_expired_items_after_the_one_it_returns() {
    let old_before = sealed(KEY, ID, &items(0..1), T);
    let live = sealed(KEY, ID, &items(1..2), T + 500);
    let old_after = sealed(KEY, ID, &items(2..4), T);
    let foreign_old = sealed(OTHER_KEY, ID, &items(8..9), T);
    let stored = [
        old_before.clone(),
        live,
        vec![old_after[0].clone(), plain(1)],
        foreign_old.clone(),
        vec![old_after[1].clone()],
    ]
    .concat();
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T + 700);
    let s = open(ID, &memory, &platform, &settings(KEY, Some(600), 100));
    assert_eq!(s.pop_item().unwrap(), Some(items(1..2).remove(0)));
    assert_eq!(
        memory.items(),
        vec![old_before[0].clone(), plain(1), foreign_old[0].clone()]
    );
    // Nothing live left: the expired item before it stays.
    assert_eq!(s.pop_item().unwrap(), None);
    assert_eq!(memory.items().len(), 3);
}

#[test]
fn pop_retries_when_another_writer_gets_in_between() {
    let stored = sealed(KEY, ID, &items(0..3), T);
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 100));
    memory.interfere.set(1);
    assert_eq!(s.pop_item().unwrap(), Some(items(2..3).remove(0)));
    let after = memory.items();
    assert_eq!(after[..2], stored[..2]);
    assert_eq!(after.len(), 3, "the other writer's item is kept");
    assert!(after[2].contains("another writer"));
    assert_eq!(
        platform.slept.borrow().len(),
        1,
        "one pause before the retry"
    );

    // Another writer gets in before every write: each attempt's read finds one more of its
    // (unreadable) items, so the scan bound must cover them all.
    memory.interfere.set(u32::MAX);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 1000));
    assert_eq!(s.pop_item().unwrap_err(), Error::Conflict(MAX_ATTEMPTS));
    let live: Vec<String> = memory
        .items()
        .iter()
        .filter(|i| {
            matches!(
                codec::open(&settings(KEY, None, 1).key.derive(ID), i, None),
                Opened::Live(_)
            )
        })
        .cloned()
        .collect();
    assert_eq!(live, stored[..2], "nothing of ours removed");
    // A jittered pause before every retry, growing past the first one's 4 ms up to 250 ms.
    let slept = platform.slept.borrow();
    assert_eq!(slept.len() as u32, 1 + MAX_ATTEMPTS - 1);
    let ms = std::time::Duration::from_millis;
    assert!(slept.iter().any(|d| *d > ms(4)), "{slept:?}");
    assert!(slept.iter().all(|d| *d <= ms(250)), "{slept:?}");
}

#[test]
fn snapshots_and_replace_suffix_work_in_live_positions() {
    let l = |r| sealed(KEY, ID, &items(r), T);
    let foreign = sealed(OTHER_KEY, ID, &items(90..91), T).remove(0);
    let stored = [
        l(0..1),
        vec![plain(0)],
        l(1..2),
        vec![foreign.clone()],
        l(2..4),
    ]
    .concat();
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 100));

    let snap = s.get_snapshot(Some(2)).unwrap();
    assert_eq!(snap.items, items(2..4));
    assert_eq!(snap.first, 4);
    // Replace the snapshot's second item.
    s.replace_suffix(snap.first + 1, &items(50..51), Some(&snap.version))
        .unwrap();
    assert_eq!(
        s.get_items(None).unwrap(),
        [items(0..3), items(50..51)].concat()
    );
    // A stale version: `changed`, nothing written.
    let before = memory.items();
    assert_eq!(
        s.replace_suffix(snap.first, &items(60..61), Some(&snap.version))
            .unwrap_err(),
        Error::Changed
    );
    assert_eq!(memory.items(), before);

    // Replace the newest three live items: the unreadable item among them stays.
    let snap = s.get_snapshot(Some(3)).unwrap();
    assert_eq!(snap.items, [items(1..3), items(50..51)].concat());
    assert_eq!(snap.first, 3);
    s.replace_suffix(snap.first, &items(70..71), Some(&snap.version))
        .unwrap();
    let after = memory.items();
    assert_eq!(after[..3], [stored[0].clone(), plain(0), foreign.clone()]);
    assert_eq!(
        s.get_items(None).unwrap(),
        [items(0..1), items(70..71)].concat()
    );

    // Past the end: invalid input. At the end: an append.
    let end = s.get_snapshot(Some(0)).unwrap();
    assert!(end.items.is_empty());
    assert_eq!(end.first, 4);
    assert!(matches!(
        s.replace_suffix(5, &items(1..2), None).unwrap_err(),
        Error::InvalidInput { .. }
    ));
    s.replace_suffix(end.first, &items(80..81), Some(&end.version))
        .unwrap();
    assert_eq!(
        s.get_items(None).unwrap(),
        [items(0..1), items(70..71), items(80..81)].concat()
    );

    // The whole snapshot's `first` (below the oldest live item): every live item replaced.
    let all = s.get_snapshot(None).unwrap();
    assert_eq!(all.first, 2);
    s.replace_suffix(0, &items(99..100), None).unwrap();
    assert_eq!(memory.items()[..2], [plain(0), foreign.clone()]);
    assert_eq!(s.get_items(None).unwrap(), items(99..100));

    // Bad items: refused before anything is read.
    memory.take_calls();
    assert!(matches!(
        s.replace_suffix(0, &["[]".to_string()], None).unwrap_err(),
        Error::InvalidInput {
            item_index: Some(0),
            ..
        }
    ));
    assert!(memory.take_calls().is_empty());
}

#[test]
fn replace_suffix_retries_unless_the_caller_expects_a_version() {
    let memory = Memory::with(&sealed(KEY, ID, &items(0..3), T));
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 100));
    // Without `expected`, `start` is read against the session as the retry finds it: the
    // other writer's item moved the end, so position 2 now names the second-newest live item.
    memory.interfere.set(1);
    s.replace_suffix(2, &items(10..11), None).unwrap();
    assert_eq!(
        s.get_items(None).unwrap(),
        [items(0..1), items(10..11)].concat()
    );
    assert!(memory.items()[1].contains("another writer"));

    let snap = s.get_snapshot(Some(1)).unwrap();
    memory.interfere.set(1);
    assert_eq!(
        s.replace_suffix(snap.first, &items(20..21), Some(&snap.version))
            .unwrap_err(),
        Error::Changed
    );
    memory.interfere.set(u32::MAX);
    assert_eq!(
        s.replace_suffix(0, &items(20..21), None).unwrap_err(),
        Error::Conflict(MAX_ATTEMPTS)
    );
}

#[test]
fn replace_keeps_unreadable_items_and_checks_the_version() {
    let old = sealed(KEY, ID, &items(5..6), T - 1000);
    let stored = [
        sealed(KEY, ID, &items(0..1), T),
        vec![plain(0)],
        old,
        sealed(KEY, ID, &items(1..2), T),
        sealed(OTHER_KEY, ID, &items(2..3), T),
    ]
    .concat();
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, Some(600), 100));
    let snap = s.get_snapshot(None).unwrap();
    assert_eq!(snap.items, items(0..2));

    memory.push(&[plain(1)]);
    let before = memory.items();
    assert_eq!(
        s.replace(&items(10..12), Some(&snap.version)).unwrap_err(),
        Error::Changed
    );
    assert_eq!(memory.items(), before);

    s.replace(&items(10..12), None).unwrap();
    let after = memory.items();
    assert_eq!(after[..3], [plain(0), stored[4].clone(), plain(1)]);
    assert_eq!(after.len(), 5);
    assert_eq!(s.get_items(None).unwrap(), items(10..12));

    memory.interfere.set(1);
    s.replace(&items(20..21), None).unwrap();
    assert_eq!(s.get_items(None).unwrap(), items(20..21));
}

#[test]
fn clear_ping_and_metadata_pass_through() {
    let mut stored = sealed(KEY, ID, &items(0..2), T);
    stored.push(plain(0));
    let memory = Memory::with(&stored);
    let platform = TestPlatform::at(T);
    let s = open(ID, &memory, &platform, &settings(KEY, None, 100));
    assert_eq!(s.id(), ID);
    s.ping().unwrap();
    assert_eq!(s.metadata().unwrap().created_at, Some(1));
    s.clear().unwrap();
    assert!(memory.items().is_empty());
    assert_eq!(memory.take_calls(), ["ping", "metadata", "clear"]);
}
