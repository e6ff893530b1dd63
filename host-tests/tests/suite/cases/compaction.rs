//! Compaction: `get-snapshot`, `replace` and `replace-suffix`, alone and racing appends from
//! other instances, with readers polling throughout. A conditional replace (the SDK's
//! `replace_suffix` compare-and-swap) either replaces exactly what was read or fails
//! `changed` and writes nothing; an unconditional one wins whole; readers see the old
//! history or the new one, never a mix and never an empty session.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, ensure};
use dapr_session_host_tests::host::{Instance, Layout, SessionError, SessionHandle};
use serde_json::{Value, json};

use super::bad_input::{snapshot, unchanged};
use super::{contents, messages, msg, session_error, traced};
use crate::harness::{CaseResult, Ctx};

/// Items whose text a reformatting writer would change: spacing, key order, number
/// spelling, escapes, non-ASCII.
fn odd_items(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 4 {
            0 => format!(r#"{{"role":"user", "content":"old {i}",  "n": 1.50e1}}"#),
            1 => {
                format!(r#"{{"content":"old {i}","role":"assistant","z":{{"b":[1, 2],"a":null}}}}"#)
            }
            2 => format!(
                r#"{{"role":"user","content":"old {i}","t":"é \u00e9 \ud83d\ude00 \"q\""}}"#
            ),
            _ => format!(r#"{{ "type":"message","role":"user","content":"old {i}" }}"#),
        })
        .collect()
}

/// Adds `items` in batches of `per`.
async fn fill(inst: &mut Instance, s: SessionHandle, items: &[String], per: usize) -> CaseResult {
    for batch in items.chunks(per) {
        inst.add_items(s, batch).await?;
    }
    Ok(())
}

/// Every key of session `id` and its bytes, with a check that no key appeared or changed.
async fn same_store(
    ctx: &Ctx,
    id: &str,
    before: &std::collections::BTreeMap<String, Vec<u8>>,
    what: &str,
) -> CaseResult {
    let after = snapshot(ctx, &format!("{id}:")).await?;
    unchanged(before, &after, what)?;
    ensure!(
        after.len() == before.len(),
        "{what}: keys appeared: {:?}",
        after
            .keys()
            .filter(|k| !before.contains_key(*k))
            .collect::<Vec<_>>()
    );
    Ok(())
}

/// `replace-suffix` at every kind of position (inside the tail, inside and at the edges of
/// chunks, 0, the end) keeps every older item byte for byte; the window a snapshot returns is
/// exactly what `replace-suffix(first, ..)` replaces; a stale version or a start past the end
/// is refused and leaves every stored byte as it was.
pub async fn suffix_replace_keeps_older_items_byte_for_byte(ctx: Ctx) -> CaseResult {
    let id = ctx.id("suffix");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let old = odd_items(400);
    fill(&mut inst, s, &old, 7).await?;
    ensure!(
        inst.get_items(s, None).await? == old,
        "seeded history differs"
    );
    let mut expected = old.clone();
    for (round, limit) in [1u32, 5, 40, 150, 200].into_iter().enumerate() {
        // The SDK's replace_suffix: read the newest window, replace exactly it.
        let snap = inst.get_snapshot(s, Some(limit)).await?;
        let first = usize::try_from(snap.first)?;
        ensure!(
            snap.items == expected[first..]
                && snap.items.len() == (limit as usize).min(expected.len()),
            "round {round}: the window of {limit} is not the newest {limit} items"
        );
        let new = vec![
            json!({"role": "assistant", "content": format!("summary {round}"), "of": limit})
                .to_string(),
            msg("user", &format!("kept {round}")),
        ];
        inst.replace_suffix(s, snap.first, &new, Some(&snap.version))
            .await?;
        expected.truncate(first);
        expected.extend(new);
        // A fresh instance reads every older item byte for byte.
        let mut fresh = ctx.instance().await?;
        let f = ctx.open(&mut fresh, &id).await?;
        ensure!(
            fresh.get_items(f, None).await? == expected,
            "round {round}: the history after replace-suffix({first}) differs"
        );
        // The version moved; the old one is refused and nothing changes.
        let before = snapshot(&ctx, &format!("{id}:")).await?;
        let err = session_error(
            inst.replace_suffix(s, snap.first, &[msg("user", "stale")], Some(&snap.version))
                .await,
        )?;
        ensure!(
            matches!(err, SessionError::Changed),
            "stale version: {err:?}"
        );
        let err = session_error(
            inst.replace(s, &[msg("user", "stale")], Some(&snap.version))
                .await,
        )?;
        ensure!(
            matches!(err, SessionError::Changed),
            "stale version: {err:?}"
        );
        same_store(&ctx, &id, &before, "a stale replace").await?;
    }
    // Position 0 with the current version replaces everything; the end appends.
    let snap = inst.get_snapshot(s, Some(0)).await?;
    ensure!(
        snap.items.is_empty() && snap.first == expected.len() as u64,
        "{:?}",
        (snap.first, expected.len())
    );
    inst.replace_suffix(
        s,
        snap.first,
        &[msg("user", "appended")],
        Some(&snap.version),
    )
    .await?;
    expected.push(msg("user", "appended"));
    ensure!(inst.get_items(s, None).await? == expected);
    // Past the end: invalid-input, nothing changes.
    let before = snapshot(&ctx, &format!("{id}:")).await?;
    let err = session_error(
        inst.replace_suffix(s, expected.len() as u64 + 1, &[msg("user", "x")], None)
            .await,
    )?;
    ensure!(
        matches!(err, SessionError::InvalidInput(_)),
        "past the end: {err:?}"
    );
    // A bad item: invalid-input naming it, nothing sent.
    let err = session_error(
        inst.replace_suffix(s, 0, &[msg("user", "ok"), "[1]".into()], None)
            .await,
    )?;
    ensure!(
        matches!(&err, SessionError::InvalidInput(ii) if ii.item_index == Some(1)),
        "bad item: {err:?}"
    );
    same_store(&ctx, &id, &before, "a refused replace").await?;
    let snap = inst.get_snapshot(s, None).await?;
    inst.replace_suffix(s, 0, &old[..3], Some(&snap.version))
        .await?;
    ensure!(inst.get_items(s, None).await? == old[..3]);
    Ok(())
}

/// What a session read shows: the history it starts with, then whole appended batches.
#[derive(Debug, PartialEq, Eq)]
enum Base {
    /// The seeded history, whole.
    Old,
    /// The summary block of compaction `g`, with the batches and summaries it covers.
    Summary(usize, BTreeSet<String>),
}

/// Parses a read: `old` whole or one summary block, then whole 3-item batches
/// `w{w} b{b} i{i}`, each writer's in its order. Anything else (a mix of old and new, half a
/// batch, an empty session) is an error.
fn parse_history(items: &[String], old: &[String]) -> anyhow::Result<(Base, Vec<(usize, usize)>)> {
    ensure!(!items.is_empty(), "an empty session");
    let c = contents(items);
    let (base, rest) = if c[0] == "old 0" {
        ensure!(
            items.len() >= old.len() && items[..old.len()] == *old,
            "the old history, but not whole: {:?}",
            &c[..c.len().min(5)]
        );
        (Base::Old, &c[old.len()..])
    } else if let Some(g) = c[0]
        .strip_prefix("sum ")
        .and_then(|g| g.parse::<usize>().ok())
    {
        ensure!(
            c.len() >= 3 && c[1] == format!("sum {g} k0") && c[2] == format!("sum {g} k1"),
            "summary {g}, but not whole: {:?}",
            &c[..c.len().min(5)]
        );
        let covers: BTreeSet<String> = serde_json::from_str::<Value>(&items[0])?["covers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        (Base::Summary(g, covers), &c[3..])
    } else {
        bail!(
            "neither the old history nor a summary first: {:?}",
            &c[..c.len().min(5)]
        );
    };
    ensure!(rest.len() % 3 == 0, "half a batch at the end: {rest:?}");
    let mut batches = Vec::new();
    let mut next: HashMap<usize, usize> = HashMap::new();
    for chunk in rest.chunks(3) {
        let (w, b) = parse_batch(&chunk[0]).ok_or_else(|| {
            anyhow::anyhow!("old or summary items after the start, or a stray item: {chunk:?}")
        })?;
        for (i, item) in chunk.iter().enumerate() {
            ensure!(
                *item == format!("w{w} b{b} i{i}"),
                "half a batch: {chunk:?}"
            );
        }
        let due = next.entry(w).or_default();
        ensure!(b >= *due, "writer {w}: batch {b} after batch {}", *due - 1);
        *due = b + 1;
        batches.push((w, b));
    }
    Ok((base, batches))
}

fn parse_batch(item: &str) -> Option<(usize, usize)> {
    let mut parts = item.split(' ');
    let w = parts.next()?.strip_prefix('w')?.parse().ok()?;
    let b = parts.next()?.strip_prefix('b')?.parse().ok()?;
    Some((w, b))
}

/// The summary block of compaction `g`, covering `covers`.
fn summary(g: usize, covers: &BTreeSet<String>) -> Vec<String> {
    let mut out = vec![
        json!({"role": "assistant", "content": format!("sum {g}"), "covers": covers}).to_string(),
    ];
    out.extend((0..2).map(|k| msg("assistant", &format!("sum {g} k{k}"))));
    out
}

/// What a compaction of `read` covers: the batches in it, and whatever its base covered.
fn covered(base: &Base, batches: &[(usize, usize)]) -> BTreeSet<String> {
    let mut covers = match base {
        Base::Old => BTreeSet::from(["old".to_string()]),
        Base::Summary(_, c) => c.clone(),
    };
    covers.extend(batches.iter().map(|(w, b)| format!("w{w} b{b}")));
    covers
}

/// A spawned part of a race.
type Task<T> = tokio::task::JoinHandle<anyhow::Result<T>>;

/// Readers that poll whole reads until stopped, checking each; they return how many reads
/// they made.
fn spawn_readers(
    ctx: &Ctx,
    id: &str,
    old: &[String],
    n: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<Task<u64>> {
    (0..n)
        .map(|r| {
            let (host, config, id, old, stop) = (
                ctx.host.clone(),
                ctx.config(),
                id.to_string(),
                old.to_vec(),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut inst = host.instance().await?;
                let s = inst.open(&id, &config).await?;
                let mut reads = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let items = if r % 2 == 0 {
                        inst.get_items(s, None).await?
                    } else {
                        inst.get_snapshot(s, None).await?.items
                    };
                    parse_history(&items, &old)
                        .map_err(|e| anyhow::anyhow!("reader {r}, read {reads}: {e:#}"))?;
                    reads += 1;
                }
                anyhow::Ok(reads)
            })
        })
        .collect()
}

/// Writers appending `batches` 3-item batches each, a few milliseconds apart; they return
/// the batches acknowledged.
fn spawn_writers(
    ctx: &Ctx,
    id: &str,
    writers: usize,
    batches: usize,
) -> Vec<Task<Vec<(usize, usize)>>> {
    (0..writers)
        .map(|w| {
            let (host, config, id) = (ctx.host.clone(), ctx.config(), id.to_string());
            tokio::spawn(async move {
                let mut inst = host.instance().await?;
                let s = inst.open(&id, &config).await?;
                let mut acked = Vec::new();
                for b in 0..batches {
                    let batch: Vec<String> = (0..3)
                        .map(|i| msg("user", &format!("w{w} b{b} i{i}")))
                        .collect();
                    inst.add_items(s, &batch).await?;
                    acked.push((w, b));
                    tokio::time::sleep(Duration::from_millis(4)).await;
                }
                anyhow::Ok(acked)
            })
        })
        .collect()
}

/// Deterministic races first. An append lands between the snapshot and the replace: the
/// conditional replace fails `changed` and writes nothing; the unconditional one wins whole.
/// An append from an instance that last saw the old history lands after the replace: it
/// follows the new history. Then the old history's keys are gone.
pub async fn replace_racing_an_append_lands_before_or_after(ctx: Ctx) -> CaseResult {
    let id = ctx.id("race1");
    let old = messages("old", 200);
    // The appender writes the history, so it knows the head (on Redis it bets on the etag).
    let mut appender = ctx.instance().await?;
    let a = ctx.open(&mut appender, &id).await?;
    fill(&mut appender, a, &old, 4).await?;
    let mut compactor = ctx.instance().await?;
    let c = ctx.open(&mut compactor, &id).await?;
    let snap = compactor.get_snapshot(c, None).await?;
    ensure!(snap.items == old && snap.first == 0);

    // Lands before.
    let racer = messages("racer", 2);
    appender.add_items(a, &racer).await?;
    let before = snapshot(&ctx, &format!("{id}:")).await?;
    let new = messages("new", 5);
    let err = session_error(compactor.replace(c, &new, Some(&snap.version)).await)?;
    ensure!(
        matches!(err, SessionError::Changed),
        "conditional replace after an append: {err:?}"
    );
    same_store(&ctx, &id, &before, "a refused replace").await?;
    let mut want = old.clone();
    want.extend(racer);
    ensure!(
        compactor.get_items(c, None).await? == want,
        "the refused replace changed the history"
    );
    compactor.replace(c, &new, None).await?;
    ensure!(
        compactor.get_items(c, None).await? == new,
        "the unconditional replace did not win whole"
    );

    // Lands after, from an instance whose last view is the history before the replace.
    let snap = compactor.get_snapshot(c, None).await?;
    let newer = messages("newer", 3);
    compactor.replace(c, &newer, Some(&snap.version)).await?;
    let after = messages("after", 2);
    appender.add_items(a, &after).await?;
    let mut want = newer.clone();
    want.extend(after);
    let mut fresh = ctx.instance().await?;
    let f = ctx.open(&mut fresh, &id).await?;
    ensure!(
        fresh.get_items(f, None).await? == want,
        "an append after the replace does not follow it"
    );

    // Nothing of the old history is left in the store (log: its chunks are deleted once a
    // commit no longer references them).
    if ctx.layout == Layout::Log {
        let head: Value = serde_json::from_slice(
            &ctx.backend
                .get_bytes(&format!("{id}:head"))
                .await?
                .unwrap_or_default(),
        )?;
        let keys = ctx.backend.keys(&format!("{id}:")).await?;
        let referenced = head["k"].as_array().map_or(0, Vec::len);
        ensure!(
            keys.len() == 1 + referenced,
            "keys {keys:?} for a head referencing {referenced} chunks"
        );
    }
    Ok(())
}

/// Three instances append batches while a fourth compacts again and again with conditional
/// replaces (snapshot, summarise, `replace` at the version read; `changed` → read again), and
/// two more read throughout. Every read is the old history or a summary, then whole batches;
/// at the end, every acknowledged batch is in the history or covered by the summary at its
/// start, and none is both: a conditional replace never loses an append.
pub async fn conditional_replaces_racing_appends_lose_nothing(ctx: Ctx) -> CaseResult {
    let id = ctx.id("race-cas");
    let old = messages("old", 150);
    let mut compactor = ctx.instance().await?;
    let c = ctx.open(&mut compactor, &id).await?;
    fill(&mut compactor, c, &old, 5).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(&ctx, &id, &old, 2, &stop);
    let writers = spawn_writers(&ctx, &id, 3, 25);
    let (mut replaced, mut changed) = (0usize, 0usize);
    while replaced < 6 {
        ensure!(
            changed < 500,
            "{changed} conditional replaces in a row were refused"
        );
        let snap = compactor.get_snapshot(c, None).await?;
        let (base, batches) = parse_history(&snap.items, &old)?;
        let new = summary(replaced, &covered(&base, &batches));
        match compactor.replace(c, &new, Some(&snap.version)).await {
            Ok(()) => replaced += 1,
            Err(e) => match e.session() {
                Some(SessionError::Changed) => changed += 1,
                _ => bail!("a conditional replace failed: {e}"),
            },
        }
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await??);
    }
    stop.store(true, Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await??;
    }
    let (base, batches) = parse_history(&compactor.get_items(c, None).await?, &old)?;
    let Base::Summary(g, covers) = base else {
        bail!("the final history does not start with a summary");
    };
    ensure!(
        g == replaced - 1,
        "the final summary is {g}, the last replace made {}",
        replaced - 1
    );
    ensure!(
        covers.contains("old"),
        "the old history is neither kept nor summarised"
    );
    for (w, b) in &acked {
        let tag = format!("w{w} b{b}");
        let present = batches.contains(&(*w, *b));
        ensure!(
            present != covers.contains(&tag),
            "batch {tag}: present {present}, summarised {}",
            !present
        );
    }
    ensure!(
        batches.len() + covers.len() - 1 == acked.len(),
        "batches present or summarised that nobody acknowledged"
    );
    println!(
        "{}::{}: {replaced} conditional replaces landed, {changed} refused (changed); {} batches appended; {reads} reads, all whole",
        ctx.backend.kind.name(),
        crate::harness::layout_name(ctx.layout),
        acked.len()
    );
    Ok(())
}

/// The same race with unconditional replaces: each wins whole (what was appended before it
/// is gone, by design); readers never see a mix or an empty session; whatever is appended
/// after the last replace returned follows it.
pub async fn unconditional_replaces_racing_appends_win_whole(ctx: Ctx) -> CaseResult {
    let id = ctx.id("race-force");
    let old = messages("old", 150);
    let mut compactor = ctx.instance().await?;
    let c = ctx.open(&mut compactor, &id).await?;
    fill(&mut compactor, c, &old, 5).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let readers = spawn_readers(&ctx, &id, &old, 2, &stop);
    let writers = spawn_writers(&ctx, &id, 3, 25);
    for g in 0..5 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        compactor
            .replace(c, &summary(g, &BTreeSet::new()), None)
            .await?;
    }
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await??);
    }
    // One more batch per writer, appended after the last replace returned.
    let mut late = ctx.instance().await?;
    let l = ctx.open(&mut late, &id).await?;
    let tail: Vec<String> = (0..3)
        .map(|i| msg("user", &format!("w9 b0 i{i}")))
        .collect();
    late.add_items(l, &tail).await?;
    stop.store(true, Ordering::SeqCst);
    let mut reads = 0;
    for r in readers {
        reads += r.await??;
    }
    let (base, batches) = parse_history(&compactor.get_items(c, None).await?, &old)?;
    ensure!(
        matches!(base, Base::Summary(4, _)),
        "the last replace did not win: {base:?}"
    );
    ensure!(
        batches.last() == Some(&(9, 0)),
        "the append after the replace is not last: {batches:?}"
    );
    println!(
        "{}::{}: 5 unconditional replaces, {} of {} batches appended during the race kept after the last; {reads} reads, all whole",
        ctx.backend.kind.name(),
        crate::harness::layout_name(ctx.layout),
        batches.len() - 1,
        acked.len()
    );
    Ok(())
}

