//! Retention (`max-items`): every write keeps only the newest N items, whatever the operation
//! and however many instances write at once, and the session's storage stays flat.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use dapr_session_host_tests::host::Layout;

use super::{contents, messages, msg};
use crate::harness::{CaseResult, Ctx, layout_name};

/// With `max-items` 5, every kind of write leaves the newest 5: an add past the bound, a pop,
/// a replace with more items, a replace-suffix. The bound belongs to the writer's config: an
/// instance without it writes past it, and the next bounded write cuts the session back.
pub async fn max_items_bounds_every_write(ctx: Ctx) -> CaseResult {
    let id = ctx.id("bound");
    let mut config = ctx.config();
    config.max_items = Some(5);
    let mut inst = ctx.instance().await?;
    let s = inst.open(&id, &config).await?;
    let newest = |items: &[String], n: usize| items[items.len().saturating_sub(n)..].to_vec();

    let eight = messages("a", 8);
    inst.add_items(s, &eight).await?;
    ensure!(inst.get_items(s, None).await? == newest(&eight, 5), "add");
    for i in 0..4 {
        inst.add_items(s, &[msg("user", &format!("b {i}"))]).await?;
    }
    ensure!(
        contents(&inst.get_items(s, None).await?) == ["a 7", "b 0", "b 1", "b 2", "b 3"],
        "one by one"
    );

    let seven = messages("r", 7);
    inst.replace(s, &seven, None).await?;
    ensure!(
        inst.get_items(s, None).await? == newest(&seven, 5),
        "replace"
    );
    inst.replace_suffix(s, 4, &messages("t", 3), None).await?;
    ensure!(
        contents(&inst.get_items(s, None).await?) == ["r 4", "r 5", "t 0", "t 1", "t 2"],
        "replace-suffix"
    );

    // An unbounded writer goes past the bound; the next bounded write, a pop, cuts it back.
    let mut free = ctx.instance().await?;
    let f = ctx.open(&mut free, &id).await?;
    free.add_items(f, &messages("u", 4)).await?;
    ensure!(
        free.get_items(f, None).await?.len() == 9,
        "the unbounded writer was bounded"
    );
    let popped = inst.pop_item(s).await?;
    ensure!(
        popped.as_deref() == Some(msg("user", "u 3").as_str()),
        "pop returned {popped:?}"
    );
    ensure!(
        contents(&inst.get_items(s, None).await?) == ["t 1", "t 2", "u 0", "u 1", "u 2"],
        "pop"
    );
    Ok(())
}

const WRITERS: usize = 8;
/// Items appended in all, by all writers.
const APPENDS: usize = 10_000;
/// Items per `add-items` call.
const PER_CALL: usize = 10;
const MAX: u32 = 200;

/// One measurement of the session's storage.
#[derive(Debug, Clone, Copy)]
struct Sample {
    appends: usize,
    keys: usize,
    bytes: usize,
}

/// The session's keys and their bytes, as the store holds them now (a key deleted between
/// the listing and its read is not counted).
async fn measure(ctx: &Ctx, prefix: &str, appends: usize) -> anyhow::Result<Sample> {
    let (mut keys, mut bytes) = (0, 0);
    for k in ctx.backend.keys(prefix).await? {
        if let Some(v) = ctx.backend.get_bytes(&k).await? {
            keys += 1;
            bytes += v.len();
        }
    }
    Ok(Sample {
        appends,
        keys,
        bytes,
    })
}

/// Each writer's items in `got` (`w{w} n{n}`), in order; fails unless each writer's are
/// consecutive (a suffix of what it appended: retention drops the oldest first).
fn per_writer(got: &[String]) -> anyhow::Result<HashMap<usize, Vec<usize>>> {
    let mut seen: HashMap<usize, Vec<usize>> = HashMap::new();
    for c in contents(got) {
        let (w, n) = c
            .split_once(' ')
            .and_then(|(w, n)| {
                Some((
                    w.strip_prefix('w')?.parse().ok()?,
                    n.strip_prefix('n')?.parse().ok()?,
                ))
            })
            .ok_or_else(|| anyhow::anyhow!("unexpected item {c}"))?;
        let mine = seen.entry(w).or_default();
        ensure!(
            mine.last().is_none_or(|l| *l + 1 == n),
            "writer {w}: item {n} after {:?}",
            mine.last()
        );
        mine.push(n);
    }
    Ok(seen)
}

