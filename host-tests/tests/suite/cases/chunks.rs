//! What the log layout stores (format 2): the head and the chunks it lists, each item
//! once; chunks of every tier read and popped across; the same on a store without
//! transactions; a head that does not parse is never overwritten.

use std::collections::BTreeSet;

use anyhow::ensure;
use dapr_session_host_tests::dapr_server::{DaprServer, Route, ServerConfig, StoreConfig};

use super::concurrency::check_batches;
use super::stored_log::{
    Head, LARGE, LARGE_MAX, SEALED, SMALL, SMALL_MAX, TAIL_MAX_ITEMS, check_stored,
    only_an_empty_head,
};
use super::{contents, fill, msg, padded, session_error, traced};
use crate::harness::{CaseResult, Ctx};

/// The keys are the head and the chunks it lists, nothing else (0.1.0 kept a key per item,
/// pages and a recent key). Every item is stored once, as a JSON string holding the item:
/// the newest in the head's tail, the older ones in chunks, each a JSON array of strings. The
/// head is format 2 with its version (`g.s`) counting commits; a batch larger than a small
/// chunk is cut into sealed pieces of at most 1 MiB.
pub async fn log_layout_keys(ctx: Ctx) -> CaseResult {
    let id = ctx.id("keys");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let mut all = vec![msg("user", "a"), msg("assistant", "b")];
    inst.add_items(s, &all).await?;
    all.push(msg("user", "c"));
    inst.add_items(s, &all[2..]).await?;
    // A short session is its head alone, the items in its tail.
    let head = check_stored(&ctx, &id, &all, true).await?;
    ensure!(head.chunks.is_empty() && head.tail == all, "{}", head.raw);
    ensure!(head.raw["s"] == 2, "two commits: {}", head.raw);
    let ops = head.raw["o"].as_array().cloned().unwrap_or_default();
    ensure!(
        ops.len() == 2
            && ops.iter().all(|o| o
                .as_str()
                .and_then(|o| o.split_once('.'))
                .is_some_and(|(n, a)| super::bad_input::is_nonce(n) && a == "0")),
        "operation ids: {}",
        head.raw
    );
    let (c, u) = (head.raw["c"].as_u64(), head.raw["u"].as_u64());
    ensure!(c.is_some() && c <= u, "timestamps: {}", head.raw);
    let snap = inst.get_snapshot(s, None).await?;
    ensure!(
        snap.version == head.version() && snap.first == 0,
        "{snap:?}"
    );

    // Past the tail's bound, the oldest items move into a chunk; after every add the store
    // holds exactly the head and the chunks it lists.
    for b in 0..12 {
        let batch: Vec<String> = (0..7).map(|i| msg("user", &format!("m{b} {i}"))).collect();
        inst.add_items(s, &batch).await?;
        all.extend(batch);
        check_stored(&ctx, &id, &all, true).await?;
    }
    let head = check_stored(&ctx, &id, &all, true).await?;
    ensure!(head.tiers() == [SMALL], "one small chunk: {}", head.raw);
    ensure!(
        head.chunks[0].expires.is_none(),
        "a TTL without one configured"
    );

    // One batch of 2.5 MiB: the small chunk is sealed as it is, the batch cut into pieces.
    let big: Vec<String> = (0..250)
        .map(|i| padded(&format!("big {i}"), 10_000))
        .collect();
    inst.add_items(s, &big).await?;
    all.extend(big);
    let head = check_stored(&ctx, &id, &all, true).await?;
    let tiers = head.tiers();
    ensure!(
        tiers.len() >= 4 && tiers[..tiers.len() - 1].iter().all(|&t| t == SEALED),
        "tiers {tiers:?}"
    );
    for c in &head.chunks {
        ensure!(c.bytes <= LARGE_MAX, "a chunk of {} bytes", c.bytes);
        let stored = ctx
            .backend
            .get_bytes(&c.key(&id))
            .await?
            .unwrap_or_default();
        ensure!(
            stored.len() as u64 == c.bytes,
            "{} is {} bytes, the head says {}",
            c.key(&id),
            stored.len(),
            c.bytes
        );
    }
    let mut fresh = ctx.instance().await?;
    let f = ctx.open(&mut fresh, &id).await?;
    ensure!(fresh.get_items(f, None).await? == all, "read back");
    Ok(())
}

