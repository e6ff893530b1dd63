//! Time to live over every key of a log-layout session. The head is written with the
//! session's TTL `T`; chunks with `2T` plus the request timeout; and a commit rewrites (same
//! key, same bytes, fresh TTL) every chunk that would not outlive the head it writes by
//! `T/2` plus the timeout. So a session written every `T/2` never loses an item (0.1.0's
//! failure to avoid: an item key expired while the head listing it lived), the head always
//! expires first, and a session left alone is gone entirely within `2T` plus the timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::dapr_server::{Action, Fault};
use dapr_session_host_tests::host::{Config, Traffic};
use serde_json::Value;

use super::stored_log::{Head, LARGE, upserts};
use super::{padded, traced};
use crate::harness::{CaseResult, Ctx};

/// Every write of session `id` in `traffic`: key, TTL sent, and value.
fn writes(traffic: &Traffic, id: &str) -> Vec<(String, Option<String>, Value)> {
    let mut out = Vec::new();
    for e in traffic.exchanges() {
        for w in upserts(&e) {
            let key = w["key"].as_str().unwrap_or_default().to_string();
            if key.starts_with(&format!("{id}:")) {
                let ttl = w["metadata"]["ttlInSeconds"].as_str().map(str::to_string);
                out.push((key, ttl, w["value"].clone()));
            }
        }
    }
    out
}

/// Two instances write session `id` every `T/2` for `rounds` rounds: first one batch of
/// 300 KiB (a large chunk that no later flush rewrites, so only the TTL rule keeps it), then
/// 2 and 3 items of 1 KiB at once per round (flushes into a small chunk now and then). After
/// every round a fresh instance reads every item written, each once. Checks on the wire that
/// heads carry `T` and chunks `2T + timeout`, and that the large chunk was rewritten, same
/// bytes, for its TTL.
async fn write_every_half_ttl(ctx: &Ctx, id: &str, config: &Config, rounds: usize) -> CaseResult {
    let ttl = config.ttl_seconds.context("no TTL")?;
    let timeout_s = config.timeout_ms.context("no timeout")?.div_ceil(1000);
    let (mut a, traffic_a) = traced(ctx).await?;
    let (mut b, traffic_b) = traced(ctx).await?;
    let sa = a.open(id, config).await?;
    let sb = b.open(id, config).await?;
    let big: Vec<String> = (0..60).map(|i| padded(&format!("big {i}"), 5120)).collect();
    a.add_items(sa, &big).await?;
    let mut written: BTreeSet<String> = big.into_iter().collect();
    let half = Duration::from_millis(u64::from(ttl) * 500);
    let start = tokio::time::Instant::now();
    // When the latest write returned: the guarantee holds for writes that land within the
    // TTL of each other, which a loaded machine may not manage.
    let mut landed = start;
    for round in 1..=rounds {
        tokio::time::sleep_until(start + half * round as u32).await;
        let ia: Vec<String> = (0..2)
            .map(|i| padded(&format!("a{round} {i}"), 1024))
            .collect();
        let ib: Vec<String> = (0..3)
            .map(|i| padded(&format!("b{round} {i}"), 1024))
            .collect();
        let (ra, rb) = tokio::join!(a.add_items(sa, &ia), b.add_items(sb, &ib));
        ra.context("writer a")?;
        rb.context("writer b")?;
        let gap = landed.elapsed();
        landed = tokio::time::Instant::now();
        ensure!(
            gap < Duration::from_secs(u64::from(ttl)),
            "round {round}: writes returned {:.1} s apart, more than the {ttl} s TTL: the \
             machine is too loaded for this case",
            gap.as_secs_f64()
        );
        written.extend(ia.into_iter().chain(ib));
        let mut reader = ctx.instance().await?;
        let r = reader.open(id, config).await?;
        let got = reader.get_items(r, None).await?;
        let distinct: BTreeSet<String> = got.iter().cloned().collect();
        ensure!(
            got.len() == written.len() && distinct == written,
            "round {round} ({:.1} s in): read {} items ({} distinct), {} written; missing {}",
            start.elapsed().as_secs_f64(),
            got.len(),
            distinct.len(),
            written.len(),
            written.difference(&distinct).count()
        );
    }
    // On the wire: the head with T, chunks with 2T + timeout.
    let mut chunk_values: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (key, sent, value) in writes(&traffic_a, id)
        .into_iter()
        .chain(writes(&traffic_b, id))
    {
        let want = if key.ends_with(":head") {
            ttl
        } else {
            2 * ttl + timeout_s
        };
        ensure!(
            sent == Some(want.to_string()),
            "{key} written with TTL {sent:?}, expected {want}"
        );
        if !key.ends_with(":head") {
            chunk_values.entry(key).or_default().push(value);
        }
    }
    let first_head = writes(&traffic_a, id)
        .into_iter()
        .find(|(k, _, _)| k.ends_with(":head"))
        .context("no head written")?;
    let large = Head::parse(first_head.2)?
        .chunks
        .into_iter()
        .find(|c| c.tier == LARGE)
        .context("the 300 KiB batch made no large chunk")?;
    let rewrites = chunk_values
        .get(&large.key(id))
        .context("large chunk never written")?;
    ensure!(
        rewrites.len() >= 2 && rewrites.iter().all(|v| *v == rewrites[0]),
        "the large chunk was written {} times{}",
        rewrites.len(),
        if rewrites.len() >= 2 {
            ", with different values"
        } else {
            ": never refreshed"
        }
    );
    Ok(())
}

