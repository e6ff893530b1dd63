//! Corrupt data in a log-layout session (format 2). A head that does not parse, or that no
//! writer makes, is refused everywhere: reads return nothing, writes fail `corrupt`, nothing
//! is written. A chunk that is missing, is not a JSON array of strings, or whose count
//! disagrees with the head is skipped by reads (a positive limit counts valid items), fails
//! the writes that must rewrite it (and is left byte for byte), and is dropped by pops, which
//! go on to older items. Entries of a chunk that are not items are skipped one by one.

use std::collections::BTreeMap;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::{Instance, SessionError, SessionHandle};
use serde_json::{Value, json};

use super::bad_input::{only_own_keys, unchanged};
use super::corrupt::{delete, is_corrupt, keys_of, no_writes, read_fresh, refused_everywhere};
use super::stored_log::{
    ChunkRef, Head, LARGE, SEALED, SMALL, TAIL_MAX_ITEMS, check_stored, head_of,
};
use super::{contents, msg, padded, session_error, traced};
use crate::harness::{CaseResult, Ctx};

/// A valid, empty format-2 head with `fields` added (or replaced).
fn head_with(fields: Value) -> String {
    let mut head = json!({"v": 2, "g": "aaaaaaaaaaaa", "s": 1, "c": 1, "u": 1, "o": []});
    if let (Some(h), Some(f)) = (head.as_object_mut(), fields.as_object()) {
        for (k, v) in f {
            h.insert(k.clone(), v.clone());
        }
    }
    head.to_string()
}

/// A chunk reference as a head stores it, of a chunk named `id` that holds `total` items.
fn chunk_ref(id: &str, total: u64) -> Value {
    json!([id, total, 0, total, 100, 0, null])
}

