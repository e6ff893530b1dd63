//! The log layout: costs independent of history length, round trips, many writers, TTL over
//! several keys, and what is stored.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::ensure;
use dapr_session_host_tests::dapr_server::{
    Action, DaprServer, Fault, Route, ServerConfig, StoreConfig,
};
use dapr_session_host_tests::host::{Instance, SessionHandle};
use serde_json::Value;

use super::concurrency::check_batches;
use super::{contents, messages, msg, session_error, traced};
use crate::harness::{CaseResult, Ctx};

/// Adds `batches` batches of `per` items named `{prefix} b{b} i{i}`.
async fn fill(
    inst: &mut Instance,
    s: SessionHandle,
    prefix: &str,
    batches: usize,
    per: usize,
) -> anyhow::Result<()> {
    for b in 0..batches {
        let batch: Vec<String> = (0..per)
            .map(|i| msg("user", &format!("{prefix} b{b} i{i}")))
            .collect();
        inst.add_items(s, &batch).await?;
    }
    Ok(())
}

/// The keys are a head, the recent key, and one key per item; items are JSON strings holding
/// the item.
pub async fn log_layout_keys(ctx: Ctx) -> CaseResult {
    let id = ctx.id("keys");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "a"), msg("assistant", "b")])
        .await?;
    inst.add_items(s, &[msg("user", "c")]).await?;
    let head: Value = serde_json::from_slice(
        &ctx.backend
            .get_bytes(&format!("{id}:head"))
            .await?
            .unwrap_or_default(),
    )?;
    let batches = head["l"][0].as_array().cloned().unwrap_or_default();
    ensure!(batches.len() == 2, "{head}");
    ensure!(batches[0][1] == 2 && batches[1][1] == 1, "{head}");
    // A session the head's tail holds whole has no recent key yet.
    let mut keys = vec![format!("{id}:head")];
    for b in &batches {
        let nonce = b[0].as_str().unwrap_or_default();
        for i in 0..b[1].as_u64().unwrap_or(0) {
            let key = format!("{id}:i:{nonce}:{i}");
            let stored = ctx.backend.get_bytes(&key).await?.unwrap_or_default();
            let v: Value = serde_json::from_slice(&stored)?;
            ensure!(v.is_string(), "{key} holds {v}");
            keys.push(key);
        }
    }
    let mut listed = ctx.backend.keys(&format!("{id}:")).await?;
    listed.sort();
    keys.sort();
    ensure!(listed == keys, "stored {listed:?}, expected {keys:?}");
    Ok(())
}

/// Round trips per operation, single writer (counted by the host; requests in flight together
/// count once): the head and the newest items are fetched together, and a write bets on the
/// etag last read (or, on Redis, on the one its own commit produced).
pub async fn round_trips_per_operation(ctx: Ctx) -> CaseResult {
    let (mut inst, traffic) = traced(&ctx).await?;
    let id = ctx.id("trips");
    let s = ctx.open(&mut inst, &id).await?;
    fill(&mut inst, s, "t", 120, 2).await?;
    let redis = ctx.backend.kind == crate::backend::Kind::DaprdRedis;
    let trips = |what: &str| {
        let (n, r) = (traffic.round_trips(), traffic.requests());
        traffic.clear();
        println!(
            "{}: {what}: {n} round trips, {r} requests",
            ctx.backend.kind.name()
        );
        n
    };
    trips("fill");
    let expect = |what: &str, n: usize, max: usize| {
        ensure!(n <= max, "{what}: {n} round trips, expected at most {max}");
        Ok(())
    };
    inst.get_items(s, Some(20)).await?;
    expect("get(20)", trips("get(20)"), 1)?;
    inst.add_items(s, &[msg("user", "q"), msg("assistant", "a")])
        .await?;
    expect("add after a read", trips("add after a read"), 1)?;
    inst.add_items(s, &[msg("user", "q"), msg("assistant", "a")])
        .await?;
    expect(
        "add after an add",
        trips("add after an add"),
        if redis { 1 } else { 2 },
    )?;
    inst.pop_item(s).await?;
    expect("pop", trips("pop"), 2)?;
    inst.get_items(s, Some(20)).await?;
    expect("get(20) after a pop", trips("get(20) after a pop"), 1)?;
    // The whole session (243 items: pages, the recent key, item keys), guessed from the head
    // this instance last saw and fetched with the head.
    inst.get_items(s, None).await?;
    expect("get() with an index level", trips("get()"), 1)?;
    // Another instance has seen nothing: the head, then everything else in one request.
    let (mut other, other_traffic) = traced(&ctx).await?;
    let o = ctx.open(&mut other, &id).await?;
    let all = other.get_items(o, None).await?;
    ensure!(all.len() == 243, "{} items", all.len());
    let n = other_traffic.round_trips();
    println!(
        "{}: get() by a new instance: {n} round trips",
        ctx.backend.kind.name()
    );
    expect("get() by a new instance", n, 2)?;
    Ok(())
}

