//! Costs of the log layout (format 2: a head holding the newest items, chunks holding the
//! rest): round trips per operation on warm and fresh instances, and bytes per operation
//! independent of history length (against the compat layout's, which grow with it).

use anyhow::ensure;

use super::stored_log::{head_of, upserts};
use super::{contents, fill, messages, msg, traced};
use crate::harness::{CaseResult, Ctx};

/// Round trips per operation, single writer (counted by the host; requests in flight together
/// count once): the head alone for reads within the tail, a read and a commit for writes (the
/// commit alone on Redis, which bets on the etag its own commit produced), and the head with
/// every chunk at once for a whole read by an instance that saw the head before.
pub async fn round_trips_per_operation(ctx: Ctx) -> CaseResult {
    let (mut inst, traffic) = traced(&ctx).await?;
    let id = ctx.id("trips");
    let s = ctx.open(&mut inst, &id).await?;
    fill(&mut inst, s, "t", 120, 2, 0).await?;
    ensure!(!head_of(&ctx, &id).await?.chunks.is_empty(), "no chunk");
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
    // The whole session (243 items: chunks and the tail), the chunks guessed from the head
    // this instance last saw and fetched with the head.
    inst.get_items(s, None).await?;
    expect("get() of the head and its chunks", trips("get()"), 1)?;
    // Another instance has seen nothing: the head, then every chunk at once.
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

/// Whether an exchange writes (not deletes) a chunk of session `id`.
fn writes_chunk(e: &dapr_session_host_tests::host::Exchange, id: &str) -> bool {
    upserts(e).iter().any(|w| {
        w["key"]
            .as_str()
            .is_some_and(|k| k.starts_with(&format!("{id}:c:")))
    })
}

/// Serverless hosts run every request in a fresh instance, which has seen nothing. An add
/// reads the head (asking the sidecar about the store at the same time) and commits: 2 round
/// trips. Once per 30-odd items an add flushes the tail into the small chunk: it also reads
/// that chunk and, after the commit, deletes the chunk it replaced: 4 (0.1.0 took 3 once per
/// 8 items, for its recent key). A read within the tail is the head alone (1), a pop 2, a
/// whole read 2 (the head, then every chunk at once).
pub async fn fresh_instance_per_operation(ctx: Ctx) -> CaseResult {
    let id = ctx.id("fresh");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    fill(&mut inst, s, "f", 60, 2, 0).await?;
    let (mut trips, mut flushes) = (Vec::new(), Vec::new());
    for b in 0..24 {
        let (mut inst, traffic) = traced(&ctx).await?;
        let s = ctx.open(&mut inst, &id).await?;
        inst.add_items(s, &[msg("user", &format!("q{b}")), msg("assistant", "a")])
            .await?;
        trips.push(traffic.round_trips());
        flushes.push(traffic.exchanges().iter().any(|e| writes_chunk(e, &id)));
    }
    let flushing: Vec<usize> = (0..flushes.len()).filter(|&i| flushes[i]).collect();
    println!(
        "{}: round trips per add {trips:?}, flushing adds {flushing:?}",
        ctx.backend.kind.name()
    );
    for (i, (&t, &flushed)) in trips.iter().zip(&flushes).enumerate() {
        let max = if flushed { 4 } else { 2 };
        ensure!(t <= max, "add {i} (flush: {flushed}): {t} round trips");
    }
    // 48 items, a flush per 33 or 34 of them.
    ensure!(
        (1..=2).contains(&flushing.len()),
        "{} flushes for 48 items",
        flushing.len()
    );
    for (what, max) in [("get(20)", 1), ("pop", 2), ("get()", 2)] {
        let (mut reader, traffic) = traced(&ctx).await?;
        let r = ctx.open(&mut reader, &id).await?;
        match what {
            "get(20)" => ensure!(reader.get_items(r, Some(20)).await?.len() == 20),
            "pop" => ensure!(reader.pop_item(r).await?.is_some()),
            _ => {
                let all = reader.get_items(r, None).await?;
                ensure!(all.len() == 167, "{} items", all.len());
                ensure!(contents(&all)[166] == "q23", "{:?}", &all[166]);
            }
        }
        let n = traffic.round_trips();
        ensure!(n <= max, "{what} by a fresh instance: {n} round trips");
    }
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
        // Writes are averaged over 32 in a row: the log layout flushes its tail into the
        // small chunk once per 30-odd items, and a pop that empties the tail reads a chunk.
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
/// constants, in at most 3 requests on average: what grows with the session is bounded by
/// the merge policy, not by the history (the head's tail, at most 64 items or 16 KiB; its
/// chunk list, a few entries; the small chunk, at most 128 KiB, read and rewritten once per
/// 30-odd items, so a few KiB per append on average).
pub async fn bytes_independent_of_history_length(ctx: Ctx) -> CaseResult {
    // Batches of 5, as a busy agent's turns would be: 2,000 batches at 10,000 items.
    let rows = bytes_per_operation(&ctx, 5).await?;
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
            "requests at {size}: {add:?} {pop:?} {get:?}"
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