/// Left alone, session `id` expires head first (whenever its head is there, every chunk it
/// lists is there too) and is gone entirely within `2T + timeout` (plus the store's expiry
/// granularity); a read then returns nothing.
async fn expires_head_first(ctx: &Ctx, id: &str, config: &Config) -> CaseResult {
    let ttl = u64::from(config.ttl_seconds.context("no TTL")?);
    let timeout_s = u64::from(config.timeout_ms.context("no timeout")?.div_ceil(1000));
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(2 * ttl + timeout_s + 3);
    let mut head_gone = None;
    loop {
        match ctx.backend.get_bytes(&format!("{id}:head")).await? {
            Some(raw) => {
                let head = Head::parse(serde_json::from_slice(&raw)?)?;
                for c in &head.chunks {
                    ensure!(
                        ctx.backend.get_bytes(&c.key(id)).await?.is_some(),
                        "{:.1} s after the last write the head lives, its chunk {} does not",
                        start.elapsed().as_secs_f64(),
                        c.key(id)
                    );
                }
            }
            None => {
                head_gone.get_or_insert(start.elapsed());
            }
        }
        let left = ctx.backend.keys(&format!("{id}:")).await?;
        if left.is_empty() && head_gone.is_some() {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "keys still stored {:.1} s after the last write (TTL {ttl} s): {left:?}",
            start.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "{}: head gone after {:.1} s, every key after {:.1} s (TTL {ttl} s)",
        ctx.backend.kind.name(),
        head_gone.unwrap_or_default().as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    let mut inst = ctx.instance().await?;
    let s = inst.open(id, config).await?;
    ensure!(inst.get_items(s, None).await?.is_empty());
    ensure!(inst.metadata(s).await?.created_at.is_none());
    Ok(())
}

/// With an 8 s TTL and a 3 s request timeout (chunks live 19 s): two instances write every
/// 4 s for 24 s and never lose an item; left alone, the session expires head first and is
/// gone entirely within 19 s, orphans of lost races included.
pub async fn ttl_slides_over_every_key(ctx: Ctx) -> CaseResult {
    let id = ctx.id("ttl");
    let mut config = ctx.config();
    config.ttl_seconds = Some(8);
    config.timeout_ms = Some(3000);
    write_every_half_ttl(&ctx, &id, &config, 6).await?;
    expires_head_first(&ctx, &id, &config).await
}

/// The same under a slow sidecar: every request is delayed 300 ms (well within the 3 s
/// timeout) while two instances write every 4 s for 24 s with an 8 s TTL (chunks live
/// 19 s): no item is ever lost, and the session still expires head first, entirely.
pub async fn ttl_slides_under_injected_delay(ctx: Ctx) -> CaseResult {
    let Some(server) = ctx.backend.server.as_ref() else {
        anyhow::bail!("needs the test server's fault injection");
    };
    let id = ctx.id("ttl-slow");
    let mut config = ctx.config();
    config.ttl_seconds = Some(8);
    config.timeout_ms = Some(3000);
    server
        .faults()
        .add(Fault::any(Action::Delay(Duration::from_millis(300))).times(u32::MAX));
    write_every_half_ttl(&ctx, &id, &config, 6).await?;
    let delayed = server.faults().pending() == 1;
    server.faults().clear();
    ensure!(delayed, "the delay rule is gone");
    expires_head_first(&ctx, &id, &config).await
}
