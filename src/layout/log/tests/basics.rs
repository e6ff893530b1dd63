//! Appends, reads, pops and clears on one instance and on fresh ones; what is stored.

use super::*;
use crate::error::Error;
use crate::layout::log::tiers::{LARGE_MAX, Tier};
use crate::testing::{Flavor, Request};

#[test]
fn reads_return_what_was_appended_at_every_length() {
    for n in [1, 10, 100, 1000, 5000] {
        let store = MemStore::new(Flavor::REDIS);
        let writer = log(&store);
        let want = items("m", n);
        fill(&writer, &want, 2);
        for reader in [&writer, &log(&store)] {
            assert_eq!(all(reader), want, "{n} items");
            let s = block_on(reader.snapshot(Some(20), Mode::Consecutive)).unwrap();
            let newest = &want[n.saturating_sub(20)..];
            assert_eq!(s.items, newest, "{n} items");
            assert_eq!(s.first, (n - newest.len()) as u64);
            assert_eq!(s.version, stored_head(&store).version_string());
        }
        assert!(
            unreferenced(&store).is_empty(),
            "{:?}",
            unreferenced(&store)
        );
    }
}

#[test]
fn storage_stays_within_the_key_and_byte_budgets() {
    // Keys at most 2 + items/256; bytes at most 1.3x what compat stores.
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    let all_items = items("m", 20_000);
    let mut n = 0;
    for target in [10usize, 100, 256, 1000, 10_000, 20_000] {
        fill(&writer, &all_items[n..target], 2);
        n = target;
        let keys = store.keys().len();
        let bytes = store.bytes();
        let compat = compat_bytes(&all_items[..n]);
        assert!(keys <= 2 + n / 256, "{n} items: {keys} keys");
        assert!(
            bytes as f64 <= 1.3 * compat as f64,
            "{n} items: {bytes} bytes against compat's {compat}"
        );
    }
    // Sealed chunks hold at most a chunk's worth each.
    let head = stored_head(&store);
    assert!(head.chunks.iter().all(|c| c.bytes() <= LARGE_MAX));
    assert!(
        head.chunks
            .iter()
            .filter(|c| c.tier() == Tier::Small)
            .count()
            <= 1
    );
}

#[test]
fn recent_reads_and_appends_touch_only_the_head() {
    let store = MemStore::new(Flavor::REDIS);
    fill(&log(&store), &items("m", 1000), 2);
    let fresh = log(&store);
    store.clear_requests();
    assert_eq!(block_on(fresh.get_items(Some(20))).unwrap().len(), 20);
    assert_eq!(store.requests(), vec![Request::Get(Keys::new(BASE).head())]);
    // A warm instance on Redis appends in one request (it knows the next etag).
    let warm = log(&store);
    add(&warm, &items("a", 2)).unwrap();
    store.clear_requests();
    add(&warm, &items("b", 2)).unwrap();
    assert_eq!(store.requests().len(), 1, "{:?}", store.requests());
}

#[test]
fn a_warm_whole_read_fetches_head_and_chunks_at_once() {
    let store = MemStore::new(Flavor::REDIS);
    let writer = log(&store);
    fill(&writer, &items("m", 3000), 2);
    let chunks = stored_head(&store).chunks.len();
    assert!(chunks >= 2, "{chunks}");
    // The writer has seen the head: head and chunks are requested together, once each.
    store.clear_requests();
    assert_eq!(all(&writer).len(), 3000);
    let requests = store.requests();
    assert_eq!(requests.len(), 1 + chunks, "{requests:?}");
}

#[test]
fn pops_return_items_newest_first_across_chunks() {
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    let want = items("m", 700);
    fill(&writer, &want, 3);
    let popper = log(&store);
    for expected in want.iter().rev() {
        assert_eq!(
            block_on(popper.pop_item()).unwrap().as_ref(),
            Some(expected)
        );
    }
    assert_eq!(block_on(popper.pop_item()).unwrap(), None);
    assert!(all(&writer).is_empty());
    // Every chunk is gone once the next write deleted the trash.
    add(&writer, &items("n", 1)).unwrap();
    assert_eq!(store.keys(), vec![Keys::new(BASE).head()]);
}

#[test]
fn clear_leaves_an_empty_head_and_deletes_the_chunks() {
    let store = MemStore::new(Flavor::REDIS);
    let writer = log(&store);
    fill(&writer, &items("m", 2000), 2);
    block_on(writer.clear()).unwrap();
    assert_eq!(store.keys(), vec![Keys::new(BASE).head()]);
    assert!(all(&log(&store)).is_empty());
    let t = block_on(writer.timestamps()).unwrap();
    assert_eq!((t.created_at, t.updated_at), (None, None));
    add(&writer, &items("n", 2)).unwrap();
    assert_eq!(all(&log(&store)), items("n", 2));
}

#[test]
fn big_batches_and_big_items_are_cut_into_chunks() {
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    let many = items("m", 30_000);
    add(&writer, &many).unwrap();
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(2 * 1024 * 1024));
    add(&writer, std::slice::from_ref(&big)).unwrap();
    let mut want = many;
    want.push(big);
    assert_eq!(all(&log(&store)), want);
    let head = stored_head(&store);
    assert!(head.chunks.len() >= 3);
    assert!(
        head.tail.is_empty(),
        "a 2 MiB item does not stay in the head"
    );
}

