//! Time to live: the session expires as a whole, head first, and no live head ever names an
//! expired chunk, also when every request is slow.

use std::time::Duration;

use super::*;
use crate::testing::{Action, Flavor};

const T: u32 = 60;

fn ttl_log(store: &MemStore) -> Log<MemStore> {
    Log::new(store.clone(), BASE, Ttl::new(Some(T), 2_000), None)
}

#[test]
fn chunks_outlive_the_head() {
    let store = MemStore::new(Flavor::REDIS);
    let writer = ttl_log(&store);
    fill(&writer, &items("m", 1000), 2);
    let keys = Keys::new(BASE);
    let head_expiry = store.expiry(&keys.head()).unwrap();
    let head = stored_head(&store);
    assert!(!head.chunks.is_empty());
    for c in &head.chunks {
        let chunk_expiry = store.expiry(&keys.chunk(c.id())).unwrap();
        assert!(chunk_expiry > head_expiry + u64::from(T) * 500, "{c:?}");
        assert_eq!(c.expires(), Some(chunk_expiry));
    }
}

#[test]
fn a_session_written_every_half_ttl_never_loses_an_item_however_slow() {
    for delay_ms in [0u64, 1_900] {
        let store = MemStore::new(Flavor::REDIS);
        // Every request takes `delay_ms` (just under the timeout) before it is applied.
        let s = store.clone();
        store.hook(move |_, _| {
            s.advance(Duration::from_millis(delay_ms));
            Action::Proceed
        });
        let writer = ttl_log(&store);
        let mut want = Vec::new();
        for round in 0..40 {
            let batch = items(&format!("r{round}"), 30);
            add(&writer, &batch).unwrap();
            want.extend(batch);
            assert_eq!(
                all(&ttl_log(&store)),
                want,
                "round {round}, delay {delay_ms}"
            );
            store.advance(Duration::from_secs(u64::from(T) / 2));
        }
    }
}

#[test]
fn a_session_left_alone_expires_head_first_then_entirely() {
    let store = MemStore::new(Flavor::SQL);
    fill(&ttl_log(&store), &items("m", 1000), 2);
    store.advance(Duration::from_secs(u64::from(T) + 1));
    assert!(all(&ttl_log(&store)).is_empty());
    assert!(!store.keys().is_empty(), "chunks outlive the head");
    store.advance(Duration::from_secs(u64::from(T) + 3));
    assert!(store.keys().is_empty(), "{:?}", store.keys());
}

#[test]
fn refreshing_costs_one_write_per_chunk() {
    let store = MemStore::new(Flavor::SQL);
    let writer = ttl_log(&store);
    fill(&writer, &items("m", 5000), 5);
    let chunks = stored_head(&store).chunks.len();
    store.advance(Duration::from_secs(u64::from(T) / 2 + 1));
    store.clear_requests();
    add(&writer, &items("n", 1)).unwrap();
    let chunk_reads = store
        .requests()
        .iter()
        .filter(|r| matches!(r, crate::testing::Request::Get(k) if k.contains(":c:")))
        .count();
    assert_eq!(chunk_reads, chunks);
    let head = stored_head(&store);
    let now = crate::store::Store::now_ms(&store);
    assert!(
        head.chunks
            .iter()
            .all(|c| !writer.ttl().refresh_due(c.expires(), now))
    );
}
