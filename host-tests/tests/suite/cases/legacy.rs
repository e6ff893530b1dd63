//! Sessions written by the 0.1.0 component itself (format 1: a key per item, the newest
//! batches in the head, older ones in pages of up to two levels, a recent-items key), opened
//! with the current component: read as they are (version `v1.{etag}`), migrated to format 2
//! by the first write (every 0.1.0 key deleted), a conditional write with the version read
//! before migration accepted. And 0.1.0 data that is damaged: copies that disagree with the
//! head are ignored (item keys are authoritative), missing and corrupt item keys and pages
//! skip only their own items, and entries naming another session's keys are never followed.

use std::collections::BTreeSet;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::SessionError;
use serde_json::{Value, json};

use super::bad_input::unchanged;
use super::corrupt::{delete, keys_of, no_writes, read_fresh};
use super::stored_log::{check_stored, head_of, only_an_empty_head};
use super::v010::V010;
use super::{contents, msg, padded, session_error, traced};
use crate::harness::{CaseResult, Ctx};

/// A 0.1.0 instance with session `id` open on the backend.
async fn v010(ctx: &Ctx, id: &str) -> anyhow::Result<V010> {
    V010::open(
        &ctx.backend.endpoint,
        &ctx.backend.store,
        ctx.backend.api_token.clone(),
        id,
    )
    .await
}

/// Writes session `id` with the 0.1.0 component: `batches` batches of `per` short items, then
/// `pops` pops. Returns the items left, oldest first, checked against
/// 0.1.0's own read.
async fn write_v1(
    ctx: &Ctx,
    id: &str,
    batches: usize,
    per: usize,
    pops: usize,
) -> anyhow::Result<Vec<String>> {
    let mut old = v010(ctx, id).await?;
    let mut all = Vec::with_capacity(batches * per);
    for b in 0..batches {
        let batch: Vec<String> = (0..per)
            .map(|i| msg("user", &format!("v1 b{b} i{i}")))
            .collect();
        old.add(&batch).await?;
        all.extend(batch);
    }
    for _ in 0..pops {
        ensure!(old.pop().await? == all.pop(), "0.1.0 popped out of order");
    }
    ensure!(
        old.get(None).await? == all,
        "0.1.0 reads back what it wrote"
    );
    Ok(all)
}

/// The stored 0.1.0 head of session `id`.
async fn v1_head(ctx: &Ctx, id: &str) -> anyhow::Result<Value> {
    let raw = ctx
        .backend
        .get_bytes(&format!("{id}:head"))
        .await?
        .context("no head")?;
    let head: Value = serde_json::from_slice(&raw)?;
    ensure!(head["v"] == 1, "not a 0.1.0 head: {head}");
    Ok(head)
}

