//! Lost races, ambiguous commits, heads that move under a read, merges racing appends,
//! pops racing pops, clears racing appends: another writer is run at the chosen request.

use std::cell::Cell;

use super::*;
use crate::dapr::DaprError;
use crate::testing::{Action, Flavor, Request};

/// Whether `r` commits the head.
fn commits_head(r: &Request) -> bool {
    r.writes(&Keys::new(BASE).head())
}

/// A hook that runs `f` (another writer, on its own instance) the first time `when` matches.
fn once(
    when: impl Fn(&Request) -> bool + 'static,
    f: impl FnOnce(&MemStore) + 'static,
) -> impl FnMut(&Request, &MemStore) -> Action {
    let mut f = Some(f);
    move |r, store| {
        if when(r)
            && let Some(f) = f.take()
        {
            f(store);
        }
        Action::Proceed
    }
}

#[test]
fn a_lost_race_is_retried_on_the_new_head() {
    for flavor in [Flavor::REDIS, Flavor::SQL, Flavor::PLAIN] {
        let store = MemStore::new(flavor);
        fill(&log(&store), &items("base", 100), 2);
        let a = log(&store);
        store.hook(once(commits_head, |s| {
            add(&log(s), &items("b", 3)).unwrap()
        }));
        add(&a, &items("a", 3)).unwrap();
        let mut want = items("base", 100);
        want.extend(items("b", 3));
        want.extend(items("a", 3));
        assert_eq!(all(&log(&store)), want, "{flavor:?}");
    }
}

#[test]
fn an_ambiguous_commit_that_landed_is_not_applied_twice() {
    for flavor in [Flavor::REDIS, Flavor::SQL, Flavor::PLAIN] {
        let store = MemStore::new(flavor);
        let a = log(&store);
        fill(&a, &items("base", 10), 2);
        let fired = Cell::new(false);
        store.hook(move |r, _| {
            if commits_head(r) && !fired.replace(true) {
                Action::ApplyThenFail(DaprError::Timeout)
            } else {
                Action::Proceed
            }
        });
        add(&a, &items("a", 2)).unwrap();
        let mut want = items("base", 10);
        want.extend(items("a", 2));
        assert_eq!(all(&log(&store)), want, "{flavor:?}");
        // A pop whose answer is lost returns the item it popped, once.
        store.unhook();
        let fired = Cell::new(false);
        store.hook(move |r, _| {
            if commits_head(r) && !fired.replace(true) {
                Action::ApplyThenFail(DaprError::Interrupted("reset".into()))
            } else {
                Action::Proceed
            }
        });
        assert_eq!(block_on(a.pop_item()).unwrap(), want.pop());
        assert_eq!(all(&log(&store)), want);
    }
}

#[test]
fn an_ambiguous_commit_that_did_not_land_is_retried() {
    let store = MemStore::new(Flavor::SQL);
    let a = log(&store);
    let fired = Cell::new(false);
    store.hook(move |r, _| {
        if commits_head(r) && !fired.replace(true) {
            Action::Fail(DaprError::Timeout)
        } else {
            Action::Proceed
        }
    });
    add(&a, &items("a", 2)).unwrap();
    assert_eq!(all(&log(&store)), items("a", 2));
}

#[test]
fn a_read_whose_head_moves_starts_over() {
    let store = MemStore::new(Flavor::REDIS);
    let writer = log(&store);
    fill(&writer, &items("m", 3000), 2);
    let reader = log(&store);
    assert_eq!(all(&reader).len(), 3000);
    // While the reader fetches chunks, others flush and merge twice (the second commit
    // deletes what the first dropped), then clear and write anew.
    let chunk_key = Keys::new(BASE).chunk("");
    store.hook(once(
        move |r| matches!(r, Request::Get(k) if k.starts_with(&chunk_key)),
        |s| {
            let other = log(s);
            fill(&other, &items("x", 300), 2);
            block_on(other.clear()).unwrap();
            fill(&other, &items("y", 300), 2);
        },
    ));
    let got = all(&reader);
    assert_eq!(got, items("y", 300));
}

#[test]
fn a_merge_racing_an_append_loses_nothing() {
    for flavor in [Flavor::REDIS, Flavor::SQL, Flavor::PLAIN] {
        let store = MemStore::new(flavor);
        let a = log(&store);
        fill(&a, &items("base", 500), 2);
        // Fill the tail to the brim so that A's next append flushes and merges, and let B
        // append while A reads the chunk it merges.
        let chunk_prefix = Keys::new(BASE).chunk("");
        store.hook(once(
            move |r| matches!(r, Request::Get(k) if k.starts_with(&chunk_prefix)),
            |s| add(&log(s), &items("b", 1)).unwrap(),
        ));
        let mut want = items("base", 500);
        let mut i = 0;
        while store
            .requests()
            .iter()
            .all(|r| !matches!(r, Request::Get(k) if k.contains(":c:")))
            || i == 0
        {
            store.clear_requests();
            let batch = items(&format!("a{i}"), 2);
            add(&a, &batch).unwrap();
            want.extend(batch);
            i += 1;
            assert!(i < 100, "no flush");
        }
        let got = all(&log(&store));
        let b = items("b", 1);
        let at = got.iter().position(|x| *x == b[0]).expect("B's item");
        let mut without_b = got.clone();
        without_b.remove(at);
        assert_eq!(without_b, want, "{flavor:?}");
        // Nothing unreferenced is left once the next commit deleted the trash.
        add(&a, &items("z", 1)).unwrap();
        assert!(
            unreferenced(&store).is_empty(),
            "{flavor:?}: {:?}",
            unreferenced(&store)
        );
    }
}