#[test]
fn a_corrupt_chunk_is_skipped_by_reads_and_never_rewritten() {
    let store = MemStore::new(Flavor::REDIS);
    let writer = log(&store);
    let want = items("m", 3000);
    fill(&writer, &want, 2);
    let head = stored_head(&store);
    assert!(head.chunks.len() >= 2);
    let small = head.chunks.last().unwrap().clone();
    let key = Keys::new(BASE).chunk(small.id());
    store.put_raw(&key, b"{\"not\":\"a chunk\"}");
    // Reads skip its items; a positive limit still counts readable items.
    let got = all(&log(&store));
    assert_eq!(got.len() as u64, want.len() as u64 - small.live());
    let limited = block_on(log(&store).get_items(Some(200))).unwrap();
    assert_eq!(limited.len(), 200);
    // A write that must rewrite it fails, typed, and changes nothing.
    let mut err = None;
    for i in 0..2000 {
        if let Err(e) = add(&log(&store), &items(&format!("x{i}"), 2)) {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(err, Some(Error::Corrupt(_))), "{err:?}");
    assert_eq!(store.raw(&key).unwrap(), b"{\"not\":\"a chunk\"}");
}

#[test]
fn a_corrupt_head_reads_empty_and_is_never_overwritten() {
    let store = MemStore::new(Flavor::REDIS);
    let key = Keys::new(BASE).head();
    for bad in [
        &b"[1,2]"[..],
        b"not json",
        br#"{"v":2,"g":"x"}"#,
        br#"{"v":9}"#,
    ] {
        store.put_raw(&key, bad);
        assert!(all(&log(&store)).is_empty());
        assert!(matches!(
            add(&log(&store), &items("m", 1)),
            Err(Error::Corrupt(_))
        ));
        assert!(matches!(
            block_on(log(&store).pop_item()),
            Err(Error::Corrupt(_))
        ));
        assert_eq!(store.raw(&key).unwrap(), bad);
    }
}

#[test]
fn items_round_trip_byte_for_byte() {
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    let odd = vec![
        r#"{"a":"\"quoted\" \\ back\\slash \n \u0000 é 😀 </script>"}"#.to_string(),
        "{ \"spaced\" :\n 1 }".to_string(),
        r#"{"n":1.0000000000000002,"big":12345678901234567890}"#.to_string(),
    ];
    for _ in 0..40 {
        add(&writer, &odd).unwrap();
    }
    let got = all(&log(&store));
    assert_eq!(got.len(), 120);
    assert!(got.chunks(3).all(|c| c == odd.as_slice()));
}

#[test]
fn a_missing_chunk_skips_its_items_and_pops_move_past_it() {
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    let want = items("m", 300);
    fill(&writer, &want, 2);
    let head = stored_head(&store);
    let lost = head.chunks.last().unwrap().clone();
    store.remove_raw(&Keys::new(BASE).chunk(lost.id()));
    let tail = head.tail.len();
    assert_eq!(all(&log(&store)).len(), want.len() - lost.live() as usize);
    // Pops take the tail, then drop the lost chunk and go on to older ones.
    let popper = log(&store);
    for expected in want.iter().rev().take(tail) {
        assert_eq!(
            block_on(popper.pop_item()).unwrap().as_ref(),
            Some(expected)
        );
    }
    let older = want.len() - tail - lost.live() as usize;
    let next = block_on(popper.pop_item()).unwrap();
    assert_eq!(next.as_ref(), want.get(older.wrapping_sub(1)));
}

#[test]
fn a_limited_read_past_a_huge_missing_chunk_does_not_allocate_for_it() {
    let store = MemStore::new(Flavor::SQL);
    store.put_raw(
        &Keys::new(BASE).head(),
        br#"{"v":2,"g":"aaaaaaaaaaaa","s":1,"k":[["bbbbbbbbbbbb",18446744073709551614,0,18446744073709551614,100,2,null]],"n":["{}"],"o":[]}"#,
    );
    assert!(matches!(
        block_on(log(&store).get_items(None)),
        Err(Error::TooManyItems(_))
    ));
    assert_eq!(
        block_on(log(&store).get_items(Some(5))).unwrap(),
        vec!["{}"]
    );
    let s = block_on(log(&store).snapshot(Some(5), Mode::Consecutive)).unwrap();
    assert_eq!((s.items.len(), s.first), (1, u64::MAX - 1));
}

#[test]
fn a_merge_never_carries_on_an_entry_it_cannot_read() {
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    fill(&writer, &items("m", 100), 2);
    let head = stored_head(&store);
    let small = head.chunks.last().unwrap().clone();
    let key = Keys::new(BASE).chunk(small.id());
    let raw = String::from_utf8(store.raw(&key).unwrap()).unwrap();
    // The first element becomes a lone surrogate: valid JSON text, not an item.
    let end = raw.find("\",\"").unwrap();
    let bad = format!("[\"\\ud800{}", &raw[end..]);
    store.put_raw(&key, bad.as_bytes());
    let mut err = None;
    for i in 0..100 {
        if let Err(e) = add(&writer, &items(&format!("x{i}"), 2)) {
            err = Some(e);
            break;
        }
    }
    assert!(matches!(err, Some(Error::Corrupt(_))), "{err:?}");
    assert_eq!(store.raw(&key).unwrap(), bad.as_bytes());
}

#[test]
fn a_warm_read_takes_live_items_from_the_head_it_reads_not_the_one_it_guessed_from() {
    let store = MemStore::new(Flavor::REDIS);
    let writer = log(&store);
    let mut want = items("m", 3000);
    fill(&writer, &want, 10);
    let reader = log(&store);
    assert_eq!(all(&reader), want);
    // Pops through the tail and into a chunk: the chunk stays, with fewer live items.
    let tail = stored_head(&store).tail.len();
    for _ in 0..tail + 40 {
        want.pop();
        block_on(writer.pop_item()).unwrap();
    }
    assert_eq!(all(&reader), want);
    assert_eq!(
        block_on(reader.get_items(Some(30))).unwrap(),
        want[want.len() - 30..]
    );
}