/// Level `k` of a 0.1.0 head, as (nonce, items).
fn level(head: &Value, k: usize) -> Vec<(String, u64)> {
    head["l"][k]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    (
                        e[0].as_str().unwrap_or_default().to_string(),
                        e[1].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The 0.1.0 keys of session `id` in the store: items, pages, the recent key.
async fn v1_keys(ctx: &Ctx, id: &str) -> anyhow::Result<BTreeSet<String>> {
    Ok(ctx
        .backend
        .keys(&format!("{id}:"))
        .await?
        .into_iter()
        .filter(|k| {
            let rest = &k[id.len() + 1..];
            rest == "r"
                || rest
                    .strip_prefix("p:")
                    .is_some_and(super::bad_input::is_nonce)
                || rest.strip_prefix("i:").is_some_and(|r| {
                    r.split_once(':').is_some_and(|(n, i)| {
                        super::bad_input::is_nonce(n) && i.parse::<u64>().is_ok()
                    })
                })
        })
        .collect())
}

/// What the first write after 0.1.0 is.
#[derive(Debug, Clone, Copy)]
enum First {
    Add,
    Pop,
    Clear,
    /// `replace` of the whole history, with the version read before migration.
    Replace,
    /// `replace-suffix` of the 10 newest items, with the version read before migration.
    ReplaceSuffix,
}

/// Session `id`, written by 0.1.0 and holding `items`, opened with the current component:
/// read as it is without writing (whole, limited, by snapshot with a `v1.` version, with
/// 0.1.0's timestamps), then written by `first`, which migrates it: every 0.1.0 key is
/// gone, the head is format 2 (the old head dropped from it), the items are what the write
/// made of them, each stored once. Then adds, pops, a stale conditional replace (`changed`)
/// and a clear work as on any session.
async fn migrates(ctx: &Ctx, id: &str, items: &[String], first: First) -> CaseResult {
    let times = v010(ctx, id).await?.times().await?;
    let before = v1_keys(ctx, id).await?;
    ensure!(
        before.iter().any(|k| k.contains(":i:")),
        "no 0.1.0 item keys stored"
    );
    let (mut inst, traffic) = traced(ctx).await?;
    let s = ctx.open(&mut inst, id).await?;
    ensure!(inst.get_items(s, None).await? == items, "whole read");
    for limit in [1, 5, 30, items.len() - 1, items.len() + 3] {
        let want = &items[items.len().saturating_sub(limit)..];
        ensure!(
            inst.get_items(s, Some(limit as u32)).await? == want,
            "get({limit})"
        );
    }
    let snap = inst.get_snapshot(s, None).await?;
    ensure!(
        snap.version.starts_with("v1.") && snap.first == 0 && snap.items == items,
        "snapshot: version {}, first {}",
        snap.version,
        snap.first
    );
    let k = items.len().min(7);
    let limited = inst.get_snapshot(s, Some(k as u32)).await?;
    ensure!(
        limited.first == (items.len() - k) as u64 && limited.version == snap.version,
        "get-snapshot(7): {}",
        limited.first
    );
    let m = inst.metadata(s).await?;
    ensure!(
        (m.created_at, m.updated_at) == times,
        "timestamps {m:?}, 0.1.0 said {times:?}"
    );
    no_writes(&traffic, "reads of a 0.1.0 session")?;
    ensure!(
        v1_keys(ctx, id).await? == before,
        "reads changed the 0.1.0 keys"
    );

    let new = vec![msg("user", "after 0.1.0"), msg("assistant", "migrated")];
    let mut want = items.to_vec();
    match first {
        First::Add => {
            inst.add_items(s, &new).await?;
            want.extend(new.clone());
        }
        First::Pop => {
            ensure!(inst.pop_item(s).await?.as_ref() == want.last(), "pop");
            want.pop();
        }
        First::Clear => {
            inst.clear(s).await?;
            want.clear();
        }
        First::Replace => {
            inst.replace(s, &new, Some(&snap.version)).await?;
            want = new.clone();
        }
        First::ReplaceSuffix => {
            let start = items.len() as u64 - 10;
            inst.replace_suffix(s, start, &new, Some(&snap.version))
                .await?;
            want.truncate(start as usize);
            want.extend(new.clone());
        }
    }
    let left = v1_keys(ctx, id).await?;
    ensure!(left.is_empty(), "{first:?}: 0.1.0 keys left: {left:?}");
    let head = check_stored(ctx, id, &want, !matches!(first, First::Pop)).await?;
    ensure!(
        head.raw.get("x").is_none(),
        "{first:?}: the 0.1.0 head is still inside: {}",
        head.raw
    );
    ensure!(
        read_fresh(ctx, id, None).await? == want,
        "{first:?}: read back"
    );
    let m = inst.metadata(s).await?;
    match first {
        // A clear removes the timestamps with the items.
        First::Clear => ensure!(m.created_at.is_none(), "{first:?}: {m:?}"),
        _ => ensure!(
            m.created_at == times.0 && m.updated_at >= times.1,
            "{first:?}: timestamps {m:?}, 0.1.0 said {times:?}"
        ),
    }
    let version = inst.get_snapshot(s, Some(1)).await?.version;
    ensure!(!version.starts_with("v1."), "{version}");

    // The session works as any other.
    inst.add_items(s, &new).await?;
    want.extend(new.clone());
    ensure!(inst.pop_item(s).await?.as_ref() == want.last());
    want.pop();
    ensure!(inst.get_items(s, None).await? == want);
    let stored = keys_of(ctx, id).await?;
    let err = session_error(inst.replace(s, &new, Some(&snap.version)).await)?;
    ensure!(
        matches!(err, SessionError::Changed),
        "{first:?}: a replace with the pre-migration version after later writes: {err:?}"
    );
    unchanged(&stored, &keys_of(ctx, id).await?, "refused replace")?;
    inst.clear(s).await?;
    only_an_empty_head(ctx, id).await?;
    ensure!(inst.get_items(s, None).await?.is_empty());
    Ok(())
}

/// Sessions short enough to live in 0.1.0's head and item keys alone (5 items, one popped),
/// migrated by each kind of first write: add, pop, clear, and `replace` with the version read
/// before migration. Then two current instances append to a fresh 0.1.0 copy at once: both
/// batches are stored once, whole, and the 0.1.0 keys are gone.
pub async fn small_session_migrates(ctx: Ctx) -> CaseResult {
    for first in [First::Add, First::Pop, First::Clear, First::Replace] {
        let id = ctx.id("v1-small");
        let items = write_v1(&ctx, &id, 2, 3, 1).await?;
        ensure!(v1_head(&ctx, &id).await?["l"].as_array().map(Vec::len) == Some(1));
        migrates(&ctx, &id, &items, first)
            .await
            .with_context(|| format!("first write {first:?}"))?;
    }
    let id = ctx.id("v1-racing");
    let items = write_v1(&ctx, &id, 2, 3, 0).await?;
    let mut tasks = Vec::new();
    for w in 0..2 {
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        tasks.push(tokio::spawn(async move {
            let batch = vec![
                msg("user", &format!("w{w} 0")),
                msg("user", &format!("w{w} 1")),
            ];
            inst.add_items(s, &batch).await?;
            anyhow::Ok(batch)
        }));
    }
    let mut batches = Vec::new();
    for t in tasks {
        batches.push(t.await??);
    }
    let got = read_fresh(&ctx, &id, None).await?;
    ensure!(got[..items.len()] == items[..], "the 0.1.0 items changed");
    let rest = &got[items.len()..];
    ensure!(
        rest == [batches[0].clone(), batches[1].clone()].concat()
            || rest == [batches[1].clone(), batches[0].clone()].concat(),
        "racing first writes: {:?}",
        contents(rest)
    );
    ensure!(v1_keys(&ctx, &id).await?.is_empty(), "0.1.0 keys left");
    check_stored(&ctx, &id, &got, true).await?;
    Ok(())
}

/// Sessions of 300 items (150 batches, 3 popped): 0.1.0 spilled the oldest batches into
/// pages and kept a recent-items key. Migrated by an append, and by a `replace-suffix` of
/// the 10 newest items with the version read before migration.
pub async fn paged_session_migrates(ctx: Ctx) -> CaseResult {
    for first in [First::Add, First::ReplaceSuffix] {
        let id = ctx.id("v1-paged");
        let items = write_v1(&ctx, &id, 150, 2, 3).await?;
        let head = v1_head(&ctx, &id).await?;
        ensure!(level(&head, 1).len() >= 2, "no pages: {head}");
        let keys = v1_keys(&ctx, &id).await?;
        ensure!(
            keys.contains(&format!("{id}:r")) && keys.iter().any(|k| k.contains(":p:")),
            "no recent key or page: {keys:?}"
        );
        migrates(&ctx, &id, &items, first)
            .await
            .with_context(|| format!("first write {first:?}"))?;
    }
    Ok(())
}

/// A session of 4,295 items (2,150 batches, 5 popped): 0.1.0's pages had pages of their
/// own (a second level: its first level spills past 64 pages at batch 2,145). Migrated by a
/// `replace-suffix` with the version read before migration.
pub async fn two_level_session_migrates(ctx: Ctx) -> CaseResult {
    let id = ctx.id("v1-levels");
    let items = write_v1(&ctx, &id, 2_150, 2, 5).await?;
    let head = v1_head(&ctx, &id).await?;
    ensure!(!level(&head, 2).is_empty(), "no second level: {head}");
    migrates(&ctx, &id, &items, First::ReplaceSuffix).await
}

/// 0.1.0's copies that disagree with its head: the head's record of which batches the recent
/// key holds names batches it does not list, the recent key holds forged items or is not
/// JSON, the head's tail copies are forged. The current component reads item keys only, so
/// every read returns exactly the stored items, and the migration takes the same items
/// (and deletes the recent key).
pub async fn copies_disagreeing_with_the_head_are_ignored(ctx: Ctx) -> CaseResult {
    for what in ["record", "recent forged", "recent not json", "tail forged"] {
        let id = ctx.id("v1-copies");
        let all = write_v1(&ctx, &id, 70, 2, 0).await?;
        let mut head = v1_head(&ctx, &id).await?;
        match what {
            "record" => {
                head["k"] = json!(["nosuchbatch1", "nosuchbatch2"]);
                ctx.backend
                    .put_bytes(&format!("{id}:r"), b"[[\"nosuchbatch1\",[\"{}\"]]]")
                    .await?;
            }
            "recent forged" => {
                let forged: Vec<Value> = level(&head, 0)
                    .iter()
                    .map(|(n, c)| json!([n, vec![msg("user", "forged"); *c as usize]]))
                    .collect();
                ctx.backend
                    .put_bytes(
                        &format!("{id}:r"),
                        Value::Array(forged).to_string().as_bytes(),
                    )
                    .await?;
            }
            "recent not json" => {
                ctx.backend
                    .put_bytes(&format!("{id}:r"), b"\xff not json")
                    .await?;
            }
            _ => {
                let n = head["n"].as_array().map_or(0, Vec::len);
                ensure!(n > 0, "no tail copies: {head}");
                head["n"] = json!(vec![msg("user", "forged"); n]);
            }
        }
        ctx.backend
            .put_bytes(&format!("{id}:head"), head.to_string().as_bytes())
            .await?;
        ensure!(read_fresh(&ctx, &id, None).await? == all, "{what}");
        ensure!(
            read_fresh(&ctx, &id, Some(50)).await?[..] == all[90..],
            "{what}: get(50)"
        );
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        inst.add_items(s, &[msg("user", "after")]).await?;
        let mut want = all.clone();
        want.push(msg("user", "after"));
        ensure!(
            read_fresh(&ctx, &id, None).await? == want,
            "{what}: migrated"
        );
        ensure!(
            v1_keys(&ctx, &id).await?.is_empty(),
            "{what}: 0.1.0 keys left"
        );
        check_stored(&ctx, &id, &want, true).await?;
    }
    Ok(())
}

/// 0.1.0 keys that are missing or hold what no writer stores: item keys (gone, not JSON, a
/// number, a string holding an array or garbage) are skipped one by one (a positive limit
/// counts valid items; an item key holding the object itself is read, as the compat layout
/// reads objects); a page that is gone or does not parse skips exactly its batches. Reads
/// write nothing and leave every key as it was; the first write migrates exactly the
/// readable items, and later reads agree.
pub async fn missing_and_corrupt_keys_are_skipped(ctx: Ctx) -> CaseResult {
    // Item keys: batches 40..44 are in level 0 (batches 32..70), outside the tail copies.
    let id = ctx.id("v1-items");
    let all = write_v1(&ctx, &id, 70, 2, 0).await?;
    let l0 = level(&v1_head(&ctx, &id).await?, 0);
    ensure!(l0.len() == 38, "level 0 holds {} batches", l0.len());
    let bad: [&[u8]; 4] = [b"not json", b"42", b"\"[1,2]\"", b"\"not json {{{\""];
    for (j, bytes) in bad.iter().enumerate() {
        let (nonce, _) = &l0[40 - 32 + j];
        ctx.backend
            .put_bytes(&format!("{id}:i:{nonce}:1"), bytes)
            .await?;
    }
    let object = padded("object, not a string", 200);
    ctx.backend
        .put_bytes(&format!("{id}:i:{}:0", l0[44 - 32].0), object.as_bytes())
        .await?;
    delete(&ctx, &format!("{id}:i:{}:0", l0[45 - 32].0)).await?;
    let want: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !((80..88).contains(i) && i % 2 == 1) && *i != 90)
        .map(|(i, item)| {
            if i == 88 {
                object.clone()
            } else {
                item.clone()
            }
        })
        .collect();
    ensure!(want.len() == 135);
    let before = keys_of(&ctx, &id).await?;
    ensure!(read_fresh(&ctx, &id, None).await? == want, "item keys");
    ensure!(read_fresh(&ctx, &id, Some(60)).await?[..] == want[75..]);
    unchanged(&before, &keys_of(&ctx, &id).await?, "reads")?;
    migrated_as_read(&ctx, &id, &want).await?;

    // A page: gone, or not a page.
    for (what, bytes) in [
        ("missing", None),
        ("not json", Some(b"not json".to_vec())),
        ("a string", Some(b"\"page\"".to_vec())),
        ("entries a string", Some(b"{\"e\":\"x\"}".to_vec())),
        (
            "negative count",
            Some(b"{\"e\":[[\"aaaaaaaaaaaa\",-2]]}".to_vec()),
        ),
    ] {
        let id = ctx.id("v1-page");
        let all = write_v1(&ctx, &id, 70, 2, 0).await?;
        let (page, _) = level(&v1_head(&ctx, &id).await?, 1)[0].clone();
        let key = format!("{id}:p:{page}");
        match &bytes {
            None => delete(&ctx, &key).await?,
            Some(b) => ctx.backend.put_bytes(&key, b).await?,
        }
        // Batches 0..32 are behind the page: skipped; the 76 items of level 0 are read.
        let before = keys_of(&ctx, &id).await?;
        ensure!(
            read_fresh(&ctx, &id, None).await?[..] == all[64..],
            "page {what}: it hides more than its own batches"
        );
        ensure!(read_fresh(&ctx, &id, Some(30)).await?[..] == all[110..]);
        unchanged(&before, &keys_of(&ctx, &id).await?, what)?;
        migrated_as_read(&ctx, &id, &all[64..]).await?;
    }
    Ok(())
}

/// The first write (an append) to a 0.1.0 session that reads as `read` keeps exactly those
/// items, in a format-2 head; prints what 0.1.0 keys it could not find to delete.
async fn migrated_as_read(ctx: &Ctx, id: &str, read: &[String]) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, id).await?;
    inst.add_items(s, &[msg("user", "after")]).await?;
    let mut want = read.to_vec();
    want.push(msg("user", "after"));
    ensure!(read_fresh(ctx, id, None).await? == want, "after migration");
    ensure!(head_of(ctx, id).await?.raw["v"] == 2);
    let left = v1_keys(ctx, id).await?;
    if !left.is_empty() {
        println!(
            "{}: {id}: {} 0.1.0 keys the migration could not reach: {:?}",
            ctx.backend.kind.name(),
            left.len(),
            left.iter().take(3).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// 0.1.0 entries name keys (`{id}:i:{batch}:{n}`, `{id}:p:{page}`), so an entry whose id is
/// not a nonce could name another session's keys: batch `x:i:{nonce}` of session `t` is item
/// key `t:i:x:i:{nonce}:0`, which belongs to session `t:i:x`. A page listing one reads as if
/// the entry were not there; the other session's item is never returned as this session's,
/// and neither the migration nor a clear deletes it.
pub async fn entries_naming_other_sessions_keys_are_refused(ctx: Ctx) -> CaseResult {
    let t = ctx.id("v1-namer");
    let all = write_v1(&ctx, &t, 70, 2, 0).await?;
    let victim = format!("{t}:i:x");
    let victim_items = write_v1(&ctx, &victim, 1, 1, 0).await?;
    let (vn, _) = level(&v1_head(&ctx, &victim).await?, 0)[0].clone();
    let victim_keys = keys_of(&ctx, &victim).await?;
    let (page, _) = level(&v1_head(&ctx, &t).await?, 1)[0].clone();
    let mut forged: Vec<Value> = (0..31).map(|i| json!([format!("{i:0>12}"), 2])).collect();
    forged.push(json!([format!("x:i:{vn}"), 1]));
    ctx.backend
        .put_bytes(
            &format!("{t}:p:{page}"),
            json!({ "e": forged }).to_string().as_bytes(),
        )
        .await?;
    let got = read_fresh(&ctx, &t, None).await?;
    ensure!(got[..] == all[64..], "read {} items", got.len());
    ensure!(
        !got.contains(&victim_items[0]),
        "read the other session's item"
    );
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &t).await?;
    inst.clear(s).await?;
    ensure!(read_fresh(&ctx, &t, None).await?.is_empty());
    unchanged(&victim_keys, &keys_of(&ctx, &victim).await?, "victim")?;
    let v = ctx.open(&mut inst, &victim).await?;
    ensure!(inst.get_items(v, None).await? == victim_items);
    Ok(())
}
