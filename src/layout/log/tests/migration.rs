//! Sessions in 0.1.0's format: read as they are, migrated by the first write, nothing lost.

use super::*;
use crate::item;
use crate::testing::Flavor;

/// Writes a format-1 session by hand, as 0.1.0 laid it out: batches in level 0, pages of
/// batches in level 1, a page of pages in level 2. Returns its items, oldest first.
fn write_v1(store: &MemStore) -> Vec<String> {
    let keys = Keys::new(BASE);
    let mut n = 0;
    let mut batch = |store: &MemStore, size: usize| {
        let id = format!("b{n:011}");
        n += 1;
        let made = items(&id, size);
        for (i, text) in made.iter().enumerate() {
            store.put_raw(
                &keys.v1_item(&id, i as u64),
                item::encode_string(text).as_bytes(),
            );
        }
        (id, made)
    };
    let mut oldest_first = Vec::new();
    // Level 2: one page of one level-1 page of two batches.
    let (b1, i1) = batch(store, 2);
    let (b2, i2) = batch(store, 3);
    store.put_raw(
        &keys.v1_page("p00000000001"),
        format!(r#"{{"e":[["{b1}",2],["{b2}",3]],"t":[null,null]}}"#).as_bytes(),
    );
    store.put_raw(&keys.v1_page("q00000000001"), br#"[["p00000000001",5]]"#);
    oldest_first.extend(i1);
    oldest_first.extend(i2);
    // Level 1: a page of two batches, the second partly popped (2 of 3 live).
    let (b3, i3) = batch(store, 2);
    let (b4, i4) = batch(store, 3);
    store.put_raw(
        &keys.v1_page("p00000000002"),
        format!(r#"{{"e":[["{b3}",2],["{b4}",2]]}}"#).as_bytes(),
    );
    oldest_first.extend(i3);
    oldest_first.extend(i4.into_iter().take(2));
    // Level 0: three batches.
    let mut level0 = Vec::new();
    for size in [1, 2, 4] {
        let (b, i) = batch(store, size);
        level0.push(format!(r#"["{b}",{size}]"#));
        oldest_first.extend(i);
    }
    let head = format!(
        r#"{{"v":1,"c":1700000000000,"u":1700000001000,"l":[[{}],[["p00000000002",4]],[["q00000000001",5]]],"o":["zz.0"],"n":[],"t":["{}"]}}"#,
        level0.join(","),
        keys.v1_item(&b4, 2)
    );
    store.put_raw(&keys.head(), head.as_bytes());
    store.put_raw(&keys.v1_recent(), b"[]");
    oldest_first
}

#[test]
fn a_v1_session_is_read_as_it_is() {
    let store = MemStore::new(Flavor::SQL);
    let want = write_v1(&store);
    let before = store.keys();
    let reader = log(&store);
    assert_eq!(all(&reader), want);
    let s = block_on(reader.snapshot(Some(3), Mode::Consecutive)).unwrap();
    assert_eq!(s.items, want[want.len() - 3..]);
    assert!(s.version.starts_with("v1."));
    let t = block_on(reader.timestamps()).unwrap();
    assert_eq!(t.created_at, Some(1_700_000_000_000));
    assert_eq!(store.keys(), before, "reads write nothing");
}

#[test]
fn the_first_write_migrates_and_deletes_the_old_keys() {
    for flavor in [Flavor::REDIS, Flavor::SQL, Flavor::PLAIN] {
        let store = MemStore::new(flavor);
        let mut want = write_v1(&store);
        let writer = log(&store);
        add(&writer, &items("new", 2)).unwrap();
        want.extend(items("new", 2));
        assert_eq!(all(&log(&store)), want, "{flavor:?}");
        let head = stored_head(&store);
        assert_eq!(head.version, 2);
        assert!(head.legacy.is_none());
        assert_eq!(head.created, Some(1_700_000_000_000));
        let keys = Keys::new(BASE);
        assert!(
            store
                .keys()
                .iter()
                .all(|k| !keys.is_v1_key(k) && *k != keys.v1_recent()),
            "{flavor:?}: {:?}",
            store.keys()
        );
        // Pops and clears work on the migrated session.
        assert_eq!(block_on(writer.pop_item()).unwrap(), want.pop());
        block_on(writer.clear()).unwrap();
        assert_eq!(store.keys(), vec![keys.head()]);
    }
}

#[test]
fn a_pop_or_a_clear_migrates_too() {
    let store = MemStore::new(Flavor::REDIS);
    let mut want = write_v1(&store);
    assert_eq!(block_on(log(&store).pop_item()).unwrap(), want.pop());
    assert_eq!(all(&log(&store)), want);
    let store = MemStore::new(Flavor::REDIS);
    write_v1(&store);
    block_on(log(&store).clear()).unwrap();
    assert!(all(&log(&store)).is_empty());
    assert_eq!(store.keys(), vec![Keys::new(BASE).head()]);
}

#[test]
fn a_version_read_before_migration_still_replaces() {
    let store = MemStore::new(Flavor::SQL);
    let old = write_v1(&store);
    let s = block_on(log(&store).snapshot(None, Mode::Consecutive)).unwrap();
    assert_eq!(s.items, old);
    let fresh = items("compacted", 2);
    let refs: Vec<&str> = fresh.iter().map(String::as_str).collect();
    block_on(log(&store).replace(None, &refs, Some(&s.version))).unwrap();
    assert_eq!(all(&log(&store)), fresh);
}