/// Eight instances append 10,000 items, ten per call, to one session bounded to 200, while
/// another reads it throughout and the store is measured: no read ever holds more than 200
/// items or a gap in a writer's items; at the end the session holds the newest 200 (for each
/// writer, a suffix of what it appended, ending with its last); its key count and bytes stay
/// within a bound set by the window and the number of writers from the first thousand
/// appends to the last, without a trend; and once the writers are done the session is back
/// to a window's worth in at most three keys. Prints the measurements.
pub async fn max_items_under_concurrent_writers_keeps_storage_flat(ctx: Ctx) -> CaseResult {
    let id = ctx.id("flat");
    let mut config = ctx.config();
    config.max_items = Some(MAX);
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (host, config, id, done) = (ctx.host.clone(), config.clone(), id.clone(), done.clone());
        writers.push(tokio::spawn(async move {
            let mut inst = host.instance().await?;
            let s = inst.open(&id, &config).await?;
            for call in 0..APPENDS / WRITERS / PER_CALL {
                let batch: Vec<String> = (0..PER_CALL)
                    .map(|i| msg("user", &format!("w{w} n{}", call * PER_CALL + i)))
                    .collect();
                inst.add_items(s, &batch).await?;
                done.fetch_add(PER_CALL, Ordering::SeqCst);
            }
            anyhow::Ok(())
        }));
    }
    let reader = {
        let (host, config, id, stop) = (ctx.host.clone(), config.clone(), id.clone(), stop.clone());
        tokio::spawn(async move {
            let mut inst = host.instance().await?;
            let s = inst.open(&id, &config).await?;
            let (mut reads, mut largest) = (0u64, 0usize);
            while !stop.load(Ordering::SeqCst) {
                let got = inst.get_items(s, None).await?;
                ensure!(got.len() <= MAX as usize, "a read of {} items", got.len());
                per_writer(&got).map_err(|e| anyhow::anyhow!("read {reads}: {e:#}"))?;
                largest = largest.max(got.len());
                reads += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok((reads, largest))
        })
    };
    let prefix = format!("{id}:");
    let mut samples = Vec::new();
    while done.load(Ordering::SeqCst) < APPENDS && !writers.iter().all(|w| w.is_finished()) {
        let at = done.load(Ordering::SeqCst);
        samples.push(measure(&ctx, &prefix, at).await?);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for w in writers {
        w.await??;
    }
    let elapsed = started.elapsed();
    // Once the writers are done, what a writer wrote in attempts that lost is deleted.
    let after = measure(&ctx, &prefix, APPENDS).await?;
    stop.store(true, Ordering::SeqCst);
    let (reads, largest) = reader.await??;

    let mut inst = ctx.instance().await?;
    let s = inst.open(&id, &config).await?;
    let got = inst.get_items(s, None).await?;
    ensure!(got.len() == MAX as usize, "{} items at the end", got.len());
    for (w, ns) in per_writer(&got)? {
        ensure!(
            ns.last() == Some(&(APPENDS / WRITERS - 1)),
            "writer {w}: its newest items are not kept: {ns:?}"
        );
    }
    // One writer alone: exactly its newest 200.
    let alone = messages("alone", MAX as usize + 30);
    for batch in alone.chunks(7) {
        inst.add_items(s, batch).await?;
    }
    ensure!(
        inst.get_items(s, None).await? == alone[30..],
        "not the newest {MAX}"
    );

    // Flat: measured once the bound was reached, the first half against the second.
    let steady: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|x| x.appends >= 1_000)
        .collect();
    ensure!(steady.len() >= 4, "too few samples: {samples:?}");
    let (first, second) = steady.split_at(steady.len() / 2);
    let max = |v: &[Sample], f: fn(&Sample) -> usize| v.iter().map(f).max().unwrap_or(0);
    let min = |v: &[Sample], f: fn(&Sample) -> usize| v.iter().map(f).min().unwrap_or(0);
    let median = |v: &[Sample], f: fn(&Sample) -> usize| {
        let mut all: Vec<usize> = v.iter().map(f).collect();
        all.sort_unstable();
        all.get(all.len() / 2).copied().unwrap_or(0)
    };
    let window: usize = got.iter().map(|i| i.len() + 8).sum();
    // At rest, compat holds the array and the metadata; log the head and at most two chunks
    // (each at most the window plus a flushed tail, 8 KiB).
    let (rest_keys, rest_bytes) = match ctx.layout {
        Layout::Compat => (2, 2 * window + 1024),
        Layout::Log => (3, 3 * window + 16 * 1024),
    };
    // While writers race, log also holds chunks written by attempts that lost (on Redis, a
    // transaction whose head write fails still writes its chunks), until each writer's
    // operation ends and deletes them: a bound set by the number of writers, not the history.
    let racing_keys = match ctx.layout {
        Layout::Compat => 2,
        Layout::Log => 2 + 8 * WRITERS,
    };
    println!(
        "{}::{}: {APPENDS} items appended by {WRITERS} writers in calls of {PER_CALL}, max-items {MAX}, \
         in {:.1}s; while writing ({} samples): keys {}..{}, bytes {}..{} (median {} in the first \
         half, {} in the second); at rest: {} keys, {} bytes; window {window} bytes; {reads} \
         concurrent reads, largest {largest} items",
        ctx.backend.kind.name(),
        layout_name(ctx.layout),
        elapsed.as_secs_f64(),
        steady.len(),
        min(&steady, |x| x.keys),
        max(&steady, |x| x.keys),
        min(&steady, |x| x.bytes),
        max(&steady, |x| x.bytes),
        median(first, |x| x.bytes),
        median(second, |x| x.bytes),
        after.keys,
        after.bytes,
    );
    ensure!(
        after.keys <= rest_keys && after.bytes <= rest_bytes,
        "at rest after 10,000 items: {after:?}, want at most {rest_keys} keys and {rest_bytes} bytes"
    );
    ensure!(
        max(&steady, |x| x.keys) <= racing_keys,
        "keys grew past {racing_keys}: {steady:?}"
    );
    ensure!(
        max(&steady, |x| x.bytes) <= racing_keys * (window + 16 * 1024),
        "bytes grew past {racing_keys} keys' worth: {steady:?}"
    );
    // No trend: the typical size late in the run is not above twice the typical size early on
    // (it varies with how many attempts are losing at the moment of a sample).
    ensure!(
        median(second, |x| x.bytes) <= 2 * median(first, |x| x.bytes) + window,
        "bytes grow with appends: {steady:?}"
    );
    Ok(())
}