/// `compat`: a replace is one etag-guarded (first-write) save of the messages key, as any
/// Python `DaprSession` write is, then the metadata; `clear` deletes both keys in one
/// transaction on a transactional store.
pub async fn compat_replace_is_one_guarded_write(ctx: Ctx) -> CaseResult {
    let id = ctx.id("compat-wire");
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &messages("old", 4)).await?;
    let snap = inst.get_snapshot(s, None).await?;
    traffic.clear();
    inst.replace_suffix(s, 2, &messages("new", 1), Some(&snap.version))
        .await?;
    let messages_key = format!("{id}:messages");
    let saves: Vec<Value> = traffic
        .exchanges()
        .iter()
        .filter(|e| {
            e.method == "POST"
                && e.path_and_query()
                    .starts_with(&format!("/v1.0/state/{}", ctx.backend.store))
        })
        .flat_map(|e| e.json().as_array().cloned().unwrap_or_default())
        .filter(|w| w["key"] == messages_key.as_str())
        .collect();
    ensure!(saves.len() == 1, "saves of the messages key: {saves:?}");
    let save = &saves[0];
    ensure!(
        save["etag"]
            .as_str()
            .is_some_and(|etag| snap.version.starts_with(&format!("{etag}-")))
            && save["options"]["concurrency"] == "first-write",
        "not guarded by the etag read: {save}"
    );
    let stored: Vec<String> = serde_json::from_value(save["value"].clone())?;
    let mut want = messages("old", 2);
    want.extend(messages("new", 1));
    ensure!(stored == want, "the saved array: {stored:?}");
    ensure!(
        !traffic
            .exchanges()
            .iter()
            .any(|e| e.path_and_query().contains("/transaction") || e.method == "DELETE"),
        "a replace deleted or used a transaction"
    );

    traffic.clear();
    inst.clear(s).await?;
    let requests: Vec<String> = traffic
        .exchanges()
        .iter()
        .filter(|e| e.path_and_query().starts_with("/v1.0/state/"))
        .map(|e| format!("{} {}", e.method, e.path_and_query()))
        .collect();
    let tx = traffic
        .exchanges()
        .into_iter()
        .find(|e| e.path_and_query().ends_with("/transaction"));
    let Some(tx) = tx else {
        bail!("clear made no transaction: {requests:?}");
    };
    let ops = tx.json()["operations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let deleted: BTreeSet<String> = ops
        .iter()
        .filter(|o| o["operation"] == "delete")
        .filter_map(|o| o["request"]["key"].as_str().map(str::to_string))
        .collect();
    ensure!(
        deleted == BTreeSet::from([messages_key.clone(), format!("{id}:metadata")])
            && ops.len() == 2,
        "clear's transaction: {ops:?}"
    );
    ensure!(
        requests.iter().filter(|r| r.starts_with("DELETE")).count() == 0,
        "clear also deleted one by one: {requests:?}"
    );
    ensure!(
        ctx.backend.keys(&format!("{id}:")).await?.is_empty(),
        "keys left after clear"
    );
    Ok(())
}