#[test]
fn interleaved_writers_keep_batches_whole_and_in_order() {
    for flavor in [Flavor::REDIS, Flavor::SQL, Flavor::PLAIN] {
        let store = MemStore::new(flavor);
        let writers: Vec<Log<MemStore>> = (0..4).map(|_| log(&store)).collect();
        // At every third request, another writer appends a batch of its own.
        let counter = Rc::new(Cell::new(0u32));
        let next = Rc::new(Cell::new(0u32));
        let (c, n) = (Rc::clone(&counter), Rc::clone(&next));
        store.hook(move |_, s| {
            c.set(c.get() + 1);
            if c.get().is_multiple_of(3) {
                let k = n.get();
                n.set(k + 1);
                add(&log(s), &items(&format!("i{k}"), 3)).unwrap();
            }
            Action::Proceed
        });
        for round in 0..60 {
            for (w, writer) in writers.iter().enumerate() {
                add(writer, &items(&format!("w{w}r{round}"), 3)).unwrap();
            }
        }
        store.unhook();
        let got = all(&log(&store));
        let injected = next.get() as usize;
        assert_eq!(got.len(), (4 * 60 + injected) * 3, "{flavor:?}");
        // Every batch is contiguous, and each writer's batches are in order.
        for chunk in got.chunks(3) {
            assert!(
                chunk.iter().all(|x| tag_of(x) == tag_of(&chunk[0])),
                "{chunk:?}"
            );
        }
        for w in 0..4 {
            let rounds: Vec<usize> = got
                .iter()
                .step_by(3)
                .filter_map(|x| tag_of(x).strip_prefix(&format!("w{w}r"))?.parse().ok())
                .collect();
            assert_eq!(rounds, (0..60).collect::<Vec<_>>(), "{flavor:?}");
        }
        assert!(unreferenced(&store).is_empty() || flavor.redis);
    }
}

#[test]
fn racing_pops_never_return_an_item_twice() {
    let store = MemStore::new(Flavor::REDIS);
    fill(&log(&store), &items("m", 400), 2);
    let popped = Rc::new(std::cell::RefCell::new(Vec::new()));
    let p = Rc::clone(&popped);
    let counter = Cell::new(0u32);
    store.hook(move |r, s| {
        counter.set(counter.get() + 1);
        if commits_head(r)
            && counter.get().is_multiple_of(2)
            && let Some(item) = block_on(log(s).pop_item()).unwrap()
        {
            p.borrow_mut().push(item);
        }
        Action::Proceed
    });
    let a = log(&store);
    while let Some(item) = block_on(a.pop_item()).unwrap() {
        popped.borrow_mut().push(item);
    }
    let mut got = popped.borrow().clone();
    got.sort();
    let mut want = items("m", 400);
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn a_clear_racing_an_append_leaves_all_of_the_batch_or_none() {
    let store = MemStore::new(Flavor::SQL);
    fill(&log(&store), &items("base", 300), 2);
    let a = log(&store);
    store.hook(once(commits_head, |s| block_on(log(s).clear()).unwrap()));
    add(&a, &items("a", 5)).unwrap();
    // The clear landed first: the append follows it, whole.
    assert_eq!(all(&log(&store)), items("a", 5));
}

#[test]
fn redis_transactions_applied_in_part_leave_no_orphans() {
    let store = MemStore::new(Flavor::REDIS);
    let a = log(&store);
    fill(&a, &items("base", 60), 2);
    // A's flush commit races B: on Redis its chunk is written though the head is refused.
    store.hook(once(
        |r| matches!(r, Request::Transact(keys) if keys.iter().any(|k| k.contains(":c:"))),
        |s| add(&log(s), &items("b", 1)).unwrap(),
    ));
    for i in 0..10 {
        add(&a, &items(&format!("a{i}"), 2)).unwrap();
    }
    store.unhook();
    add(&a, &items("z", 1)).unwrap();
    assert!(
        unreferenced(&store).is_empty(),
        "{:?}",
        unreferenced(&store)
    );
}

/// A sidecar that never answers a write: every commit times out. The operation must end with
/// the ambiguous error it saw (`timeout`: "a write may have been applied"), not `conflict`
/// ("other writers kept changing the session; nothing of this call was applied"): no other
/// writer exists, and a timed-out commit may land later.
#[test]
fn commits_that_always_time_out_end_in_timeout_not_conflict() {
    use crate::dapr::DaprError;
    use crate::error::Error;
    use crate::testing::{Action, Flavor, Request};
    let store = MemStore::new(Flavor::SQL);
    let writer = log(&store);
    fill(&writer, &items("old", 3), 3);
    let head = Keys::new(BASE).head();
    store.hook(move |r: &Request, _| {
        if r.writes(&head) {
            Action::Fail(DaprError::Timeout)
        } else {
            Action::Proceed
        }
    });
    let refs = ["{\"role\":\"user\",\"content\":\"new\"}"];
    assert_eq!(
        block_on(writer.replace(None, &refs, None)),
        Err(Error::Timeout)
    );
    assert_eq!(block_on(writer.add_items(&refs)), Err(Error::Timeout));
}
