//! Corrupt chunks of a log-layout session. A chunk that is missing, is not a JSON array of
//! strings, or whose count disagrees with the head is skipped by reads (a positive limit
//! counts valid items), fails the writes that must rewrite it (and is left byte for byte),
//! and is dropped by pops, which go on to older items. Entries of a chunk that are not items
//! are skipped one by one.

use std::collections::BTreeMap;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::{Instance, SessionError, SessionHandle};

use super::bad_input::unchanged;
use super::corrupt::{delete, is_corrupt, keys_of, read_fresh};
use super::stored_log::{
    ChunkRef, Head, LARGE, SEALED, SMALL, TAIL_MAX_ITEMS, check_stored, head_of,
};
use super::{contents, msg, padded, session_error, traced};
use crate::harness::{CaseResult, Ctx};

/// A session written with chunks of every tier: one batch of 250 items of 5 KiB (cut into a
/// sealed chunk and a large one), then 60 turns of 2 items of 300 bytes (flushed into a small
/// chunk of about 35 KB, small enough to plant below daprd's API; the newest in the tail).
/// Returns every item, oldest first, and the head.
async fn build(
    ctx: &Ctx,
    inst: &mut Instance,
    s: SessionHandle,
    id: &str,
) -> anyhow::Result<(Vec<String>, Head)> {
    let mut all: Vec<String> = (0..250)
        .map(|i| padded(&format!("big {i}"), 5120))
        .collect();
    inst.add_items(s, &all).await?;
    all.extend(super::fill(inst, s, "t", 60, 2, 300).await?);
    let head = check_stored(ctx, id, &all, true).await?;
    ensure!(
        head.tiers() == [SEALED, LARGE, SMALL],
        "tiers {:?}",
        head.tiers()
    );
    Ok((all, head))
}

/// The items of `all` (laid out as `head` says) without those of chunk `i`.
fn without_chunk(all: &[String], head: &Head, i: usize) -> Vec<String> {
    let start: u64 = head.chunks[..i].iter().map(|c| c.live).sum();
    let end = start + head.chunks[i].live;
    all.iter()
        .enumerate()
        .filter(|(n, _)| (*n as u64) < start || (*n as u64) >= end)
        .map(|(_, item)| item.clone())
        .collect()
}

/// A batch that takes the tail past its bound: the add must flush, merging the small chunk.
fn flushing_batch(head: &Head, tag: &str) -> Vec<String> {
    (0..TAIL_MAX_ITEMS + 1 - head.tail.len())
        .map(|i| msg("user", &format!("{tag} {i}")))
        .collect()
}

/// Reads of session `id` by fresh instances, which must not write: the whole session is
/// `want`, and limits ending in the tail, one past it, and past the skipped items return
/// the newest valid items (a positive limit counts valid items).
async fn reads_skip(ctx: &Ctx, id: &str, want: &[String], tail: usize) -> CaseResult {
    let got = read_fresh(ctx, id, None).await?;
    ensure!(
        got == want,
        "whole read: {} items, {} expected; first difference at {:?}",
        got.len(),
        want.len(),
        got.iter().zip(want).position(|(a, b)| a != b)
    );
    for limit in [1, tail, tail + 1, tail + 40, want.len() - 1, want.len() + 7] {
        let got = read_fresh(ctx, id, Some(limit as u32)).await?;
        ensure!(
            got[..] == want[want.len().saturating_sub(limit)..],
            "get({limit}) returned {} items",
            got.len()
        );
    }
    Ok(())
}

/// A write that must rewrite chunk `c` (a flush merging the small chunk) fails `corrupt`
/// naming it, and nothing stored changes.
async fn flush_refused(
    ctx: &Ctx,
    inst: &mut Instance,
    s: SessionHandle,
    id: &str,
    c: &ChunkRef,
    what: &str,
) -> CaseResult {
    let head = head_of(ctx, id).await?;
    let before = keys_of(ctx, id).await?;
    let err = is_corrupt(inst.add_items(s, &flushing_batch(&head, what)).await)
        .with_context(|| format!("{what}: a flush merging {}", c.key(id)))?;
    ensure!(err.contains(&c.id), "{what}: {err}");
    let after = keys_of(ctx, id).await?;
    unchanged(&before, &after, what)?;
    ensure!(after.len() == before.len(), "{what}: keys appeared");
    Ok(())
}