/// On a store without transactions the same operations work, without any transaction
/// request: an add within the tail is the head alone (read it, save it: 2 requests); a
/// flush saves its chunk in a request of its own before the head that lists it (a head never
/// names a chunk that is not there). Two writers keep batches whole, reads and pops cross
/// chunks, and once the session is popped empty only its empty head is left.
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
    // 300 items of 600 bytes: a large chunk and a small one.
    let mut all = fill(&mut inst, s, "p", 150, 2, 600).await?;
    let head = |server: &DaprServer| -> anyhow::Result<Head> {
        let raw = server
            .raw_get("plain", &format!("{id}:head"))
            .ok_or_else(|| anyhow::anyhow!("no head"))?;
        Head::parse(serde_json::from_slice(&raw.data)?)
    };
    ensure!(
        head(&server)?.tiers() == [LARGE, SMALL],
        "{}",
        head(&server)?.raw
    );
    // Every head saved lists only chunks an earlier request saved.
    let mut saved: BTreeSet<String> = BTreeSet::new();
    for e in traffic.exchanges() {
        let mut chunks = Vec::new();
        for w in e.json().as_array().cloned().unwrap_or_default() {
            let key = w["key"].as_str().unwrap_or_default().to_string();
            if key == format!("{id}:head") {
                let listed = Head::parse(w["value"].clone())?;
                for c in &listed.chunks {
                    ensure!(
                        saved.contains(&c.key(&id)),
                        "a head listing {} was saved before it",
                        c.key(&id)
                    );
                }
            } else {
                chunks.push(key);
            }
        }
        if (200..300).contains(&e.status) {
            saved.extend(chunks);
        }
    }
    let turn = [msg("user", "q"), msg("assistant", "a")];
    let tail = head(&server)?.tail;
    let bytes: usize = tail.iter().chain(&turn).map(String::len).sum();
    ensure!(
        tail.len() + 2 <= TAIL_MAX_ITEMS && bytes <= 16 * 1024,
        "the turn would flush the tail"
    );
    traffic.clear();
    inst.add_items(s, &turn).await?;
    all.extend(turn);
    ensure!(
        traffic.requests() == 2,
        "add within the tail: {} requests",
        traffic.requests()
    );
    ensure!(inst.get_items(s, None).await? == all);
    // Two writers at once still keep batches whole.
    let mut tasks = Vec::new();
    for w in 0..2 {
        let mut i = ctx.instance().await?;
        let s = i.open(&id, &config).await?;
        tasks.push(tokio::spawn(async move {
            for b in 0..15 {
                let batch: Vec<String> = (0..3)
                    .map(|n| padded(&format!("w{w} b{b} i{n}"), 600))
                    .collect();
                i.add_items(s, &batch).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let got = inst.get_items(s, None).await?;
    ensure!(got[..all.len()] == all[..], "the older items changed");
    check_batches(&contents(&got[all.len()..]), 2, 15, 3)?;
    let mut popped = 0;
    while let Some(item) = inst.pop_item(s).await? {
        ensure!(item == got[got.len() - 1 - popped], "pop {popped}");
        popped += 1;
    }
    ensure!(popped == got.len(), "{popped} pops for {} items", got.len());
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
    ensure!(
        server.keys("plain") == [format!("{id}:head")],
        "left behind: {:?}",
        server.keys("plain")
    );
    Ok(())
}

/// Reads and pops across chunks of every tier: 3,000 items of 500 bytes (1.5 MB) make a
/// sealed chunk, a large one, a small one and the tail. Whole reads (warm and fresh) and
/// limited reads whose limit ends in each of them return exactly the newest items, with
/// `get-snapshot` giving their position and one version; pops come back newest first
/// through the tail, the small chunk and into the large one; after a write only the head
/// and the chunks it lists are stored (emptied chunks were deleted), and a clear leaves an
/// empty head.
pub async fn reads_and_pops_across_chunks(ctx: Ctx) -> CaseResult {
    let id = ctx.id("chunks");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let all = fill(&mut inst, s, "x", 300, 10, 500).await?;
    let head = check_stored(&ctx, &id, &all, true).await?;
    let tiers = head.tiers();
    ensure!(
        tiers.len() >= 3 && tiers.ends_with(&[LARGE, SMALL]) && tiers[0] == SEALED,
        "tiers {tiers:?}"
    );
    for c in &head.chunks {
        let max = if c.tier == SMALL {
            SMALL_MAX
        } else {
            LARGE_MAX
        };
        ensure!(c.bytes <= max, "tier {} chunk of {} bytes", c.tier, c.bytes);
    }
    let total = all.len();
    let mut fresh = ctx.instance().await?;
    let f = ctx.open(&mut fresh, &id).await?;
    ensure!(inst.get_items(s, None).await? == all, "warm whole read");
    ensure!(fresh.get_items(f, None).await? == all, "fresh whole read");
    // Limits ending in the tail, at each chunk boundary and one past it, and past the end.
    let mut limits = vec![1, head.tail.len(), total - 1, total, total + 5];
    let mut covered = head.tail.len();
    for c in head.chunks.iter().rev() {
        limits.push(covered + 1);
        covered += c.live as usize;
        limits.push(covered);
    }
    for limit in limits {
        let want = &all[total.saturating_sub(limit)..];
        for (who, inst, s) in [("warm", &mut inst, s), ("fresh", &mut fresh, f)] {
            let snap = inst.get_snapshot(s, Some(limit as u32)).await?;
            ensure!(snap.items == want, "{who} get({limit})");
            ensure!(
                snap.first == (total - want.len()) as u64 && snap.version == head.version(),
                "{who} get({limit}): first {}, version {}",
                snap.first,
                snap.version
            );
            ensure!(inst.get_items(s, Some(limit as u32)).await? == want);
        }
    }
    // Pops through the tail and the small chunk, 20 into the large one.
    let small = head.chunks[head.chunks.len() - 1].live as usize;
    let pops = head.tail.len() + small + 20;
    for n in 0..pops {
        let popped = inst.pop_item(s).await?;
        ensure!(
            popped.as_deref() == Some(all[total - 1 - n].as_str()),
            "pop {n}: {:?}",
            popped.map(|p| contents(&[p]))
        );
    }
    let left = &all[..total - pops];
    ensure!(fresh.get_items(f, None).await? == left);
    ensure!(fresh.get_items(f, Some(30)).await? == left[left.len() - 30..]);
    let after = msg("user", "after");
    inst.add_items(s, std::slice::from_ref(&after)).await?;
    let mut want = left.to_vec();
    want.push(after);
    let head = check_stored(&ctx, &id, &want, false).await?;
    ensure!(
        head.tiers().len() < tiers.len(),
        "the popped small chunk is still listed"
    );
    inst.clear(s).await?;
    only_an_empty_head(&ctx, &id).await?;
    ensure!(inst.get_items(s, None).await?.is_empty());
    ensure!(fresh.get_items(f, None).await?.is_empty());
    Ok(())
}

/// A head that does not parse reads as empty and is never overwritten.
pub async fn corrupt_head_is_never_overwritten(ctx: Ctx) -> CaseResult {
    let id = ctx.id("bad-head");
    let key = format!("{id}:head");
    ctx.backend
        .put_json(&key, &serde_json::json!({"v": "not a number", "k": 3}))
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
