//! Several writers on one session.

use std::collections::HashSet;

use anyhow::ensure;
use dapr_session_host_tests::host::{Hooks, InstanceOptions};

use super::{competing_append, contents, messages, msg};
use crate::harness::{CaseResult, Ctx};

/// Upstream `test_add_items_retries_on_concurrency`: a competing append lands between our
/// read and our write; the retry re-reads and appends after it.
pub async fn add_retries_on_conflict(ctx: Ctx) -> CaseResult {
    let id = ctx.id("add-conflict");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "seed")]).await?;

    let competitor = msg("assistant", "from-concurrent-writer");
    let hook = competing_append(&ctx, &format!("{id}:messages"), &competitor);
    let mut racer = ctx
        .instance_with(InstanceOptions {
            hooks: Hooks {
                traffic: None,
                before_send: Some(hook),
                pool: None,
            },
            ..Default::default()
        })
        .await?;
    let rs = ctx.open(&mut racer, &id).await?;
    racer.add_items(rs, &[msg("user", "new message")]).await?;
    let got = contents(&inst.get_items(s, None).await?);
    ensure!(
        got == ["seed", "from-concurrent-writer", "new message"],
        "{got:?}"
    );
    Ok(())
}

/// Upstream `test_pop_item_retries_on_concurrency`: the retry pops the competitor's item.
pub async fn pop_retries_on_conflict(ctx: Ctx) -> CaseResult {
    let id = ctx.id("pop-conflict");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "first"), msg("user", "second")])
        .await?;

    let competitor = msg("assistant", "from-concurrent-writer");
    let hook = competing_append(&ctx, &format!("{id}:messages"), &competitor);
    let mut racer = ctx
        .instance_with(InstanceOptions {
            hooks: Hooks {
                traffic: None,
                before_send: Some(hook),
                pool: None,
            },
            ..Default::default()
        })
        .await?;
    let rs = ctx.open(&mut racer, &id).await?;
    let popped = racer.pop_item(rs).await?;
    ensure!(
        popped.as_deref() == Some(competitor.as_str()),
        "popped {popped:?}"
    );
    ensure!(contents(&inst.get_items(s, None).await?) == ["first", "second"]);
    Ok(())
}

/// Upstream `test_concurrent_access` / `test_dapr_concurrent_writes_resolution`: three
/// instances add five items each at once; all fifteen are there.
pub async fn concurrent_adds_from_three_instances(ctx: Ctx) -> CaseResult {
    let id = ctx.id("three");
    let mut tasks = Vec::new();
    for w in 0..3 {
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        tasks.push(tokio::spawn(async move {
            inst.add_items(s, &messages(&format!("w{w}"), 5)).await
        }));
    }
    for t in tasks {
        t.await??;
    }
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let got: HashSet<String> = contents(&inst.get_items(s, None).await?)
        .into_iter()
        .collect();
    let want: HashSet<String> = (0..3)
        .flat_map(|w| (0..5).map(move |i| format!("w{w} {i}")))
        .collect();
    ensure!(
        got == want,
        "missing {:?}",
        want.difference(&got).collect::<Vec<_>>()
    );
    Ok(())
}

/// Two instances append 20 batches of 3 each at once: nothing lost, every batch contiguous,
/// each writer's batches in its own order.
pub async fn two_instances_append_contiguous_batches(ctx: Ctx) -> CaseResult {
    const WRITERS: usize = 2;
    const BATCHES: usize = 20;
    let id = ctx.id("contiguous");
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
    check_batches(&got, WRITERS, BATCHES, 3)
}

/// Checks items named `w{w} b{b} i{i}`: all present once, batches contiguous and in order,
/// each writer's batches in its own order.
pub fn check_batches(got: &[String], writers: usize, batches: usize, per: usize) -> CaseResult {
    ensure!(
        got.len() == writers * batches * per,
        "{} items, want {}",
        got.len(),
        writers * batches * per
    );
    let mut next_batch = vec![0usize; writers];
    for chunk in got.chunks(per) {
        let first = &chunk[0];
        let (w, b) = parse(first).ok_or_else(|| anyhow::anyhow!("unexpected item {first}"))?;
        for (i, item) in chunk.iter().enumerate() {
            ensure!(
                *item == format!("w{w} b{b} i{i}"),
                "batch w{w} b{b} is not contiguous: {chunk:?}"
            );
        }
        ensure!(
            next_batch[w] == b,
            "writer {w}: batch {b} came when {} was due",
            next_batch[w]
        );
        next_batch[w] += 1;
    }
    Ok(())
}

fn parse(item: &str) -> Option<(usize, usize)> {
    let mut parts = item.split(' ');
    let w = parts.next()?.strip_prefix('w')?.parse().ok()?;
    let b = parts.next()?.strip_prefix('b')?.parse().ok()?;
    Some((w, b))
}

/// Three instances pop at once from a session of 30 items: every item comes back exactly
/// once and the session ends empty.
pub async fn concurrent_pops_never_return_an_item_twice(ctx: Ctx) -> CaseResult {
    let id = ctx.id("pops");
    let mut seed = ctx.instance().await?;
    let s = ctx.open(&mut seed, &id).await?;
    seed.add_items(s, &messages("p", 30)).await?;
    let mut tasks = Vec::new();
    for _ in 0..3 {
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
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let got = contents(&all);
    let unique: HashSet<&String> = got.iter().collect();
    ensure!(
        got.len() == 30 && unique.len() == 30,
        "{} pops, {} distinct",
        got.len(),
        unique.len()
    );
    ensure!(seed.get_items(s, None).await?.is_empty());
    Ok(())
}