/// Pops of `inst`: the `n` newest items of `all` in turn.
async fn pops(
    inst: &mut Instance,
    s: SessionHandle,
    all: &[String],
    n: usize,
    what: &str,
) -> CaseResult {
    for k in 0..n {
        let got = inst.pop_item(s).await?;
        ensure!(
            got.as_deref() == Some(all[all.len() - 1 - k].as_str()),
            "{what}: pop {k} returned {:?}",
            got.map(|g| contents(&[g]))
        );
    }
    Ok(())
}

/// The head points at chunks that are gone. The small one: reads skip its items (limits
/// count valid items, looking further back), appends within the tail work, the append that
/// must merge it fails `corrupt` and writes nothing, and pops take the tail, then drop the
/// reference and return the large chunk's newest item. The large one: reads skip only its
/// items, and appends that flush into the small chunk work. All of them: only the tail is
/// read, pops drop the references and report the session empty, and it works afterwards.
/// Nothing else stored changes.
pub async fn log_head_points_at_missing_chunks(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;

    // The small chunk.
    let id = ctx.id("no-small");
    let s = ctx.open(&mut inst, &id).await?;
    let (mut all, head) = build(&ctx, &mut inst, s, &id).await?;
    let small = head.chunks[2].clone();
    delete(&ctx, &small.key(&id)).await?;
    let mut want = without_chunk(&all, &head, 2);
    reads_skip(&ctx, &id, &want, head.tail.len()).await?;
    let turn = vec![msg("user", "within the tail")];
    let before = keys_of(&ctx, &id).await?;
    inst.add_items(s, &turn).await?;
    let kept: BTreeMap<String, Vec<u8>> = before
        .into_iter()
        .filter(|(k, _)| *k != format!("{id}:head"))
        .collect();
    unchanged(&kept, &keys_of(&ctx, &id).await?, "add within the tail")?;
    all.extend(turn.clone());
    want.extend(turn);
    flush_refused(&ctx, &mut inst, s, &id, &small, "missing small chunk").await?;
    let tail = head_of(&ctx, &id).await?.tail.len();
    pops(&mut inst, s, &want, tail + 1, "missing small chunk").await?;
    let head = head_of(&ctx, &id).await?;
    ensure!(
        head.tiers() == [SEALED, LARGE] && head.len() == (want.len() - tail - 1) as u64,
        "after the pops: {}",
        head.raw
    );
    // The other chunks' values never changed (a pop shrinks a reference, not a chunk).
    unchanged(&kept, &keys_of(&ctx, &id).await?, "pops")?;

    // The large chunk.
    let id = ctx.id("no-large");
    let s = ctx.open(&mut inst, &id).await?;
    let (mut all, head) = build(&ctx, &mut inst, s, &id).await?;
    delete(&ctx, &head.chunks[1].key(&id)).await?;
    let want = without_chunk(&all, &head, 1);
    reads_skip(&ctx, &id, &want, head.tail.len()).await?;
    let batch = flushing_batch(&head, "flushed");
    inst.add_items(s, &batch).await?;
    all.extend(batch);
    let want: Vec<String> = want
        .into_iter()
        .chain(
            all[all.len() - (TAIL_MAX_ITEMS + 1 - head.tail.len())..]
                .iter()
                .cloned(),
        )
        .collect();
    ensure!(read_fresh(&ctx, &id, None).await? == want, "after a flush");
    let after = head_of(&ctx, &id).await?;
    ensure!(
        after.chunks[1] == head.chunks[1] && after.chunks[0] == head.chunks[0],
        "the missing chunk's reference changed: {}",
        after.raw
    );

    // Everything but the head.
    let id = ctx.id("head-only");
    let s = ctx.open(&mut inst, &id).await?;
    let (all, head) = build(&ctx, &mut inst, s, &id).await?;
    for c in &head.chunks {
        delete(&ctx, &c.key(&id)).await?;
    }
    let tail = &all[all.len() - head.tail.len()..];
    ensure!(read_fresh(&ctx, &id, None).await? == tail);
    ensure!(read_fresh(&ctx, &id, Some(500)).await? == tail);
    pops(&mut inst, s, tail, tail.len(), "head only").await?;
    ensure!(inst.pop_item(s).await?.is_none(), "a pop past every chunk");
    let head = head_of(&ctx, &id).await?;
    ensure!(
        head.chunks.is_empty() && head.tail.is_empty(),
        "{}",
        head.raw
    );
    inst.add_items(s, &[msg("user", "new")]).await?;
    ensure!(contents(&read_fresh(&ctx, &id, None).await?) == ["new"]);
    Ok(())
}

