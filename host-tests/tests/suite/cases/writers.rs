//! Several writers on one log-layout session, and commits whose answer is lost: batches stay
//! whole, pops never return an item twice, a clear racing an add leaves all of the batch or
//! none, nothing is applied twice, and no attempt leaves a chunk behind.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::ensure;
use dapr_session_host_tests::dapr_server::{Action, DaprServer, Fault, Route};

use super::concurrency::check_batches;
use super::stored_log::{TAIL_MAX_ITEMS, check_stored, head_of, only_an_empty_head};
use super::{contents, fill, messages, msg};
use crate::harness::{CaseResult, Ctx};

/// Eight instances append 50 batches of 3 items of 300 bytes each to one session at once
/// (360 KB: flushes and chunk merges race appends): exactly 1,200 items, every batch
/// contiguous, each writer's batches in its own order, each item stored once and nothing
/// left behind by the attempts that lost.
pub async fn many_writers_keep_batches_contiguous(ctx: Ctx) -> CaseResult {
    const WRITERS: usize = 8;
    const BATCHES: usize = 50;
    let id = ctx.id("writers");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        tasks.push(tokio::spawn(async move {
            fill(&mut inst, s, &format!("w{w}"), BATCHES, 3, 300).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let items = inst.get_items(s, None).await?;
    let got = contents(&items);
    check_batches(&got, WRITERS, BATCHES, 3)?;
    // The newest 20 agree with the full read.
    ensure!(contents(&inst.get_items(s, Some(20)).await?) == got[got.len() - 20..]);
    let head = check_stored(&ctx, &id, &items, true).await?;
    ensure!(head.chunks.len() >= 2, "{:?}", head.tiers());
    Ok(())
}

/// Four instances pop a 400-item session spread over two chunks and the tail at once: every
/// item once, each popper sees items newest first, nothing lost, and the popped chunks are
/// deleted (only an empty head is left).
pub async fn concurrent_pops_across_chunks(ctx: Ctx) -> CaseResult {
    let id = ctx.id("pops");
    let mut seed = ctx.instance().await?;
    let s = ctx.open(&mut seed, &id).await?;
    fill(&mut seed, s, "p", 200, 2, 600).await?;
    ensure!(
        head_of(&ctx, &id).await?.chunks.len() >= 2,
        "fewer than 2 chunks"
    );
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
        all.len() == 400 && unique.len() == 400,
        "{} pops, {} distinct",
        all.len(),
        unique.len()
    );
    ensure!(seed.get_items(s, None).await?.is_empty());
    only_an_empty_head(&ctx, &id).await
}

/// A writer adds batches while another instance clears the session again and again: what
/// is left is whole batches, in order; never half a batch; and nothing but the head and the
/// chunks it lists (what each clear dropped was deleted).
pub async fn clear_racing_add_is_all_or_nothing(ctx: Ctx) -> CaseResult {
    let id = ctx.id("clear-race");
    let mut writer = ctx.instance().await?;
    let ws = ctx.open(&mut writer, &id).await?;
    let mut clearer = ctx.instance().await?;
    let cs = ctx.open(&mut clearer, &id).await?;
    let adding = tokio::spawn(async move {
        fill(&mut writer, ws, "w0", 60, 3, 0).await?;
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
    let items = writer.get_items(ws, None).await?;
    let got = contents(&items);
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
    check_stored(&ctx, &id, &items, true).await?;
    // After the race, the session works as usual.
    writer.add_items(ws, &[msg("user", "after")]).await?;
    ensure!(contents(&writer.get_items(ws, Some(1)).await?) == ["after"]);
    Ok(())
}

/// Either way a head is committed: a save or a transaction naming its key.
const ANY_COMMIT: &[Route] = &[Route::Save, Route::Transaction];

/// Makes the next commit of session `id`'s head on one of `routes` misbehave with `action`.
fn fault_next_commit(server: &DaprServer, id: &str, action: &Action, routes: &[Route]) {
    server.faults().clear();
    for route in routes {
        server
            .faults()
            .add(Fault::on(*route, action.clone()).containing(format!("{id}:head")));
    }
}

/// Fails unless exactly one of the `routes.len()` rules [`fault_next_commit`] added fired.
fn commit_fault_fired(server: &DaprServer, routes: &[Route], what: &str) -> CaseResult {
    let pending = server.faults().pending();
    server.faults().clear();
    ensure!(
        pending + 1 == routes.len(),
        "{what}: the fault did not fire ({pending} of {} rules left)",
        routes.len()
    );
    Ok(())
}

/// The request timeout of the ambiguous-commit case: long enough that no request times out
/// under load but the delayed one.
const TIMEOUT_MS: u32 = 2500;
/// How late the delayed commit is applied: after the client gave up on it.
const LATE: Duration = Duration::from_millis(4000);
/// How long after an operation returns a delayed commit of it may still land.
const LANDED: Duration = Duration::from_millis(2000);

/// A commit whose answer is lost is recognised by the operation id it recorded in the head
/// and never applied twice: a connection reset after the store applied the commit, and a
/// commit delayed past the client's timeout and applied after it gave up (a retry races it).
/// Each kind of commit is tried: an add within the tail (a save of the head), an add that
/// flushes the tail into a chunk (a transaction writing the chunk and the head), a pop from
/// the tail, a pop that pulls items back from a chunk, and a clear. Every batch is stored
/// once, every pop returns its item once, and no chunk of an attempt is left behind.
pub async fn ambiguous_commit_is_not_applied_twice(ctx: Ctx) -> CaseResult {
    let Some(server) = ctx.backend.server.as_ref() else {
        anyhow::bail!("needs the test server's fault injection");
    };
    for (name, action) in [
        ("reset after apply", Action::ResetAfterApply),
        ("applied after the timeout", Action::Delay(LATE)),
    ] {
        let id = ctx.id("ambiguous");
        let mut config = ctx.config();
        config.timeout_ms = Some(TIMEOUT_MS);
        let mut inst = ctx.instance().await?;
        let s = inst.open(&id, &config).await?;
        let mut all = vec![msg("user", "first")];
        inst.add_items(s, &all).await?;
        // An add within the tail: a save of the head.
        fault_next_commit(server, &id, &action, ANY_COMMIT);
        let turn = vec![msg("user", "second"), msg("assistant", "third")];
        inst.add_items(s, &turn).await?;
        commit_fault_fired(server, ANY_COMMIT, name)?;
        all.extend(turn);
        ensure!(inst.get_items(s, None).await? == all, "{name}: add");
        // An add that flushes: a transaction with the new chunk.
        let tx = &[Route::Transaction];
        fault_next_commit(server, &id, &action, tx);
        let batch = messages("flushed", TAIL_MAX_ITEMS);
        inst.add_items(s, &batch).await?;
        commit_fault_fired(server, tx, name)?;
        all.extend(batch);
        // The delayed commit lands after the client gave up; let it.
        tokio::time::sleep(LANDED).await;
        ensure!(inst.get_items(s, None).await? == all, "{name}: flush");
        let head = check_stored(&ctx, &id, &all, true).await?;
        ensure!(head.chunks.len() == 1, "{name}: {}", head.raw);
        // A pop from the tail.
        fault_next_commit(server, &id, &action, ANY_COMMIT);
        let popped = inst.pop_item(s).await?;
        commit_fault_fired(server, ANY_COMMIT, name)?;
        ensure!(popped.as_ref() == all.last(), "{name}: pop {popped:?}");
        all.pop();
        tokio::time::sleep(LANDED).await;
        ensure!(inst.get_items(s, None).await? == all, "{name}: pop");
        // Pops until the tail is empty, then one that pulls items back from the chunk.
        for _ in 0..head.tail.len() - 1 {
            ensure!(inst.pop_item(s).await? == all.pop());
        }
        ensure!(head_of(&ctx, &id).await?.tail.is_empty());
        fault_next_commit(server, &id, &action, ANY_COMMIT);
        let popped = inst.pop_item(s).await?;
        commit_fault_fired(server, ANY_COMMIT, name)?;
        ensure!(popped.as_ref() == all.last(), "{name}: pull-back pop");
        all.pop();
        tokio::time::sleep(LANDED).await;
        ensure!(
            inst.get_items(s, None).await? == all,
            "{name}: pull-back pop"
        );
        check_stored(&ctx, &id, &all, false).await?;
        // A clear: its chunks are deleted once it is known to have landed.
        fault_next_commit(server, &id, &action, ANY_COMMIT);
        inst.clear(s).await?;
        commit_fault_fired(server, ANY_COMMIT, name)?;
        tokio::time::sleep(LANDED).await;
        ensure!(inst.get_items(s, None).await?.is_empty(), "{name}: clear");
        only_an_empty_head(&ctx, &id).await?;
    }
    Ok(())
}