/// Format-2 heads of the wrong shape: fields missing, mistyped, negative, fractional or out
/// of range, a newer format (`"v":3`), and heads that parse but no writer makes: chunk
/// references that are not a nonce with live items inside the chunk, counts that overflow,
/// tiers that do not exist, tail entries that are not strings holding JSON objects. Each is
/// refused everywhere, left as it was; none hangs or traps.
pub async fn log_head_wrong_shapes(ctx: Ctx) -> CaseResult {
    let n = "aaaaaaaaaaaa";
    let c = |r: Value| head_with(json!({ "k": [r] }));
    let heads: Vec<(&str, String)> = vec![
        ("empty object", "{}".into()),
        ("version missing", r#"{"g":"aaaaaaaaaaaa","s":1}"#.into()),
        ("version string", head_with(json!({"v": "2"}))),
        ("version negative", head_with(json!({"v": -1}))),
        ("version fraction", head_with(json!({"v": 2.5}))),
        ("version null", head_with(json!({"v": null}))),
        (
            "version over u32",
            head_with(json!({"v": 4_294_967_298u64})),
        ),
        ("newer format", head_with(json!({"v": 3}))),
        ("format 0", head_with(json!({"v": 0}))),
        (
            "duplicate field",
            r#"{"v":2,"v":2,"g":"aaaaaaaaaaaa","s":1}"#.into(),
        ),
        ("generation missing", r#"{"v":2,"s":1}"#.into()),
        ("generation not a nonce", head_with(json!({"g": "x"}))),
        ("generation a number", head_with(json!({"g": 7}))),
        (
            "generation with a colon",
            head_with(json!({"g": "aaaaa:aaaaaa"})),
        ),
        ("sequence negative", head_with(json!({"s": -1}))),
        ("sequence a string", head_with(json!({"s": "1"}))),
        ("sequence fraction", head_with(json!({"s": 1.5}))),
        ("created negative", head_with(json!({"c": -5}))),
        ("updated a string", head_with(json!({"u": "now"}))),
        ("chunks a string", head_with(json!({"k": "x"}))),
        ("chunks an object", head_with(json!({"k": {}}))),
        ("chunk reference a string", c(json!(n))),
        ("chunk reference too short", c(json!([n, 1, 0, 1, 100, 0]))),
        (
            "chunk reference too long",
            c(json!([n, 1, 0, 1, 100, 0, null, 1])),
        ),
        ("chunk id a number", c(json!([7, 1, 0, 1, 100, 0, null]))),
        ("chunk id a path", c(chunk_ref("../../x", 1))),
        ("chunk id empty", c(chunk_ref("", 1))),
        ("chunk id upper case", c(chunk_ref("AAAAAAAAAAAA", 1))),
        ("chunk id naming the head", c(chunk_ref("head", 1))),
        ("count negative", c(json!([n, -1, 0, 1, 100, 0, null]))),
        ("count fraction", c(json!([n, 1.5, 0, 1, 100, 0, null]))),
        ("count 1e30", c(json!([n, 1e30, 0, 1, 100, 0, null]))),
        (
            "count over u64",
            format!(
                r#"{{"v":2,"g":"{n}","s":1,"k":[["{n}",18446744073709551616,0,1,100,0,null]]}}"#
            ),
        ),
        ("count a string", c(json!([n, "1", 0, 1, 100, 0, null]))),
        ("tier 3", c(json!([n, 1, 0, 1, 100, 3, null]))),
        ("tier negative", c(json!([n, 1, 0, 1, 100, -1, null]))),
        ("tier a string", c(json!([n, 1, 0, 1, 100, "small", null]))),
        ("expiry a string", c(json!([n, 1, 0, 1, 100, 0, "soon"]))),
        ("expiry negative", c(json!([n, 1, 0, 1, 100, 0, -1]))),
        ("ops a string", head_with(json!({"o": "x"}))),
        ("ops numbers", head_with(json!({"o": [1]}))),
        ("trash numbers", head_with(json!({"t": [1]}))),
        ("trash a string", head_with(json!({"t": "x"}))),
        ("tail a string", head_with(json!({"n": "x"}))),
        ("tail objects", head_with(json!({"n": [{}]}))),
        ("tail numbers", head_with(json!({"n": [1]}))),
        ("tail entry an array", head_with(json!({"n": ["[1]"]}))),
        ("tail entry not json", head_with(json!({"n": ["not json"]}))),
        (
            "tail entry a JSON string",
            head_with(json!({"n": ["\"{}\""]})),
        ),
        ("tail entry empty", head_with(json!({"n": [""]}))),
        ("migrated-from a number", head_with(json!({"m": 5}))),
        // Parse, but no writer makes them.
        (
            "chunk of no live items",
            c(json!([n, 3, 0, 0, 100, 0, null])),
        ),
        ("live past the end", c(json!([n, 3, 2, 2, 100, 0, null]))),
        ("skip past the end", c(json!([n, 3, 4, 1, 100, 0, null]))),
        (
            "skip and live overflowing",
            c(json!([n, u64::MAX, u64::MAX, 1, 100, 0, null])),
        ),
        (
            "counts overflowing",
            head_with(json!({"k": [
                [n, u64::MAX, 0, u64::MAX, 100, 2, null],
                ["bbbbbbbbbbbb", 2, 0, 2, 100, 0, null]
            ]})),
        ),
    ];
    refused_heads(&ctx, heads).await
}

/// Plants each head in a session of its own and checks it is refused everywhere.
async fn refused_heads(ctx: &Ctx, heads: Vec<(&str, String)>) -> CaseResult {
    for (what, head) in heads {
        let id = ctx.id("shape");
        ctx.backend
            .put_bytes(&format!("{id}:head"), head.as_bytes())
            .await?;
        refused_everywhere(ctx, &id, what).await?;
    }
    Ok(())
}

/// 0.1.0 heads (format 1, read and migrated) whose entries are of the wrong shape, or of
/// zero items, or whose fields are mistyped: refused everywhere, left as they were. The
/// fields of format 1 that were caches (`n`, `k`, `r`) no longer make a head corrupt: the
/// format-2 reader takes items from item keys only (`legacy::copies_disagreeing_with_the_
/// head_are_ignored`).
pub async fn log_v1_head_wrong_shapes(ctx: Ctx) -> CaseResult {
    let n = "aaaaaaaaaaaa";
    let heads: Vec<(&str, String)> = vec![
        ("v1 levels a string", r#"{"v":1,"l":"x"}"#.into()),
        ("v1 levels an object", r#"{"v":1,"l":{}}"#.into()),
        ("v1 level of strings", r#"{"v":1,"l":[["a"]]}"#.into()),
        (
            "v1 entry too short",
            format!(r#"{{"v":1,"l":[[["{n}"]]]}}"#),
        ),
        (
            "v1 entry too long",
            format!(r#"{{"v":1,"l":[[["{n}",1,2]]]}}"#),
        ),
        ("v1 entry id a number", r#"{"v":1,"l":[[[7,1]]]}"#.into()),
        (
            "v1 entry id not a nonce",
            r#"{"v":1,"l":[[["x:i:aaaaaaaaaaaa",1]]]}"#.into(),
        ),
        (
            "v1 count negative",
            format!(r#"{{"v":1,"l":[[["{n}",-1]]]}}"#),
        ),
        (
            "v1 count fraction",
            format!(r#"{{"v":1,"l":[[["{n}",1.5]]]}}"#),
        ),
        (
            "v1 count over u64",
            format!(r#"{{"v":1,"l":[[["{n}",18446744073709551616]]]}}"#),
        ),
        (
            "v1 count a string",
            format!(r#"{{"v":1,"l":[[["{n}","1"]]]}}"#),
        ),
        ("v1 created negative", r#"{"v":1,"c":-5}"#.into()),
        ("v1 updated a string", r#"{"v":1,"u":"now"}"#.into()),
        ("v1 ops a string", r#"{"v":1,"o":"x"}"#.into()),
        ("v1 ops numbers", r#"{"v":1,"o":[1]}"#.into()),
        ("v1 trash numbers", r#"{"v":1,"t":[1]}"#.into()),
        (
            "v1 entry of zero items",
            format!(r#"{{"v":1,"l":[[["{n}",0]]]}}"#),
        ),
        (
            "v1 page entry of zero items",
            format!(r#"{{"v":1,"l":[[["{n}",1]],[["bbbbbbbbbbbb",0]]]}}"#),
        ),
    ];
    refused_heads(&ctx, heads).await
}

/// A head claiming more items than one read returns (here `u32::MAX` in a chunk that is not
/// stored): a whole `get-items` or `get-snapshot` fails typed (`too-many-items` with the
/// count) instead of exhausting memory, sending no write; appends and reads within the tail
/// still work and keep the reference; a limited read past the tail skips the missing
/// chunk's items (the tail, not a trap). A 0.1.0 head claiming as many fails whole reads and every
/// write with `too-many-items` (its items must all be read to migrate it), writing nothing.
pub async fn log_head_claiming_too_many_items(ctx: Ctx) -> CaseResult {
    let id = ctx.id("huge-claim");
    let claim = json!(["aaaaaaaaaaaa", u32::MAX, 0, u32::MAX, 1000, SEALED, null]);
    ctx.backend
        .put_bytes(
            &format!("{id}:head"),
            head_with(json!({ "k": [claim] })).as_bytes(),
        )
        .await?;
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &id).await?;
    let too_many = |e: SessionError| match e {
        SessionError::TooManyItems(n) if n == u64::from(u32::MAX) => Ok(()),
        other => Err(anyhow::anyhow!("expected too-many-items, got {other:?}")),
    };
    too_many(session_error(inst.get_items(s, None).await)?).context("get-items()")?;
    too_many(session_error(inst.get_snapshot(s, None).await)?).context("get-snapshot()")?;
    no_writes(&traffic, "whole reads")?;
    inst.add_items(s, &[msg("user", "new")]).await?;
    ensure!(contents(&inst.get_items(s, Some(1)).await?) == ["new"]);
    let snap = inst.get_snapshot(s, Some(1)).await?;
    ensure!(snap.first == u64::from(u32::MAX), "{snap:?}");
    let head = head_of(&ctx, &id).await?;
    ensure!(
        head.raw["k"] == json!([claim]) && head.tail == [msg("user", "new")],
        "{}",
        head.raw
    );
    only_own_keys(&ctx, &traffic, &id)?;

    // 0.1.0: counts of u32::MAX, u64::MAX, and two that add up past u64.
    for v1 in [
        json!({"v": 1, "c": 1, "u": 1, "l": [[["aaaaaaaaaaaa", u32::MAX]]]}),
        json!({"v": 1, "l": [[["aaaaaaaaaaaa", u64::MAX]]]}),
        json!({"v": 1, "l": [[["aaaaaaaaaaaa", 1u64 << 63], ["bbbbbbbbbbbb", 1u64 << 63]]]}),
    ] {
        let id = ctx.id("huge-claim-v1");
        ctx.backend
            .put_bytes(&format!("{id}:head"), v1.to_string().as_bytes())
            .await?;
        let before = keys_of(&ctx, &id).await?;
        let (mut inst, traffic) = traced(&ctx).await?;
        let s = ctx.open(&mut inst, &id).await?;
        let too_many = |what: &str, err: SessionError| {
            ensure!(
                matches!(err, SessionError::TooManyItems(n) if n >= u64::from(u32::MAX)),
                "{v1}: {what}: {err:?}"
            );
            Ok(())
        };
        too_many("get-items()", session_error(inst.get_items(s, None).await)?)?;
        too_many(
            "add",
            session_error(inst.add_items(s, &[msg("user", "x")]).await)?,
        )?;
        too_many("pop", session_error(inst.pop_item(s).await)?)?;
        // A limited read finds none of the claimed item keys, or refuses the claim.
        match inst.get_items(s, Some(5)).await {
            Ok(items) => ensure!(items.is_empty(), "{v1}: get-items(5) read {items:?}"),
            Err(e) => too_many("get-items(5)", e.session().cloned().context("trapped")?)?,
        }
        no_writes(&traffic, "a 0.1.0 head claiming too many items")?;
        unchanged(&before, &keys_of(&ctx, &id).await?, "v1 claim")?;
    }

    // Last, a limited read past the tail: the claimed chunk is not stored, so only the tail
    // is read.
    let (mut reader, traffic) = traced(&ctx).await?;
    let r = ctx.open(&mut reader, &id).await?;
    ensure!(
        contents(&reader.get_items(r, Some(5)).await?) == ["new"],
        "get-items(5)"
    );
    no_writes(&traffic, "a limited read")?;
    Ok(())
}

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
    ensure!(read_fresh(ctx, id, None).await? == want, "whole read");
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

/// Heads listing chunks that were never written (format 2) or batches that were never
/// written (0.1.0): reads return nothing, a pop drops them (the upstream rule for corrupt
/// entries at the end) and reports the session empty, the session works afterwards, and
/// `created-at` is kept.
pub async fn log_head_lists_chunks_never_written(ctx: Ctx) -> CaseResult {
    for head in [
        head_with(json!({"k": [chunk_ref("ghostghost01", 3), chunk_ref("ghostghost02", 2)]})),
        json!({"v": 1, "c": 1, "u": 1, "l": [[["ghostghost01", 3], ["ghostghost02", 2]]]})
            .to_string(),
    ] {
        let id = ctx.id("ghost");
        ctx.backend
            .put_bytes(&format!("{id}:head"), head.as_bytes())
            .await?;
        ensure!(read_fresh(&ctx, &id, None).await?.is_empty());
        ensure!(read_fresh(&ctx, &id, Some(2)).await?.is_empty());
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        ensure!(inst.pop_item(s).await?.is_none(), "{head}: pop");
        let stored = head_of(&ctx, &id).await?;
        ensure!(stored.chunks.is_empty(), "{}", stored.raw);
        inst.add_items(s, &[msg("user", "alive")]).await?;
        ensure!(contents(&read_fresh(&ctx, &id, None).await?) == ["alive"]);
        let meta = inst.metadata(s).await?;
        ensure!(
            meta.created_at == Some(1),
            "created-at was not kept: {meta:?}"
        );
        check_stored(&ctx, &id, &[msg("user", "alive")], true).await?;
    }
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
/// stops after the newest of them), an append that merges the chunk keeps them as they are,
/// and pops skip them. An entry that is not even a valid JSON string (a lone surrogate
/// escape) is skipped by reads too, and the append that must merge its chunk either keeps
/// every item or fails `corrupt` leaving the chunk as it was: it never sends the sidecar a
/// request it cannot parse.
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
    // A merge keeps the bad entries (never rewritten away); reads still skip them.
    let batch = flushing_batch(&head, "flushed");
    inst.add_items(s, &batch).await?;
    let mut want = want;
    want.extend(batch);
    ensure!(read_fresh(&ctx, &id, None).await? == want, "after a merge");
    let merged = head_of(&ctx, &id).await?;
    let stored = ctx
        .backend
        .get_bytes(&merged.chunks.last().context("no chunk")?.key(&id))
        .await?
        .context("merged chunk missing")?;
    let stored = String::from_utf8_lossy(&stored);
    for b in bad {
        ensure!(stored.contains(b), "the merge dropped {b}");
    }
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
    match inst.add_items(s, &batch).await {
        Ok(()) => {
            want.extend(batch);
            ensure!(read_fresh(&ctx, &id, None).await? == want, "after a merge");
        }
        Err(e) => match e.session() {
            Some(SessionError::Corrupt(_)) => {
                unchanged(&before, &keys_of(&ctx, &id).await?, "refused merge")?
            }
            _ => anyhow::bail!("a merge of a chunk holding a lone surrogate escape: {e}"),
        },
    }
    Ok(())
}

/// A head whose trash names keys that are not this session's chunks (another session's head
/// or chunk, its base key, a key named `head`, this session's own head): no writer may
/// delete them. Format 2 and 0.1.0 heads alike are refused everywhere, and the other
/// session is still there, byte for byte.
pub async fn log_trash_outside_the_session_is_refused(ctx: Ctx) -> CaseResult {
    let victim = ctx.id("victim");
    let mut inst = ctx.instance().await?;
    let v = ctx.open(&mut inst, &victim).await?;
    let items = super::fill(&mut inst, v, "victim", 40, 2, 0).await?;
    let vhead = check_stored(&ctx, &victim, &items, true).await?;
    let vchunk = vhead
        .chunks
        .first()
        .context("victim has no chunk")?
        .key(&victim);
    let victim_keys = keys_of(&ctx, &victim).await?;
    for target in [
        format!("{victim}:head"),
        vchunk.clone(),
        victim.clone(),
        "head".to_string(),
    ] {
        let id = ctx.id("thief");
        for head in [
            head_with(json!({ "t": [target] })),
            json!({"v": 1, "t": [target]}).to_string(),
        ] {
            ctx.backend
                .put_bytes(&format!("{id}:head"), head.as_bytes())
                .await?;
            refused_everywhere(&ctx, &id, &format!("trash {head}")).await?;
            unchanged(&victim_keys, &keys_of(&ctx, &victim).await?, "victim")?;
        }
    }
    // Keys of the session itself that are not chunks.
    let id = ctx.id("self");
    for target in [
        format!("{id}:head"),
        format!("{id}:c:short"),
        format!("{id}:c:aaaaaaaaaaaa:x"),
        format!("{id}:i:aaaaaaaaaaaa:0"),
    ] {
        ctx.backend
            .put_bytes(
                &format!("{id}:head"),
                head_with(json!({ "t": [target] })).as_bytes(),
            )
            .await?;
        refused_everywhere(&ctx, &id, &format!("trash {target}")).await?;
    }
    ensure!(inst.get_items(v, None).await? == items);
    Ok(())
}

/// Chunk references name keys (`{id}:c:{nonce}`), so one whose id is not a nonce could name
/// another session's keys: chunk `x:c:{nonce}` of session `t` is key `t:c:x:c:{nonce}`, a
/// chunk of session `t:c:x`, and chunk `x:head` its head. A head listing such a reference is
/// refused everywhere; the other session's items are never returned as this session's, and
/// nothing of it is read or deleted.
pub async fn log_chunk_refs_naming_other_sessions_keys_are_refused(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let t = ctx.id("namer");
    let victim = format!("{t}:c:x");
    let v = ctx.open(&mut inst, &victim).await?;
    let items = super::fill(&mut inst, v, "victim's", 40, 2, 0).await?;
    let vhead = check_stored(&ctx, &victim, &items, true).await?;
    let vc = vhead.chunks.first().context("victim has no chunk")?.clone();
    let victim_keys = keys_of(&ctx, &victim).await?;
    let forged = |name: String| json!([name, vc.total, 0, vc.live, vc.bytes, 0, null]);
    for refs in [
        json!([forged(format!("x:c:{}", vc.id))]),
        json!([forged("x:head".to_string())]),
        json!([
            chunk_ref("aaaaaaaaaaaa", 1),
            forged(format!("x:c:{}", vc.id))
        ]),
    ] {
        ctx.backend
            .put_bytes(
                &format!("{t}:head"),
                head_with(json!({ "k": refs })).as_bytes(),
            )
            .await?;
        refused_everywhere(&ctx, &t, &refs.to_string()).await?;
        unchanged(&victim_keys, &keys_of(&ctx, &victim).await?, "victim")?;
    }
    ensure!(inst.get_items(v, None).await? == items);
    Ok(())
}