/// Chunks that are not what the head says: not JSON, not an array, an array of other
/// things, truncated, fewer or more items than the head counts, empty. Each in turn in place
/// of the small chunk: reads skip exactly its items (limits count valid items), the append
/// that must merge it fails `corrupt` and leaves it and everything else byte for byte. The
/// same in place of the sealed chunk: appends that flush still work (a sealed chunk is never
/// rewritten). Then pops take the tail, drop the unreadable small chunk and go on.
pub async fn log_chunk_corrupt(ctx: Ctx) -> CaseResult {
    let id = ctx.id("chunk");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let (all, head) = build(&ctx, &mut inst, s, &id).await?;
    let small = head.chunks[2].clone();
    let key = small.key(&id);
    let original = ctx
        .backend
        .get_bytes(&key)
        .await?
        .context("no small chunk")?;
    let items: Vec<String> = serde_json::from_slice(&original)?;
    let fewer = serde_json::to_vec(&items[1..])?;
    let mut more_items = items.clone();
    more_items.push(msg("user", "extra"));
    let more = serde_json::to_vec(&more_items)?;
    let want = without_chunk(&all, &head, 2);
    let planted: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"not json".to_vec()),
        ("not utf-8", vec![b'[', b'"', 0xff, b'"', b']']),
        ("an object", b"{\"items\":[]}".to_vec()),
        ("a string", b"\"[]\"".to_vec()),
        ("null", b"null".to_vec()),
        ("numbers", b"[1,2,3]".to_vec()),
        ("objects", b"[{},{}]".to_vec()),
        ("truncated", original[..original.len() / 2].to_vec()),
        ("one item fewer", fewer),
        ("one item more", more),
        ("empty", b"[]".to_vec()),
    ];
    for (what, bytes) in &planted {
        ctx.backend.put_bytes(&key, bytes).await?;
        reads_skip(&ctx, &id, &want, head.tail.len())
            .await
            .with_context(|| format!("small chunk {what}"))?;
        flush_refused(&ctx, &mut inst, s, &id, &small, what).await?;
        ensure!(
            ctx.backend.get_bytes(&key).await?.as_ref() == Some(bytes),
            "{what}: the chunk changed"
        );
    }
    // The sealed chunk: never rewritten, so appends that flush go on.
    ctx.backend.put_bytes(&key, &original).await?;
    let sealed = head.chunks[0].key(&id);
    let sealed_bytes = ctx.backend.get_bytes(&sealed).await?.context("no sealed")?;
    ctx.backend.put_bytes(&sealed, b"not json").await?;
    let mut want = without_chunk(&all, &head, 0);
    let mut all = all;
    reads_skip(&ctx, &id, &want, head.tail.len()).await?;
    let batch = flushing_batch(&head, "flushed");
    inst.add_items(s, &batch).await?;
    all.extend(batch.clone());
    want.extend(batch);
    ensure!(read_fresh(&ctx, &id, None).await? == want, "after a flush");
    ensure!(ctx.backend.get_bytes(&sealed).await?.as_deref() == Some(&b"not json"[..]));
    // Pops move past an unreadable small chunk.
    // Through Dapr's API: a megabyte is too long for the SQLite planting helper.
    ctx.backend
        .put_json(&sealed, &serde_json::from_slice(&sealed_bytes)?)
        .await?;
    let head = head_of(&ctx, &id).await?;
    let small = head.chunks.last().context("no chunk")?.clone();
    ensure!(small.tier == SMALL, "{}", head.raw);
    ctx.backend.put_bytes(&small.key(&id), b"[1,2]").await?;
    let want = without_chunk(&all, &head, head.chunks.len() - 1);
    pops(
        &mut inst,
        s,
        &want,
        head.tail.len() + 3,
        "past a corrupt chunk",
    )
    .await?;
    ensure!(
        ctx.backend.get_bytes(&small.key(&id)).await?.is_none(),
        "the dropped chunk was not deleted"
    );
    Ok(())
}

/// The small chunk of session `id` as stored, with the entries at `at` replaced by the raw
/// JSON texts `bad` (the count unchanged).
async fn plant_entries(
    ctx: &Ctx,
    id: &str,
    c: &ChunkRef,
    at: &[usize],
    bad: &[&str],
) -> CaseResult {
    let key = c.key(id);
    let items: Vec<String> =
        serde_json::from_slice(&ctx.backend.get_bytes(&key).await?.context("no chunk")?)?;
    let mut text = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        match at.iter().position(|&a| a == i) {
            Some(k) => text.push_str(bad[k]),
            None => text.push_str(&serde_json::to_string(item)?),
        }
    }
    text.push(']');
    ctx.backend.put_bytes(&key, text.as_bytes()).await
}