/// Serverless hosts run every request in a fresh instance, which has seen nothing: each add
/// takes 2 round trips (read the head, commit), 3 when the recent key takes in the batches
/// that left the tail (once per 8 items, not on every add), and a whole read takes 2.
pub async fn fresh_instance_per_operation(ctx: Ctx) -> CaseResult {
    let id = ctx.id("fresh");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    fill(&mut inst, s, "f", 60, 2).await?;
    let (mut trips, mut recent_writes) = (Vec::new(), 0);
    for b in 0..24 {
        let (mut inst, traffic) = traced(&ctx).await?;
        let s = ctx.open(&mut inst, &id).await?;
        inst.add_items(s, &[msg("user", &format!("q{b}")), msg("assistant", "a")])
            .await?;
        trips.push(traffic.round_trips());
        recent_writes += traffic
            .exchanges()
            .iter()
            .filter(|e| {
                e.method == "POST"
                    && !e.uri.contains("/bulk")
                    && String::from_utf8_lossy(&e.body).contains(&format!("\"{id}:r\""))
            })
            .count();
    }
    println!(
        "{}: round trips per add {trips:?}, recent key written {recent_writes} times",
        ctx.backend.kind.name()
    );
    // A fresh instance reads the head (asking the sidecar about the store at the same time)
    // and commits; one add in four also reads the batches for the recent key, and one here
    // spills level 0 into a page.
    ensure!(
        trips.iter().all(|&t| t <= 3),
        "round trips per add: {trips:?}"
    );
    ensure!(
        trips.iter().filter(|&&t| t == 3).count() <= 24 / 4 + 1,
        "round trips per add: {trips:?}"
    );
    ensure!(
        (4..=8).contains(&recent_writes),
        "the recent key was written {recent_writes} times for 48 items"
    );
    let (mut reader, traffic) = traced(&ctx).await?;
    let r = ctx.open(&mut reader, &id).await?;
    let all = reader.get_items(r, None).await?;
    ensure!(all.len() == 168, "{} items", all.len());
    let n = traffic.round_trips();
    ensure!(n <= 2, "get() by a fresh instance: {n} round trips");
    let texts = contents(&all);
    ensure!(texts.last().map(String::as_str) == Some("a"), "{texts:?}");
    Ok(())
}

