//! Corrupt heads of a log-layout session. A head that does not parse, or that no writer
//! makes (format 2, or 0.1.0's format 1), is refused everywhere: reads return nothing,
//! writes fail `corrupt`, nothing is written. One that claims more items than a read returns
//! fails whole reads typed; one that lists chunks never written reads as empty.

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::SessionError;
use serde_json::{Value, json};

use super::bad_input::{only_own_keys, unchanged};
use super::corrupt::{keys_of, no_writes, read_fresh, refused_everywhere};
use super::stored_log::{SEALED, check_stored, head_of};
use super::{contents, msg, session_error, traced};
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
