//! Retention (`max-items`) and history replacement (`replace`, `replace-suffix`).

use super::*;
use crate::error::Error;
use crate::testing::{Action, Flavor, Request};

fn bounded(store: &MemStore, max: u32) -> Log<MemStore> {
    Log::new(store.clone(), BASE, Ttl::new(None, 10_000), Some(max))
}

fn replace(
    log: &Log<MemStore>,
    start: Option<u64>,
    items: &[String],
    expected: Option<&str>,
) -> crate::error::Result<()> {
    let refs: Vec<&str> = items.iter().map(String::as_str).collect();
    block_on(log.replace(start, &refs, expected))
}

#[test]
fn max_items_keeps_the_newest_and_storage_flat() {
    for max in [5u32, 100, 3000] {
        let store = MemStore::new(Flavor::REDIS);
        let writer = bounded(&store, max);
        let every = items("m", 10_000);
        let mut peak_keys = 0;
        let mut peak_bytes = 0;
        for (i, batch) in every.chunks(2).enumerate() {
            add(&writer, batch).unwrap();
            if i > 2 * max as usize {
                peak_keys = peak_keys.max(store.keys().len());
                peak_bytes = peak_bytes.max(store.bytes());
            }
        }
        let got = all(&log(&store));
        assert_eq!(got, every[every.len() - max as usize..], "max {max}");
        // Flat: bounded by the window plus at most one sealed, one large and one small chunk.
        let window = compat_bytes(&every[..max as usize]);
        assert!(peak_keys <= 6, "max {max}: {peak_keys} keys");
        assert!(
            peak_bytes <= window + 2 * 1024 * 1024,
            "max {max}: {peak_bytes} bytes"
        );
    }
}

#[test]
fn replace_swaps_the_whole_history_atomically() {
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    fill(&writer, &items("old", 3000), 2);
    let s = block_on(writer.snapshot(None, Mode::Consecutive)).unwrap();
    let new = items("new", 40);
    replace(&writer, None, &new, Some(&s.version)).unwrap();
    assert_eq!(all(&log(&store)), new);
    // The old chunks are deleted by the next write.
    add(&writer, &items("z", 1)).unwrap();
    assert!(unreferenced(&store).is_empty());
    // A stale version is refused, and nothing changes.
    let before = store.raw(&Keys::new(BASE).head());
    assert_eq!(
        replace(&writer, None, &items("x", 1), Some(&s.version)),
        Err(Error::Changed)
    );
    assert_eq!(store.raw(&Keys::new(BASE).head()), before);
    // Unconditional: always.
    replace(&writer, None, &[], None).unwrap();
    assert!(all(&log(&store)).is_empty());
}

#[test]
fn replace_suffix_keeps_every_older_item_byte_for_byte() {
    let store = MemStore::new(Flavor::REDIS);
    let writer = log(&store);
    let old = items("old", 2500);
    fill(&writer, &old, 2);
    for start in [2499u64, 2400, 1700, 1000, 3] {
        let s = block_on(writer.snapshot(None, Mode::Consecutive)).unwrap();
        let keep = s.items[..start as usize].to_vec();
        let compacted = items(&format!("c{start}"), 3);
        replace(&writer, Some(start), &compacted, Some(&s.version)).unwrap();
        let mut want = keep;
        want.extend(compacted);
        assert_eq!(all(&log(&store)), want, "start {start}");
    }
    // A limited snapshot gives the position to replace from.
    let s = block_on(writer.snapshot(Some(2), Mode::Consecutive)).unwrap();
    replace(&writer, Some(s.first), &items("last", 1), Some(&s.version)).unwrap();
    assert_eq!(all(&log(&store)).last().unwrap(), &items("last", 1)[0]);
    // Past the end is invalid input.
    let len = all(&log(&store)).len() as u64;
    assert!(matches!(
        replace(&writer, Some(len + 1), &[], None),
        Err(Error::InvalidInput { .. })
    ));
}

#[test]
fn replace_racing_appends_is_all_old_or_all_new() {
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    fill(&writer, &items("old", 200), 2);
    let s = block_on(writer.snapshot(None, Mode::Consecutive)).unwrap();
    // Another instance appends just before the replace commits.
    let head = Keys::new(BASE).head();
    let mut fired = false;
    store.hook(move |r: &Request, st: &MemStore| {
        if r.writes(&head) && !fired {
            fired = true;
            add(&log(st), &items("racer", 2)).unwrap();
        }
        Action::Proceed
    });
    // Conditional: refused, the session keeps the old history and the racer's batch.
    assert_eq!(
        replace(&writer, None, &items("new", 5), Some(&s.version)),
        Err(Error::Changed)
    );
    let mut want = items("old", 200);
    want.extend(items("racer", 2));
    assert_eq!(all(&log(&store)), want);
    // Unconditional: wins whole; an append after it follows the new history.
    store.unhook();
    replace(&writer, None, &items("new", 5), None).unwrap();
    add(&log(&store), &items("after", 1)).unwrap();
    let mut want = items("new", 5);
    want.extend(items("after", 1));
    assert_eq!(all(&log(&store)), want);
}

#[test]
fn an_empty_session_has_version_zero() {
    let store = MemStore::new(Flavor::SQL);
    let s = block_on(log(&store).snapshot(None, Mode::Consecutive)).unwrap();
    assert_eq!(s.version, "0");
    replace(&log(&store), None, &items("a", 1), Some("0")).unwrap();
    assert_eq!(
        replace(&log(&store), None, &items("b", 1), Some("0")),
        Err(Error::Changed)
    );
}

/// `replace` checks items as `add-items` does: one whose stored form cannot fit in a request
/// to the sidecar (daprd takes at most 4 MiB) is `invalid-input` naming it, and nothing is
/// sent. (`add-items` does this; `replace` sends it, and daprd refuses the body.)
#[test]
fn replace_refuses_an_item_too_big_for_a_request_as_add_does() {
    use crate::error::Error;
    use crate::layout::log::MAX_ITEM_BYTES;
    let store = MemStore::new(crate::testing::Flavor::SQL);
    let writer = log(&store);
    fill(&writer, &items("old", 3), 3);
    let big = format!(
        r#"{{"role":"user","content":"{}"}}"#,
        "x".repeat(MAX_ITEM_BYTES + 1)
    );
    let refs = [r#"{"role":"user","content":"ok"}"#, big.as_str()];
    assert!(matches!(
        block_on(writer.add_items(&refs)),
        Err(Error::InvalidInput { .. })
    ));
    store.clear_requests();
    let replaced = block_on(writer.replace(None, &refs, None));
    assert!(
        matches!(replaced, Err(Error::InvalidInput { .. })),
        "{replaced:?}"
    );
    assert!(
        store.requests().is_empty(),
        "sent {:?}",
        store.requests().len()
    );
}