/// On a store without transactions the same operations work, without any transaction
/// request: items go first, then the head (add: 3 round trips).
pub async fn works_without_transactions(ctx: Ctx) -> CaseResult {
    let server = DaprServer::start(ServerConfig {
        stores: vec![StoreConfig {
            name: "plain".into(),
            transactional: false,
        }],
        ..ServerConfig::default()
    })
    .await?;
    let mut config = dapr_session_host_tests::host::config(&server.endpoint(), "plain");
    config.layout = Some(ctx.layout);
    let (mut inst, traffic) = traced(&ctx).await?;
    let id = ctx.id("plain");
    let s = inst.open(&id, &config).await?;
    fill(&mut inst, s, "p", 100, 2).await?;
    traffic.clear();
    inst.add_items(s, &[msg("user", "q"), msg("assistant", "a")])
        .await?;
    ensure!(
        traffic.requests() == 3,
        "add: {} requests",
        traffic.requests()
    );
    // Two writers at once still keep batches whole.
    let mut tasks = Vec::new();
    for w in 0..2 {
        let mut i = ctx.instance().await?;
        let s = i.open(&id, &config).await?;
        tasks.push(tokio::spawn(async move {
            for b in 0..15 {
                let batch: Vec<String> = (0..3)
                    .map(|n| msg("user", &format!("w{w} b{b} i{n}")))
                    .collect();
                i.add_items(s, &batch).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let all = contents(&inst.get_items(s, None).await?);
    check_batches(&all[202..], 2, 15, 3)?;
    while inst.pop_item(s).await?.is_some() {}
    ensure!(inst.get_items(s, None).await?.is_empty());
    let tx = server
        .stats()
        .log()
        .iter()
        .filter(|l| l.route == Route::Transaction)
        .count();
    ensure!(
        tx == 0,
        "{tx} transaction requests to a store without transactions"
    );
    Ok(())
}

/// Bytes and requests of `add-items` (a 2-item turn), `pop-item` and `get-items(limit=20)`
/// on sessions of 10, 1,000 and 10,000 items, from the test server's counters.
async fn bytes_per_operation(
    ctx: &Ctx,
    per_batch: usize,
) -> anyhow::Result<Vec<(usize, (u64, u64), (u64, u64), (u64, u64))>> {
    let Some(server) = ctx.backend.server.as_ref() else {
        anyhow::bail!("needs the test server's counters");
    };
    let mut inst = ctx.instance().await?;
    let mut rows = Vec::new();
    for size in [10usize, 1_000, 10_000] {
        let id = ctx.id(&format!("bytes-{size}"));
        let s = ctx.open(&mut inst, &id).await?;
        let mut filled = 0;
        while filled < size {
            let n = per_batch.min(size - filled);
            inst.add_items(s, &messages(&format!("h{filled}"), n))
                .await?;
            filled += n;
        }
        // Writes are averaged over 32 in a row: one in 32 appends also writes a page.
        let mut measure = async |op: &str| -> anyhow::Result<(u64, u64)> {
            let runs = if op == "get" { 1 } else { 32 };
            let before = server.stats().snapshot();
            for _ in 0..runs {
                match op {
                    "add" => {
                        inst.add_items(s, &[msg("user", "question?"), msg("assistant", "answer.")])
                            .await?
                    }
                    "pop" => {
                        inst.pop_item(s).await?;
                    }
                    _ => {
                        let got = inst.get_items(s, Some(20)).await?;
                        ensure!(got.len() == 20.min(size + 32), "get returned {}", got.len());
                    }
                }
            }
            let d = server.stats().snapshot().since(&before);
            Ok((d.bytes() / runs, d.requests().div_ceil(runs)))
        };
        let add = measure("add").await?;
        let pop = measure("pop").await?;
        let get = measure("get").await?;
        rows.push((size, add, pop, get));
    }
    println!(
        "{} layout, bytes (requests) per operation:",
        crate::harness::layout_name(ctx.layout)
    );
    for (size, add, pop, get) in &rows {
        println!(
            "  {size:>6} items: add {:>8} B ({}), pop {:>8} B ({}), get(20) {:>8} B ({})",
            add.0, add.1, pop.0, pop.1, get.0, get.1
        );
    }
    Ok(rows)
}

/// The log layout moves the same bytes at 10,000 items as at 10, give or take bounded
/// constants (the head's index and tail, the recent key), in at most 3 round trips.
pub async fn bytes_independent_of_history_length(ctx: Ctx) -> CaseResult {
    // Batches of 5, as a busy agent's turns would be: 2,000 batches at 10,000 items.
    let rows = bytes_per_operation(&ctx, 5).await?;
    // What grows with the session is bounded: the head's index (at most 2 * 32 entries per
    // level), its tail (16 KiB), the recent key (16 KiB) and, once in 32 appends, a page.
    const SLACK: u64 = 40 * 1024;
    let (_, small_add, small_pop, small_get) = rows[0];
    for (size, add, pop, get) in &rows[1..] {
        ensure!(
            add.0 <= small_add.0 + SLACK,
            "add at {size}: {} B vs {} B at 10",
            add.0,
            small_add.0
        );
        ensure!(
            pop.0 <= small_pop.0 + SLACK,
            "pop at {size}: {} B vs {} B at 10",
            pop.0,
            small_pop.0
        );
        ensure!(
            get.0 <= small_get.0 + SLACK,
            "get at {size}: {} B vs {} B at 10",
            get.0,
            small_get.0
        );
        ensure!(
            add.1 <= 3 && pop.1 <= 3 && get.1 <= 3,
            "round trips at {size}: {add:?} {pop:?} {get:?}"
        );
    }
    Ok(())
}

/// For contrast: the upstream layout moves the whole history on every operation.
pub async fn compat_bytes_grow_with_history(ctx: Ctx) -> CaseResult {
    // Built in batches of 100: each append rewrites the whole history.
    let rows = bytes_per_operation(&ctx, 100).await?;
    let (_, small_add, small_pop, small_get) = rows[0];
    let (_, big_add, big_pop, big_get) = rows[2];
    ensure!(
        big_add.0 > 100 * small_add.0
            && big_pop.0 > 100 * small_pop.0
            && big_get.0 > 100 * small_get.0
    );
    Ok(())
}

/// Eight instances append 50 batches of 3 each to one session at once: exactly 1,200 items,
/// every batch contiguous, each writer's batches in its own order.
pub async fn many_writers_keep_batches_contiguous(ctx: Ctx) -> CaseResult {
    const WRITERS: usize = 8;
    const BATCHES: usize = 50;
    let id = ctx.id("writers");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        tasks.push(tokio::spawn(async move {
            for b in 0..BATCHES {
                let batch: Vec<String> = (0..3)
                    .map(|i| msg("user", &format!("w{w} b{b} i{i}")))
                    .collect();
                inst.add_items(s, &batch).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let got = contents(&inst.get_items(s, None).await?);
    check_batches(&got, WRITERS, BATCHES, 3)?;
    // The newest 20 agree with the full read.
    ensure!(contents(&inst.get_items(s, Some(20)).await?) == got[got.len() - 20..]);
    Ok(())
}

/// Four instances pop a 300-item session (spread over index pages) at once: every item once,
/// each popper sees items newest first, nothing lost.
pub async fn concurrent_pops_across_pages(ctx: Ctx) -> CaseResult {
    let id = ctx.id("pops");
    let mut seed = ctx.instance().await?;
    let s = ctx.open(&mut seed, &id).await?;
    fill(&mut seed, s, "p", 150, 2).await?;
    let order: Vec<String> = contents(&seed.get_items(s, None).await?);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(item) = inst.pop_item(s).await? {
                mine.push(item);
            }
            anyhow::Ok(mine)
        }));
    }
    let position = |c: &String| order.iter().position(|o| o == c);
    let mut all = Vec::new();
    for t in tasks {
        let mine = contents(&t.await??);
        let positions: Vec<Option<usize>> = mine.iter().map(position).collect();
        ensure!(
            positions.windows(2).all(|w| w[0] > w[1]),
            "a popper saw items out of order"
        );
        all.extend(mine);
    }
    let unique: HashSet<&String> = all.iter().collect();
    ensure!(
        all.len() == 300 && unique.len() == 300,
        "{} pops, {} distinct",
        all.len(),
        unique.len()
    );
    ensure!(seed.get_items(s, None).await?.is_empty());
    Ok(())
}

/// A writer adds batches while another instance clears the session again and again: what
/// is left is whole batches, in order; never half a batch.
pub async fn clear_racing_add_is_all_or_nothing(ctx: Ctx) -> CaseResult {
    let id = ctx.id("clear-race");
    let mut writer = ctx.instance().await?;
    let ws = ctx.open(&mut writer, &id).await?;
    let mut clearer = ctx.instance().await?;
    let cs = ctx.open(&mut clearer, &id).await?;
    let adding = tokio::spawn(async move {
        fill(&mut writer, ws, "w0", 60, 3).await?;
        anyhow::Ok(writer)
    });
    let clearing = tokio::spawn(async move {
        for _ in 0..12 {
            clearer.clear(cs).await?;
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        anyhow::Ok(clearer)
    });
    let mut writer = adding.await??;
    clearing.await??;
    let got = contents(&writer.get_items(ws, None).await?);
    ensure!(
        got.len().is_multiple_of(3),
        "{} items: a batch was split",
        got.len()
    );
    let mut last = None;
    for chunk in got.chunks(3) {
        let b: usize = chunk[0]
            .split(' ')
            .nth(1)
            .and_then(|b| b.strip_prefix('b'))
            .and_then(|b| b.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("unexpected item {}", chunk[0]))?;
        for (i, item) in chunk.iter().enumerate() {
            ensure!(*item == format!("w0 b{b} i{i}"), "half a batch: {chunk:?}");
        }
        ensure!(last.is_none_or(|l| l < b), "batches out of order");
        last = Some(b);
    }
    // After the race, the session works as usual.
    writer.add_items(ws, &[msg("user", "after")]).await?;
    ensure!(contents(&writer.get_items(ws, Some(1)).await?) == ["after"]);
    Ok(())
}

/// Reads and pops that cross index pages: get(limit) reaches into pages, 200 pops come
/// back newest first, and popped keys are deleted by later writes.
pub async fn reads_and_pops_across_pages(ctx: Ctx) -> CaseResult {
    let id = ctx.id("pages");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    fill(&mut inst, s, "x", 200, 1).await?;
    let all = contents(&inst.get_items(s, None).await?);
    let want: Vec<String> = (0..200).map(|b| format!("x b{b} i0")).collect();
    ensure!(all == want);
    ensure!(contents(&inst.get_items(s, Some(150)).await?) == want[50..]);
    ensure!(contents(&inst.get_items(s, Some(1)).await?) == want[199..]);
    for b in (100..200).rev() {
        let popped = inst.pop_item(s).await?.map(|p| contents(&[p]));
        ensure!(
            popped == Some(vec![format!("x b{b} i0")]),
            "pop {b}: {popped:?}"
        );
    }
    ensure!(contents(&inst.get_items(s, None).await?) == want[..100]);
    inst.add_items(s, &[msg("user", "after")]).await?;
    // Popped items and pulled-back pages are gone from the store once a later write ran.
    let stored = ctx.backend.keys(&format!("{id}:i:")).await?;
    ensure!(
        stored.len() == 101,
        "{} item keys stored for 101 items",
        stored.len()
    );
    inst.clear(s).await?;
    let left = ctx.backend.keys(&format!("{id}:")).await?;
    ensure!(left == [format!("{id}:head")], "after clear: {left:?}");
    ensure!(inst.get_items(s, None).await?.is_empty());
    Ok(())
}

/// A commit whose answer is lost (connection reset after the store applied it) is recognised
/// on the next read: the batch is stored once, the pop returns its item once.
pub async fn ambiguous_commit_is_not_applied_twice(ctx: Ctx) -> CaseResult {
    let Some(server) = ctx.backend.server.as_ref() else {
        anyhow::bail!("needs the test server's fault injection");
    };
    let id = ctx.id("ambiguous");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "first")]).await?;
    server.faults().add(
        Fault::on(Route::Transaction, Action::ResetAfterApply).containing(format!("{id}:head")),
    );
    inst.add_items(s, &[msg("user", "second"), msg("assistant", "third")])
        .await?;
    ensure!(server.faults().pending() == 0, "the fault did not fire");
    ensure!(contents(&inst.get_items(s, None).await?) == ["first", "second", "third"]);
    server.faults().add(
        Fault::on(Route::Transaction, Action::ResetAfterApply).containing(format!("{id}:head")),
    );
    let popped = inst.pop_item(s).await?.map(|p| contents(&[p]));
    ensure!(popped == Some(vec!["third".to_string()]), "{popped:?}");
    ensure!(contents(&inst.get_items(s, None).await?) == ["first", "second"]);
    Ok(())
}

/// A head that does not parse reads as empty and is never overwritten.
pub async fn corrupt_head_is_never_overwritten(ctx: Ctx) -> CaseResult {
    let id = ctx.id("bad-head");
    let key = format!("{id}:head");
    ctx.backend
        .put_json(&key, &serde_json::json!({"v": "not a number", "l": 3}))
        .await?;
    let planted = ctx.backend.get_bytes(&key).await?;
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    ensure!(inst.get_items(s, None).await?.is_empty());
    for (op, r) in [
        ("add", inst.add_items(s, &[msg("user", "x")]).await),
        ("pop", inst.pop_item(s).await.map(|_| ())),
        ("clear", inst.clear(s).await),
    ] {
        let err = session_error(r)?;
        ensure!(
            matches!(err, dapr_session_host_tests::host::SessionError::Corrupt(_)),
            "{op}: {err:?}"
        );
    }
    ensure!(ctx.backend.get_bytes(&key).await? == planted);
    Ok(())
}

/// With a 6 s TTL: two instances write every 3 s (TTL/2) for 15 s and never lose an item;
/// then, 6 s after the last write (plus the store's expiry granularity), no key of the
/// session is left in the store, orphans of lost races included.
pub async fn ttl_slides_over_every_key(ctx: Ctx) -> CaseResult {
    const TTL: u32 = 6;
    let id = ctx.id("ttl");
    let mut config = ctx.config();
    config.ttl_seconds = Some(TTL);
    let mut a = ctx.instance().await?;
    let mut b = ctx.instance().await?;
    let sa = a.open(&id, &config).await?;
    let sb = b.open(&id, &config).await?;
    let mut expected = 0;
    for round in 0..6 {
        let (ia, ib) = (
            messages(&format!("a{round}"), 2),
            messages(&format!("b{round}"), 3),
        );
        let (ra, rb) = tokio::join!(a.add_items(sa, &ia), b.add_items(sb, &ib));
        ra?;
        rb?;
        expected += 5;
        let got = a.get_items(sa, None).await?;
        ensure!(
            got.len() == expected,
            "round {round}: {} items, expected {expected}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(u64::from(TTL) * 1000 / 2)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(TTL) + 15);
    loop {
        let left = ctx.backend.keys(&format!("{id}:")).await?;
        if left.is_empty() {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "keys still stored long after the TTL: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    ensure!(a.get_items(sa, None).await?.is_empty());
    Ok(())
}

/// Many quick operations in a row (each request on a fresh connection) never fail.
pub async fn many_quick_operations(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("quick")).await?;
    for i in 0..100 {
        inst.add_items(s, &[msg("user", &format!("{i}"))]).await?;
        inst.get_items(s, Some(1)).await?;
        if i % 3 == 0 {
            inst.pop_item(s).await?;
        }
    }
    ensure!(inst.get_items(s, None).await?.len() == 66);
    Ok(())
}