/// Entries of a chunk that are JSON strings but not items (not JSON, an array, a string, a
/// number, empty): reads skip them one by one (limits count valid items; `get-snapshot`
/// stops after the newest of them), the append that must merge the chunk fails `corrupt`
/// and changes nothing (a write never carries on, nor drops, what it cannot read), and pops
/// skip them. An entry that is not even a valid JSON string (a lone surrogate escape) is
/// skipped by reads too and refused by merges the same way; `replace` is the way out.
pub async fn log_chunk_entries_corrupt(ctx: Ctx) -> CaseResult {
    let id = ctx.id("entries");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let (all, head) = build(&ctx, &mut inst, s, &id).await?;
    let small = head.chunks[2].clone();
    let bad = [
        r#""not json""#,
        r#""[1]""#,
        r#""\"s\"""#,
        r#""42""#,
        r#""""#,
    ];
    let n = small.total as usize;
    let at: Vec<usize> = (0..bad.len())
        .map(|k| 1 + k * (n - 2) / bad.len())
        .collect();
    plant_entries(&ctx, &id, &small, &at, &bad).await?;
    let first: u64 = head.chunks[..2].iter().map(|c| c.live).sum();
    let skipped: Vec<u64> = at.iter().map(|&a| first + a as u64).collect();
    let want: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(n, _)| !skipped.contains(&(*n as u64)))
        .map(|(_, item)| item.clone())
        .collect();
    reads_skip(&ctx, &id, &want, head.tail.len()).await?;
    // get-snapshot returns consecutive items: those after the newest bad entry.
    let newest_bad = *skipped.last().context("no bad entry")?;
    let (mut reader, _) = traced(&ctx).await?;
    let r = ctx.open(&mut reader, &id).await?;
    let snap = reader.get_snapshot(r, Some(10_000)).await?;
    ensure!(
        snap.first == newest_bad + 1 && snap.items[..] == all[newest_bad as usize + 1..],
        "get-snapshot: first {} of {}",
        snap.first,
        all.len()
    );
    // A merge never carries on (nor drops) what it cannot read: the append that must merge
    // the chunk fails `corrupt`, and nothing stored changes.
    let before = keys_of(&ctx, &id).await?;
    let batch = flushing_batch(&head, "flushed");
    let err = session_error(inst.add_items(s, &batch).await)?;
    ensure!(matches!(err, SessionError::Corrupt(_)), "merge: {err:?}");
    unchanged(&before, &keys_of(&ctx, &id).await?, "refused merge")?;
    // Pops skip the bad entries and return every valid item, newest first.
    let n = want.len() - 251;
    pops(&mut inst, s, &want, n, "across bad entries").await?;
    ensure!(read_fresh(&ctx, &id, None).await? == want[..want.len() - n]);

    // A lone surrogate escape: not a JSON string the component decodes.
    let id = ctx.id("surrogate-entry");
    let s = ctx.open(&mut inst, &id).await?;
    let (all, head) = build(&ctx, &mut inst, s, &id).await?;
    let small = head.chunks[2].clone();
    plant_entries(&ctx, &id, &small, &[3], &[r#""\ud800""#]).await?;
    let at = (head.chunks[0].live + head.chunks[1].live) as usize + 3;
    let mut want: Vec<String> = [&all[..at], &all[at + 1..]].concat();
    reads_skip(&ctx, &id, &want, head.tail.len()).await?;
    let before = keys_of(&ctx, &id).await?;
    let batch = flushing_batch(&head, "flushed");
    let err = session_error(inst.add_items(s, &batch).await)?;
    ensure!(
        matches!(err, SessionError::Corrupt(_)),
        "a merge of a chunk holding a lone surrogate escape: {err:?}"
    );
    unchanged(&before, &keys_of(&ctx, &id).await?, "refused merge")?;
    // Replacing the history is the way out: the session takes appends again.
    let fresh = want.split_off(want.len() - 10);
    inst.replace(s, &fresh, None).await?;
    inst.add_items(s, &batch).await?;
    let mut after = fresh;
    after.extend(batch);
    ensure!(read_fresh(&ctx, &id, None).await? == after, "after replace");
    Ok(())
}
