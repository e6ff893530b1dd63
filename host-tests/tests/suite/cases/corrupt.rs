//! Corrupt stored data, for both layouts: values that are not JSON, JSON of the wrong shape,
//! numbers out of range, a head pointing at keys that are gone, copies that disagree with
//! the head. Reads skip what they cannot decode; writes fail with `corrupt` and leave the
//! stored bytes as they were (compared raw, before and after); nothing ever traps.
//!
//! `stored.rs` has the upstream cases for the compat layout's messages array and
//! `scale::corrupt_head_is_never_overwritten` one wrong-shaped head; these go further.

use std::collections::BTreeMap;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::{
    BeforeSend, Exchange, Hooks, Instance, InstanceOptions, Layout, SessionError, SessionHandle,
    Synthetic, Traffic,
};
use serde_json::{Value, json};

use super::bad_input::{only_own_keys, snapshot, unchanged};
use super::traced;
use super::{contents, msg, session_error};
use crate::harness::{CaseResult, Ctx};

fn is_corrupt<T: std::fmt::Debug>(
    r: dapr_session_host_tests::host::CallResult<T>,
) -> anyhow::Result<String> {
    match session_error(r)? {
        SessionError::Corrupt(m) if !m.is_empty() => Ok(m),
        other => anyhow::bail!("expected corrupt, got {other:?}"),
    }
}

/// Fails if `traffic` holds a request that writes or deletes.
fn no_writes(traffic: &Traffic, what: &str) -> CaseResult {
    for e in traffic.exchanges() {
        let path = e.path_and_query();
        let read = e.method == "GET" || (e.method == "POST" && path.contains("/bulk"));
        ensure!(read, "{what}: wrote {} {path}", e.method);
    }
    Ok(())
}

/// The session's whole key space, raw.
async fn keys_of(ctx: &Ctx, id: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    snapshot(ctx, &format!("{id}:")).await
}

/// With `key` of session `id` holding `planted` (and nothing else stored for the session):
/// reads return nothing, every write (and `metadata` for the log layout, whose timestamps live
/// in the head) fails with `corrupt`, nothing is written or deleted, and `planted` is intact.
async fn refused_everywhere(ctx: &Ctx, id: &str, what: &str) -> CaseResult {
    let before = keys_of(ctx, id).await?;
    ensure!(!before.is_empty(), "{what}: nothing planted");
    let (mut inst, traffic) = traced(ctx).await?;
    let s = ctx.open(&mut inst, id).await?;
    ensure!(
        inst.get_items(s, None).await?.is_empty(),
        "{what}: read something"
    );
    ensure!(inst.get_items(s, Some(3)).await?.is_empty(), "{what}");
    no_writes(&traffic, what)?;
    is_corrupt(inst.add_items(s, &[msg("user", "new")]).await).context(format!("{what}: add"))?;
    is_corrupt(inst.pop_item(s).await).context(format!("{what}: pop"))?;
    if ctx.layout == Layout::Log {
        is_corrupt(inst.clear(s).await).context(format!("{what}: clear"))?;
        is_corrupt(inst.metadata(s).await).context(format!("{what}: metadata"))?;
    }
    no_writes(&traffic, what)?;
    only_own_keys(ctx, &traffic, id)?;
    let after = keys_of(ctx, id).await?;
    unchanged(&before, &after, what)?;
    ensure!(
        after.len() == before.len(),
        "{what}: keys appeared: {:?}",
        after.keys().collect::<Vec<_>>()
    );
    Ok(())
}

/// The key that decides what the session holds: the log layout's head, the compat messages.
fn main_key(ctx: &Ctx, id: &str) -> String {
    ctx.probe_key(id)
}

/// Values that are not JSON, or JSON that is not what the layout keeps there (the head is an
/// object; the messages value an array): refused everywhere, left as they were.
pub async fn main_key_not_json_or_wrong_kind(ctx: Ctx) -> CaseResult {
    let mut planted: Vec<(&str, Vec<u8>)> = vec![
        ("not json", b"not json {{{".to_vec()),
        ("not utf-8", vec![0xff, 0xfe, b'{', 0x80]),
        ("truncated", b"{\"v\":1,\"l\":[[[\"ab".to_vec()),
        ("trailing garbage", b"{\"v\":1} x".to_vec()),
        ("two values", b"[] []".to_vec()),
        ("number", b"42".to_vec()),
        ("huge number", b"1e999999".to_vec()),
        ("true", b"true".to_vec()),
        ("string", b"\"[]\"".to_vec()),
        ("string with a lone surrogate", b"\"\\ud800\"".to_vec()),
        ("byte order mark", b"\xef\xbb\xbf[]".to_vec()),
        ("NUL", b"\0".to_vec()),
    ];
    match ctx.layout {
        // An array is what compat keeps; an object is what log keeps.
        Layout::Log => {
            planted.push(("array", b"[[\"a\",1]]".to_vec()));
            planted.push(("array holding a version", b"[1]".to_vec()));
        }
        Layout::Compat => planted.push(("object", b"{\"messages\":[]}".to_vec())),
    }
    for (what, bytes) in planted {
        let id = ctx.id("kind");
        ctx.backend.put_bytes(&main_key(&ctx, &id), &bytes).await?;
        refused_everywhere(&ctx, &id, what).await?;
    }
    Ok(())
}

/// Log heads of the wrong shape: missing or mistyped fields, negative, fractional and
/// out-of-range numbers, a newer format, and values that parse but no writer produces (an
/// entry of zero items, counts whose sum overflows, more items than a WIT list can carry, a
/// trash list naming keys outside the session). Each is refused everywhere and left as it
/// was; none hangs or traps.
pub async fn log_head_wrong_shapes(ctx: Ctx) -> CaseResult {
    let n = "aaaaaaaaaaaa";
    let heads: Vec<(&str, String)> = vec![
        ("empty object", "{}".into()),
        ("version missing", r#"{"l":[]}"#.into()),
        ("version string", r#"{"v":"1"}"#.into()),
        ("version negative", r#"{"v":-1}"#.into()),
        ("version fraction", r#"{"v":1.5}"#.into()),
        ("version null", r#"{"v":null}"#.into()),
        ("version over u32", r#"{"v":4294967296}"#.into()),
        ("newer version", r#"{"v":2}"#.into()),
        ("duplicate field", r#"{"v":1,"v":1}"#.into()),
        ("levels a string", r#"{"v":1,"l":"x"}"#.into()),
        ("levels an object", r#"{"v":1,"l":{}}"#.into()),
        ("level of strings", r#"{"v":1,"l":[["a"]]}"#.into()),
        ("entry too short", format!(r#"{{"v":1,"l":[[["{n}"]]]}}"#)),
        (
            "entry too long",
            format!(r#"{{"v":1,"l":[[["{n}",1,2]]]}}"#),
        ),
        ("entry id a number", r#"{"v":1,"l":[[[7,1]]]}"#.into()),
        ("count negative", format!(r#"{{"v":1,"l":[[["{n}",-1]]]}}"#)),
        (
            "count fraction",
            format!(r#"{{"v":1,"l":[[["{n}",1.5]]]}}"#),
        ),
        ("count 1e30", format!(r#"{{"v":1,"l":[[["{n}",1e30]]]}}"#)),
        (
            "count over u64",
            format!(r#"{{"v":1,"l":[[["{n}",18446744073709551616]]]}}"#),
        ),
        (
            "count a string",
            format!(r#"{{"v":1,"l":[[["{n}","1"]]]}}"#),
        ),
        ("created negative", r#"{"v":1,"c":-5}"#.into()),
        ("updated a string", r#"{"v":1,"u":"now"}"#.into()),
        ("refreshed huge", r#"{"v":1,"r":1e400}"#.into()),
        ("ops a string", r#"{"v":1,"o":"x"}"#.into()),
        ("ops numbers", r#"{"v":1,"o":[1]}"#.into()),
        ("trash numbers", r#"{"v":1,"t":[1]}"#.into()),
        ("tail objects", r#"{"v":1,"n":[{}]}"#.into()),
        ("recent one nonce", r#"{"v":1,"k":["a"]}"#.into()),
        ("recent a string", r#"{"v":1,"k":"a"}"#.into()),
        // Parse, but no writer produces them.
        (
            "entry of zero items",
            format!(r#"{{"v":1,"l":[[["{n}",0]]]}}"#),
        ),
        (
            "page entry of zero items",
            format!(r#"{{"v":1,"l":[[["{n}",1]],[["bbbbbbbbbbbb",0]]]}}"#),
        ),
        (
            "count u64::MAX",
            format!(r#"{{"v":1,"l":[[["{n}",18446744073709551615]]]}}"#),
        ),
        (
            "counts overflowing",
            format!(
                r#"{{"v":1,"l":[[["{n}",9223372036854775808],["bbbbbbbbbbbb",9223372036854775808]]]}}"#
            ),
        ),
        (
            "more items than a list carries",
            format!(r#"{{"v":1,"l":[[["{n}",4294967296]]]}}"#),
        ),
    ];
    for (what, head) in heads {
        let id = ctx.id("shape");
        ctx.backend
            .put_bytes(&format!("{id}:head"), head.as_bytes())
            .await?;
        refused_everywhere(&ctx, &id, what).await?;
    }
    Ok(())
}

/// A head whose trash lists keys outside the session: no writer may delete them. The head is
/// refused everywhere, and the other session's key is still there.
pub async fn log_trash_outside_the_session_is_refused(ctx: Ctx) -> CaseResult {
    let victim = ctx.id("victim");
    let mut inst = ctx.instance().await?;
    let v = ctx.open(&mut inst, &victim).await?;
    inst.add_items(v, &[msg("user", "victim")]).await?;
    let victim_keys = keys_of(&ctx, &victim).await?;
    for target in [format!("{victim}:head"), victim.clone(), "head".to_string()] {
        let id = ctx.id("thief");
        let head = json!({"v": 1, "t": [target]});
        ctx.backend
            .put_bytes(&format!("{id}:head"), head.to_string().as_bytes())
            .await?;
        refused_everywhere(&ctx, &id, &format!("trash {target}")).await?;
        unchanged(&victim_keys, &keys_of(&ctx, &victim).await?, "victim")?;
    }
    ensure!(contents(&inst.get_items(v, None).await?) == ["victim"]);
    Ok(())
}

/// The stored head of session `id`, parsed.
async fn head_of(ctx: &Ctx, id: &str) -> anyhow::Result<Value> {
    let raw = ctx
        .backend
        .get_bytes(&format!("{id}:head"))
        .await?
        .context("no head")?;
    Ok(serde_json::from_slice(&raw)?)
}

/// Level `k` of a head, as (nonce, items).
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

/// Writes 70 batches of two items: the 32 oldest batches spill into a page, 24 items stay in
/// the head's tail, and the batches between are copied into the recent key. Returns every
/// item, oldest first.
async fn build(inst: &mut Instance, s: SessionHandle) -> anyhow::Result<Vec<String>> {
    let mut all = Vec::new();
    for b in 0..70 {
        let batch = vec![
            msg("user", &format!("b{b} i0")),
            msg("assistant", &format!("b{b} i1")),
        ];
        inst.add_items(s, &batch).await?;
        all.extend(batch);
    }
    Ok(all)
}

async fn delete(ctx: &Ctx, key: &str) -> CaseResult {
    let a = ctx.http().delete(&ctx.backend.store, key).await?;
    ensure!(a.status.is_success(), "deleting {key}: {a:?}");
    Ok(())
}

/// A fresh instance's view of session `id`, from a traced instance that must not write.
async fn read_fresh(ctx: &Ctx, id: &str, limit: Option<u32>) -> anyhow::Result<Vec<String>> {
    let (mut inst, traffic) = traced(ctx).await?;
    let s = ctx.open(&mut inst, id).await?;
    let got = inst.get_items(s, limit).await?;
    no_writes(&traffic, "a read")?;
    only_own_keys(ctx, &traffic, id)?;
    Ok(got)
}

/// Every key of `before` but the head and the recent key (the only keys ever rewritten) is
/// still there with the same bytes.
fn immutables_kept(
    id: &str,
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
    what: &str,
) -> CaseResult {
    let keep: BTreeMap<String, Vec<u8>> = before
        .iter()
        .filter(|(k, _)| **k != format!("{id}:head") && **k != format!("{id}:r"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    unchanged(&keep, after, what)
}

/// The log head points at keys that are gone: the recent key (a cache: reads fall back to
/// the item keys), item keys (those items are skipped, and a positive limit counts valid
/// items), a page (its batches are skipped, the rest is read; a pop that must pull the page
/// back fails with `corrupt`), everything but the head. Nothing stored is overwritten.
pub async fn log_head_points_at_missing_keys(ctx: Ctx) -> CaseResult {
    // The recent key alone.
    let id = ctx.id("no-recent");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let all = build(&mut inst, s).await?;
    let head = head_of(&ctx, &id).await?;
    ensure!(
        head["k"].is_array(),
        "the head records no recent key: {head}"
    );
    ensure!(level(&head, 1).len() == 1, "no page: {head}");
    delete(&ctx, &format!("{id}:r")).await?;
    ensure!(read_fresh(&ctx, &id, None).await? == all);
    ensure!(read_fresh(&ctx, &id, Some(100)).await?[..] == all[40..]);
    let before = keys_of(&ctx, &id).await?;
    inst.add_items(s, &[msg("user", "after")]).await?;
    immutables_kept(&id, &before, &keys_of(&ctx, &id).await?, "add")?;

    // Item keys of a level-0 batch outside the tail and of a batch in the page (the page's
    // copy still answers for the latter), with the recent key gone too.
    let id = ctx.id("no-items");
    let s = ctx.open(&mut inst, &id).await?;
    let all = build(&mut inst, s).await?;
    let head = head_of(&ctx, &id).await?;
    let l0 = level(&head, 0);
    // Level 0 holds batches 32..70; batch 40 is outside the tail (the newest 12 batches).
    let (gone, _) = &l0[40 - 32];
    for i in 0..2 {
        delete(&ctx, &format!("{id}:i:{gone}:{i}")).await?;
    }
    delete(&ctx, &format!("{id}:r")).await?;
    let want: Vec<String> = all
        .iter()
        .filter(|i| !i.contains("\"b40 i"))
        .cloned()
        .collect();
    ensure!(want.len() == 138);
    ensure!(
        read_fresh(&ctx, &id, None).await? == want,
        "items not skipped"
    );
    // A positive limit counts valid items: 60 newest valid ones reach past batch 40.
    ensure!(read_fresh(&ctx, &id, Some(60)).await?[..] == want[want.len() - 60..]);
    let before = keys_of(&ctx, &id).await?;
    ensure!(
        inst.pop_item(s).await?.as_deref() == Some(all[139].as_str()),
        "pop"
    );
    let (newest, _) = &l0[l0.len() - 1];
    immutables_kept(
        &id,
        &before
            .into_iter()
            .filter(|(k, _)| !k.contains(newest.as_str()))
            .collect(),
        &keys_of(&ctx, &id).await?,
        "pop",
    )?;

    // The page.
    let id = ctx.id("no-page");
    let s = ctx.open(&mut inst, &id).await?;
    let all = build(&mut inst, s).await?;
    let head = head_of(&ctx, &id).await?;
    let (page, _) = level(&head, 1)[0].clone();
    delete(&ctx, &format!("{id}:p:{page}")).await?;
    // Batches 0..32 are behind the page: skipped; the 76 items of level 0 are read.
    ensure!(
        read_fresh(&ctx, &id, None).await?[..] == all[64..],
        "a missing page hides more than its own batches"
    );
    ensure!(read_fresh(&ctx, &id, Some(100)).await?[..] == all[64..]);
    ensure!(read_fresh(&ctx, &id, Some(30)).await?[..] == all[110..]);
    // Pops work until level 0 runs low and the page must come back: then `corrupt`.
    let before = keys_of(&ctx, &id).await?;
    let mut popped = 0;
    let err = loop {
        match inst.pop_item(s).await {
            Ok(Some(item)) => {
                ensure!(item == all[139 - popped], "pop {popped}");
                popped += 1;
                ensure!(popped < 100, "pops never reached the missing page");
            }
            other => break is_corrupt(other)?,
        }
    };
    ensure!(err.contains(&page), "{err}");
    let after = keys_of(&ctx, &id).await?;
    ensure!(!after.contains_key(&format!("{id}:p:{page}")));
    // Nothing but the popped items' keys went away; the head still lists the page.
    for (k, v) in &before {
        if k.contains(":i:") && !after.contains_key(k) {
            continue;
        }
        if *k == format!("{id}:head") || *k == format!("{id}:r") {
            continue;
        }
        ensure!(after.get(k) == Some(v), "{k} changed");
    }
    ensure!(level(&head_of(&ctx, &id).await?, 1)[0].0 == page);
    let still = read_fresh(&ctx, &id, None).await?;
    ensure!(still[..] == all[64..140 - popped], "after the pops");

    // Everything but the head: only the tail's copies remain readable.
    let id = ctx.id("head-only");
    let s = ctx.open(&mut inst, &id).await?;
    let all = build(&mut inst, s).await?;
    for k in keys_of(&ctx, &id).await?.into_keys() {
        if k != format!("{id}:head") {
            delete(&ctx, &k).await?;
        }
    }
    ensure!(read_fresh(&ctx, &id, Some(24)).await?[..] == all[116..]);
    ensure!(read_fresh(&ctx, &id, None).await?[..] == all[116..]);
    // An add still works and reads back after the tail.
    inst.add_items(s, &[msg("user", "new")]).await?;
    let got = read_fresh(&ctx, &id, None).await?;
    ensure!(
        got.len() == 24 && got[..23] == all[117..] && got[23] == msg("user", "new"),
        "{got:?}"
    );
    Ok(())
}

/// A head listing batches that were never written: reads return nothing for them, pops remove
/// them (the upstream rule for corrupt entries at the end) and report the session empty, and
/// the session works afterwards.
pub async fn log_head_lists_batches_never_written(ctx: Ctx) -> CaseResult {
    let id = ctx.id("ghost");
    let head = json!({"v": 1, "c": 1, "u": 1, "l": [[["ghostghost01", 3], ["ghostghost02", 2]]]});
    ctx.backend
        .put_bytes(&format!("{id}:head"), head.to_string().as_bytes())
        .await?;
    ensure!(read_fresh(&ctx, &id, None).await?.is_empty());
    ensure!(read_fresh(&ctx, &id, Some(2)).await?.is_empty());
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    ensure!(inst.pop_item(s).await?.is_none());
    let head = head_of(&ctx, &id).await?;
    ensure!(level(&head, 0).is_empty(), "{head}");
    inst.add_items(s, &[msg("user", "alive")]).await?;
    ensure!(contents(&read_fresh(&ctx, &id, None).await?) == ["alive"]);
    let meta = inst.metadata(s).await?;
    ensure!(
        meta.created_at == Some(1),
        "created-at was not kept: {meta:?}"
    );
    Ok(())
}

/// Item keys holding what no writer stores (not JSON, a number, a string holding an array or
/// garbage): reads skip them, a positive limit counts valid items, a pop that reaches one
/// removes it with the item it returns.
pub async fn log_item_keys_corrupt(ctx: Ctx) -> CaseResult {
    let id = ctx.id("items");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let all = build(&mut inst, s).await?;
    let l0 = level(&head_of(&ctx, &id).await?, 0);
    // Batches 40..44 (level 0, outside the tail); the recent key goes, so item keys are read.
    delete(&ctx, &format!("{id}:r")).await?;
    let bad: [&[u8]; 5] = [
        b"not json",
        b"42",
        b"\"[1,2]\"",
        b"\"not json {{{\"",
        b"{\"content\":\"object, not a string\"}",
    ];
    for (j, bytes) in bad.iter().enumerate() {
        let (nonce, _) = &l0[40 - 32 + j];
        ctx.backend
            .put_bytes(&format!("{id}:i:{nonce}:1"), bytes)
            .await?;
    }
    let before = keys_of(&ctx, &id).await?;
    // An item key holding the object itself is read (as the compat layout reads objects).
    let want: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !(80..88).contains(i) || i % 2 == 0)
        .map(|(i, item)| {
            if i == 89 {
                r#"{"content":"object, not a string"}"#.to_string()
            } else {
                item.clone()
            }
        })
        .collect();
    ensure!(want.len() == 136);
    let got = read_fresh(&ctx, &id, None).await?;
    ensure!(got == want, "got {} items: {:?}", got.len(), &got[..]);
    ensure!(read_fresh(&ctx, &id, Some(60)).await?[..] == want[76..]);
    immutables_kept(&id, &before, &keys_of(&ctx, &id).await?, "reads")?;
    Ok(())
}

/// Pages that do not parse (not JSON, wrong shape, negative counts) read like a missing
/// page: their batches are skipped, the rest is read, a pull-back fails with `corrupt`, and
/// the page is left as it was.
pub async fn log_page_corrupt(ctx: Ctx) -> CaseResult {
    for (what, bytes) in [
        ("not json", b"not json".to_vec()),
        ("string", b"\"page\"".to_vec()),
        ("entries a string", b"{\"e\":\"x\"}".to_vec()),
        (
            "negative count",
            b"{\"e\":[[\"aaaaaaaaaaaa\",-2]]}".to_vec(),
        ),
        ("copies wrong type", b"{\"e\":[],\"t\":7}".to_vec()),
    ] {
        let id = ctx.id("page");
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        let all = build(&mut inst, s).await?;
        let (page, _) = level(&head_of(&ctx, &id).await?, 1)[0].clone();
        let key = format!("{id}:p:{page}");
        ctx.backend.put_bytes(&key, &bytes).await?;
        ensure!(
            read_fresh(&ctx, &id, None).await?[..] == all[64..],
            "{what}: a corrupt page hides more than its own batches"
        );
        let mut popped = 0;
        loop {
            match inst.pop_item(s).await {
                Ok(Some(_)) => {
                    popped += 1;
                    ensure!(popped < 100, "{what}: the page was never needed");
                }
                other => {
                    is_corrupt(other).context(what)?;
                    break;
                }
            }
        }
        ensure!(
            ctx.backend.get_bytes(&key).await? == Some(bytes.clone()),
            "{what}: the page was changed"
        );
    }
    Ok(())
}

/// Copies that disagree with the head. The head's record of which batches the recent key
/// holds names batches it does not list (ignored: item keys are read); the recent key is not
/// JSON (ignored, and rewritten by a later add: it is a cache); it holds fewer items of a
/// batch than the head counts (the rest come from item keys), batches the head does not
/// list (ignored). Every read returns exactly the stored items.
pub async fn log_recent_key_disagrees_with_head(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;

    // The head's record names batches it does not list.
    let id = ctx.id("record");
    let s = ctx.open(&mut inst, &id).await?;
    let all = build(&mut inst, s).await?;
    let mut head = head_of(&ctx, &id).await?;
    head["k"] = json!(["nosuchbatch1", "nosuchbatch2"]);
    ctx.backend
        .put_bytes(&format!("{id}:head"), head.to_string().as_bytes())
        .await?;
    ctx.backend
        .put_bytes(&format!("{id}:r"), b"[[\"nosuchbatch1\",[\"{}\"]]]")
        .await?;
    ensure!(read_fresh(&ctx, &id, None).await? == all);
    ensure!(read_fresh(&ctx, &id, Some(50)).await?[..] == all[90..]);

    // Not JSON; then an add rewrites it (a cache) and nothing else changes.
    let id = ctx.id("garbage");
    let s = ctx.open(&mut inst, &id).await?;
    let mut all = build(&mut inst, s).await?;
    ctx.backend
        .put_bytes(&format!("{id}:r"), b"\xff not json")
        .await?;
    ensure!(read_fresh(&ctx, &id, None).await? == all);
    let before = keys_of(&ctx, &id).await?;
    let (mut fresh, _) = traced(&ctx).await?;
    let f = ctx.open(&mut fresh, &id).await?;
    for i in 0..8 {
        let item = msg("user", &format!("more {i}"));
        fresh.add_items(f, std::slice::from_ref(&item)).await?;
        all.push(item);
    }
    immutables_kept(&id, &before, &keys_of(&ctx, &id).await?, "adds")?;
    ensure!(read_fresh(&ctx, &id, None).await? == all);

    // Fewer items than the head counts, an unlisted batch, extra items of a popped batch.
    let id = ctx.id("partial");
    let s = ctx.open(&mut inst, &id).await?;
    let all = build(&mut inst, s).await?;
    let l0 = level(&head_of(&ctx, &id).await?, 0);
    let recent: Value = serde_json::from_slice(
        &ctx.backend
            .get_bytes(&format!("{id}:r"))
            .await?
            .context("no recent key")?,
    )?;
    let mut batches = recent.as_array().cloned().context("recent not an array")?;
    ensure!(batches.len() >= 2, "{recent}");
    // First batch: only its first item; an unlisted batch at the front.
    let first = batches[0][1][0].clone();
    batches[0][1] = json!([first]);
    batches.insert(0, json!(["unlistedbtch", [msg("user", "forged")]]));
    ctx.backend
        .put_bytes(
            &format!("{id}:r"),
            Value::Array(batches).to_string().as_bytes(),
        )
        .await?;
    ensure!(l0.len() == 38);
    let got = read_fresh(&ctx, &id, None).await?;
    ensure!(got == all, "{:?}", &got[..got.len().min(5)]);
    Ok(())
}

/// Compat: messages arrays mixing entries of every kind. Strings holding JSON objects and
/// objects are items; everything else (null, numbers, booleans, arrays, strings holding
/// non-objects or garbage, objects nested too deep) is skipped, a positive limit counts valid
/// items, an add keeps every stored entry byte for byte, a pop removes the newest item and
/// the undecodable entries after it, and nothing else.
pub async fn compat_mixed_entries(ctx: Ctx) -> CaseResult {
    let id = ctx.id("mixed");
    let key = format!("{id}:messages");
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
    let entries = format!(
        "[null,1,true,[],{{}},\"[]\",\"x\",{},{{\"content\":\"obj\"}},\"\\\"str\\\"\",{},{},\"{{\\\"n\\\":1e999}}\",{},-0,\"{}\",[\"{}\"]]",
        serde_json::to_string(&msg("user", "ok1"))?,
        serde_json::to_string(&msg("user", "ok2"))?,
        serde_json::to_string(&deep)?,
        serde_json::to_string(&msg("user", "ok3"))?,
        "{\\\"content\\\":\\\"\\\\ud800\\\"}",
        "{}",
    );
    serde_json::from_str::<Value>(&entries).context("bad fixture")?;
    ctx.backend.put_bytes(&key, entries.as_bytes()).await?;
    let valid = vec![
        "{}".to_string(),
        msg("user", "ok1"),
        r#"{"content":"obj"}"#.to_string(),
        msg("user", "ok2"),
        r#"{"n":1e999}"#.to_string(),
        msg("user", "ok3"),
        r#"{"content":"\ud800"}"#.to_string(),
    ];
    ensure!(read_fresh(&ctx, &id, None).await? == valid);
    ensure!(read_fresh(&ctx, &id, Some(3)).await?[..] == valid[4..]);
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "appended")]).await?;
    let after = ctx.backend.get_bytes(&key).await?.context("gone")?;
    let after = String::from_utf8(after)?;
    let stored_head = entries.trim_end_matches(']');
    // Dapr's API may re-encode the array (daprd stores what Go's encoder writes); compare
    // entries as JSON text when it did, verbatim when it did not.
    if !after.starts_with(stored_head) {
        let before: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_str(&entries).unwrap_or_default();
        let now: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(&after)?;
        ensure!(now.len() == before.len() + 1, "{after}");
    }
    let mut want = valid.clone();
    want.push(msg("user", "appended"));
    ensure!(inst.get_items(s, None).await? == want);
    // Pop the appended item, then `{"content":"\ud800"}`, with nothing after it to drop.
    ensure!(inst.pop_item(s).await?.as_deref() == Some(msg("user", "appended").as_str()));
    ensure!(inst.pop_item(s).await?.as_deref() == Some(valid[6].as_str()));
    // Next: ok3, dropping the `-0` after it; then `{"n":1e999}`; then ok2, dropping the deep one.
    ensure!(inst.pop_item(s).await?.as_deref() == Some(valid[5].as_str()));
    ensure!(inst.pop_item(s).await?.as_deref() == Some(valid[4].as_str()));
    let left = stored_entries(&ctx, &key).await?;
    ensure!(
        left.len() == 12 && left[10] == json!(msg("user", "ok2")),
        "{left:?}"
    );
    ensure!(inst.pop_item(s).await?.as_deref() == Some(valid[3].as_str()));
    let left = stored_entries(&ctx, &key).await?;
    ensure!(
        left.len() == 10 && left[7] == json!(msg("user", "ok1")),
        "{left:?}"
    );
    ensure!(inst.get_items(s, None).await?[..] == valid[..3]);
    Ok(())
}

async fn stored_entries(ctx: &Ctx, key: &str) -> anyhow::Result<Vec<Value>> {
    let raw = ctx.backend.get_bytes(key).await?.context("gone")?;
    let v: Value = serde_json::from_slice(&raw)?;
    v.as_array().cloned().context("not an array")
}

/// Compat: a messages array holding a number outside float64 range (`1e400`, which Python's
/// `json` reads as infinity): reads skip it; what a write does depends on the store.
pub async fn compat_number_out_of_float_range(ctx: Ctx) -> CaseResult {
    let id = ctx.id("1e400");
    let key = format!("{id}:messages");
    let planted = format!("[{},1e400]", serde_json::to_string(&msg("user", "kept"))?);
    ctx.backend.put_bytes(&key, planted.as_bytes()).await?;
    ensure!(contents(&read_fresh(&ctx, &id, None).await?) == ["kept"]);
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    // Dapr's API decodes every saved value (Go: into float64) and refuses the request.
    let err = session_error(inst.add_items(s, &[msg("user", "new")]).await)?;
    ensure!(
        matches!(&err, SessionError::Store(e) if e.status == 400 && e.error_code == "ERR_MALFORMED_REQUEST"),
        "{err:?}"
    );
    ensure!(
        ctx.backend.get_bytes(&key).await? == Some(planted.clone().into_bytes()),
        "changed"
    );
    ensure!(contents(&inst.get_items(s, None).await?) == ["kept"]);
    // A pop removes the undecodable entry after the item it returns, as upstream does.
    ensure!(inst.pop_item(s).await?.as_deref() == Some(msg("user", "kept").as_str()));
    ensure!(stored_entries(&ctx, &key).await?.is_empty());
    Ok(())
}

/// Compat metadata of the wrong kind or shape: `metadata` reads it as far as it can (`corrupt`
/// if it is not a JSON object), adds still succeed, and metadata that does not parse as an
/// object is never overwritten.
pub async fn compat_metadata_wrong_shapes(ctx: Ctx) -> CaseResult {
    for (what, bytes) in [
        ("not json", b"not json".to_vec()),
        ("string", b"\"1700000000\"".to_vec()),
        ("number", b"1700000000".to_vec()),
        ("null", b"null".to_vec()),
        ("truncated", b"{\"created_at\":\"17".to_vec()),
        ("array", b"[\"1700000000\"]".to_vec()),
    ] {
        let id = ctx.id("meta");
        let key = format!("{id}:metadata");
        ctx.backend.put_bytes(&key, &bytes).await?;
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        is_corrupt(inst.metadata(s).await).context(what)?;
        inst.add_items(s, &[msg("user", what)]).await?;
        ensure!(contents(&inst.get_items(s, None).await?) == [what]);
        ensure!(
            ctx.backend.get_bytes(&key).await? == Some(bytes.clone()),
            "{what}: the metadata was overwritten"
        );
    }
    // Objects whose fields have the wrong types or range: read as unknown times.
    for (what, value) in [
        ("negative", json!({"created_at": "-5", "updated_at": -5})),
        (
            "words",
            json!({"created_at": "yesterday", "updated_at": {"a": 1}}),
        ),
        (
            "huge",
            json!({"created_at": "99999999999999999999999", "updated_at": 1e300}),
        ),
        ("missing", json!({"session_id": "x"})),
    ] {
        let id = ctx.id("meta-fields");
        ctx.backend
            .put_bytes(&format!("{id}:metadata"), value.to_string().as_bytes())
            .await?;
        let mut inst = ctx.instance().await?;
        let s = ctx.open(&mut inst, &id).await?;
        let m = inst.metadata(s).await?;
        ensure!(
            m.created_at.is_none() && m.updated_at.is_none(),
            "{what}: {m:?}"
        );
        // The object parses, so the next write repairs it: times it cannot read become the
        // time of that write (upstream does the same with a missing `created_at`).
        let t0 = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            * 1000;
        inst.add_items(s, &[msg("user", what)]).await?;
        let m = inst.metadata(s).await?;
        ensure!(
            m.created_at.is_some_and(|c| c + 1000 >= t0) && m.updated_at >= m.created_at,
            "{what}: {m:?}"
        );
    }
    Ok(())
}

/// A small deterministic PRNG (splitmix64), so a failure names the seed that found it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn nonce(&mut self) -> String {
        if self.chance(20) {
            return (*self.pick(&["head", "x:head", "", "AAAAAAAAAAAA", "a:b"])).to_string();
        }
        (0..12)
            .map(|_| char::from(*self.pick(b"0123456789abcdefghijklmnopqrstuvwxyz")))
            .collect()
    }

    fn count(&mut self) -> Value {
        match self.below(12) {
            0 => json!(0),
            1 => json!(u64::MAX),
            2 => json!(-1),
            3 => json!(u64::from(u32::MAX) + 1),
            4 => json!(1.5),
            _ => json!(1 + self.below(4)),
        }
    }
}

fn any_item(rng: &mut Rng) -> String {
    (*rng.pick(&[
        r#"{"role":"user","content":"hi"}"#,
        "{}",
        r#"{"a":"\ud800","n":1e400}"#,
        "not json",
        "[1]",
        "\"s\"",
    ]))
    .to_string()
}

/// A value as the store might hold it at `key`: what the layout writes there, or something
/// near it.
fn stored_value(rng: &mut Rng, key: &str) -> Value {
    let items =
        |rng: &mut Rng| -> Vec<String> { (0..rng.below(4)).map(|_| any_item(rng)).collect() };
    let entries = |rng: &mut Rng| -> Vec<Value> {
        (0..rng.below(5))
            .map(|_| json!([rng.nonce(), rng.count()]))
            .collect()
    };
    if key.ends_with(":head") {
        let mut levels = vec![Value::Array(entries(rng))];
        if rng.chance(3) {
            levels.push(Value::Array(entries(rng)));
        }
        let mut head = json!({
            "v": *rng.pick(&[1, 1, 1, 0, 2]),
            "c": 1_700_000_000_000u64,
            "u": 1_700_000_000_000u64,
            "l": levels,
            "o": [format!("{}.0", rng.nonce())],
            "n": items(rng),
        });
        if rng.chance(3) {
            head["k"] = json!([rng.nonce(), rng.nonce()]);
        }
        if rng.chance(4) {
            head["t"] = json!([format!(
                "{}:i:{}:0",
                key.trim_end_matches(":head"),
                rng.nonce()
            )]);
        }
        head
    } else if key.ends_with(":r") {
        Value::Array(
            (0..rng.below(4))
                .map(|_| json!([rng.nonce(), items(rng)]))
                .collect(),
        )
    } else if key.contains(":p:") {
        if rng.chance(2) {
            Value::Array(entries(rng))
        } else {
            let e = entries(rng);
            let t: Vec<Value> = e.iter().map(|_| json!(items(rng))).collect();
            json!({"e": e, "t": t})
        }
    } else if key.ends_with(":messages") {
        let mut v: Vec<Value> = items(rng).into_iter().map(Value::String).collect();
        if rng.chance(3) {
            v.push(json!({"role": "user"}));
            v.push(json!(7));
        }
        Value::Array(v)
    } else if key.ends_with(":metadata") {
        json!({"session_id": "x", "created_at": "1700000000", "updated_at": *rng.pick(&[json!("1700000001"), json!(-1), json!([])])})
    } else {
        Value::String(any_item(rng))
    }
}

/// JSON text made worse: truncated, a byte changed, wrapped, or left alone.
fn damage(rng: &mut Rng, text: String) -> String {
    match rng.below(8) {
        0 => text.chars().take(rng.below(text.len() + 1)).collect(),
        1 => {
            let mut b = text.into_bytes();
            if !b.is_empty() {
                let i = rng.below(b.len());
                b[i] = *rng.pick(b"{}[]\":,0-9en \\");
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        2 => format!("[{text}]"),
        3 => String::new(),
        _ => text,
    }
}

fn error_body(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => json!({"errorCode": "ERR_STATE_SAVE", "message": "boom"}).to_string(),
        1 => json!({"errorCode": "ERR_STATE_STORE_NOT_FOUND", "message": "no"}).to_string(),
        2 => json!({"errorCode": 5, "message": ["x"]}).to_string(),
        3 => "<html>502 Bad Gateway</html>".to_string(),
        _ => String::new(),
    }
}

/// An answer for request `ex`, or `None` to let it through to the real sidecar.
fn garbage_answer(rng: &mut Rng, ex: &Exchange, store: &str) -> Option<Synthetic> {
    if rng.chance(5) {
        return None;
    }
    let path = ex.path_and_query();
    let error = |rng: &mut Rng| Synthetic {
        status: *rng.pick(&[400, 404, 409, 413, 500, 500, 503, 599]),
        body: error_body(rng),
    };
    if rng.chance(8) {
        return Some(error(rng));
    }
    let ok = |body: String| Some(Synthetic { status: 200, body });
    if path == "/v1.0/healthz" {
        return Some(Synthetic {
            status: *rng.pick(&[200, 204, 500]),
            body: String::new(),
        });
    }
    if path == "/v1.0/metadata" {
        let caps = match rng.below(4) {
            0 => json!(["ETAG"]),
            1 => json!([]),
            2 => json!("ETAG"),
            _ => json!(["ETAG", "TRANSACTIONAL", "TTL"]),
        };
        let kind = *rng.pick(&["state.redis", "state.sqlite", "bindings.x"]);
        let name = *rng.pick(&[store, store, "other"]);
        let body = json!({"id": "app", "components": [{"name": name, "type": kind, "capabilities": caps}]});
        return ok(damage(rng, body.to_string()));
    }
    let keys = super::bad_input::touched_keys(ex, store).unwrap_or_default();
    if path.contains("/bulk") {
        let answer: Vec<Value> = keys
            .iter()
            .filter_map(|k| match rng.below(6) {
                0 => None,
                1 => Some(json!({"key": k})),
                2 => Some(json!({"key": k, "error": "boom"})),
                _ => Some(json!({"key": k, "data": stored_value(rng, k), "etag": "1"})),
            })
            .collect();
        return ok(damage(rng, Value::Array(answer).to_string()));
    }
    if ex.method == "GET" {
        let key = keys.first().cloned().unwrap_or_default();
        if rng.chance(4) {
            return Some(Synthetic {
                status: 204,
                body: String::new(),
            });
        }
        let text = stored_value(rng, &key).to_string();
        return ok(damage(rng, text));
    }
    // Writes and deletes.
    if rng.chance(3) {
        Some(error(rng))
    } else {
        Some(Synthetic {
            status: 204,
            body: String::new(),
        })
    }
}

/// The component's decoders of what the sidecar answers (error bodies, bulk-get answers,
/// metadata and capabilities, heads, pages, recent keys, items, compat arrays and metadata)
/// never trap and never steer a request to a key outside the session: a host answers four
/// requests in five itself, with random statuses and bodies that are what the layout stores
/// or near it (wrong kinds, extreme and negative counts, ids that are not nonces, truncated,
/// a byte changed), seeded (`DAPR_SESSION_FUZZ_SEED`; rounds: `DAPR_SESSION_FUZZ_ROUNDS`,
/// default 300). Every call returns a value or a typed error, and once the sidecar answers
/// properly a session works again.
pub async fn garbage_sidecar_answers_are_typed_errors(ctx: Ctx) -> CaseResult {
    let seed = std::env::var("DAPR_SESSION_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_u64);
    let rounds: usize = std::env::var("DAPR_SESSION_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let rng = std::sync::Arc::new(std::sync::Mutex::new(Rng(seed)));
    let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let hook: BeforeSend = {
        let rng = rng.clone();
        let on = on.clone();
        let store = ctx.backend.store.clone();
        std::sync::Arc::new(move |ex: &Exchange| {
            let answer = if on.load(std::sync::atomic::Ordering::SeqCst) {
                garbage_answer(&mut rng.lock().unwrap(), ex, &store)
            } else {
                None
            };
            Box::pin(async move { answer })
        })
    };
    let id = ctx.id("garbage-answers");
    let traffic = Traffic::default();
    let mut inst = ctx
        .instance_with(InstanceOptions {
            hooks: Hooks {
                traffic: Some(traffic.clone()),
                before_send: Some(hook),
                pool: None,
            },
            ..Default::default()
        })
        .await?;
    let mut config = ctx.config();
    config.timeout_ms = Some(2000);
    let s = inst.open(&id, &config).await?;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for round in 0..rounds {
        let r: Result<String, dapr_session_host_tests::host::CallError> = match round % 7 {
            0 => inst
                .get_items(s, None)
                .await
                .map(|v| format!("{} items", v.len().min(3))),
            1 => inst
                .get_items(s, Some(30))
                .await
                .map(|v| format!("{} items", v.len().min(3))),
            2 => inst
                .add_items(s, &[msg("user", &format!("r{round}")), msg("user", "x")])
                .await
                .map(|()| "added".into()),
            3 => inst
                .pop_item(s)
                .await
                .map(|p| format!("popped {}", p.is_some())),
            4 => inst.metadata(s).await.map(|_| "metadata".into()),
            5 => inst.clear(s).await.map(|()| "cleared".into()),
            _ => inst.ping(s).await.map(|()| "pong".into()),
        };
        let kind = match r {
            Ok(v) => format!("ok: {v}"),
            Err(e) => match e.session() {
                Some(err) => format!("{err:?}")
                    .split(['(', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                None => anyhow::bail!("seed {seed}, round {round}: the component trapped: {e}"),
            },
        };
        *outcomes.entry(kind).or_default() += 1;
        only_own_keys(&ctx, &traffic, &id)
            .with_context(|| format!("seed {seed}, round {round}"))?;
        traffic.clear();
    }
    // Both kinds of outcome happened, so the answers did reach the decoders.
    ensure!(
        outcomes.keys().any(|k| !k.starts_with("ok"))
            && outcomes.keys().filter(|k| k.starts_with("ok")).count() >= 3,
        "{outcomes:?}"
    );
    on.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut clean = ctx.instance().await?;
    let t = ctx.open(&mut clean, &ctx.id("after")).await?;
    clean.add_items(t, &[msg("user", "fine")]).await?;
    ensure!(contents(&clean.get_items(t, None).await?) == ["fine"]);
    Ok(())
}

/// Entries name keys (`{id}:i:{batch}:{n}`, `{id}:p:{page}`), so an entry whose id is not a
/// nonce could name another session's keys: batch `x:i:{nonce}` of session `t` is item key
/// `t:i:x:i:{nonce}:0`, which belongs to session `t:i:x`. A head listing such an entry is
/// refused everywhere; a page listing one reads as unreadable (its batches are skipped).
/// Either way the other session's item is never returned as this session's, and a clear
/// never deletes it.
pub async fn log_entries_naming_other_sessions_keys_are_refused(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    // Through the head.
    let t = ctx.id("namer");
    let victim = format!("{t}:i:x");
    let v = ctx.open(&mut inst, &victim).await?;
    inst.add_items(v, &[msg("user", "victim's")]).await?;
    let (vn, _) = level(&head_of(&ctx, &victim).await?, 0)[0].clone();
    let victim_keys = keys_of(&ctx, &victim).await?;
    for head in [
        json!({"v": 1, "l": [[[format!("x:i:{vn}"), 1]]]}),
        json!({"v": 1, "l": [[["aaaaaaaaaaaa", 1]], [[format!("x:i:{vn}"), 1]]]}),
        json!({"v": 1, "l": [[["head", 1]]]}),
    ] {
        ctx.backend
            .put_bytes(&format!("{t}:head"), head.to_string().as_bytes())
            .await?;
        refused_everywhere(&ctx, &t, &head.to_string()).await?;
    }
    unchanged(&victim_keys, &keys_of(&ctx, &victim).await?, "victim")?;

    // Through a page.
    let t = ctx.id("page-namer");
    let s = ctx.open(&mut inst, &t).await?;
    let all = build(&mut inst, s).await?;
    let victim = format!("{t}:i:x");
    let v = ctx.open(&mut inst, &victim).await?;
    inst.add_items(v, &[msg("user", "victim's")]).await?;
    let (vn, _) = level(&head_of(&ctx, &victim).await?, 0)[0].clone();
    let victim_keys = keys_of(&ctx, &victim).await?;
    let (page, _) = level(&head_of(&ctx, &t).await?, 1)[0].clone();
    let mut forged: Vec<Value> = (0..31).map(|i| json!([format!("{i:0>12}"), 2])).collect();
    forged.push(json!([format!("x:i:{vn}"), 1]));
    ctx.backend
        .put_bytes(
            &format!("{t}:p:{page}"),
            json!({"e": forged}).to_string().as_bytes(),
        )
        .await?;
    let got = read_fresh(&ctx, &t, None).await?;
    ensure!(got[..] == all[64..], "read {} items", got.len());
    ensure!(!got.contains(&msg("user", "victim's")));
    inst.clear(s).await?;
    ensure!(read_fresh(&ctx, &t, None).await?.is_empty());
    unchanged(&victim_keys, &keys_of(&ctx, &victim).await?, "victim")?;
    ensure!(contents(&inst.get_items(v, None).await?) == ["victim's"]);
    Ok(())
}

/// A head that parses and is plausible but claims more items than one call can carry (here
/// `u32::MAX`, the most a head may claim, none of them stored): `get-items()` fails typed
/// (`store` with code `ERR_TOO_MANY_ITEMS`) instead of exhausting memory, and appends and
/// reads within the tail still work.
pub async fn log_head_claiming_too_many_items(ctx: Ctx) -> CaseResult {
    let id = ctx.id("huge-claim");
    let head = json!({"v": 1, "c": 1, "u": 1, "l": [[["aaaaaaaaaaaa", u32::MAX]]]});
    ctx.backend
        .put_bytes(&format!("{id}:head"), head.to_string().as_bytes())
        .await?;
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &id).await?;
    match session_error(inst.get_items(s, None).await)? {
        SessionError::Store(e) if e.error_code == "ERR_TOO_MANY_ITEMS" => {}
        other => anyhow::bail!("get-items(): {other:?}"),
    }
    no_writes(&traffic, "get-items()")?;
    inst.add_items(s, &[msg("user", "new")]).await?;
    ensure!(contents(&inst.get_items(s, Some(1)).await?) == ["new"]);
    let head = head_of(&ctx, &id).await?;
    ensure!(
        level(&head, 0)
            == [
                ("aaaaaaaaaaaa".to_string(), u64::from(u32::MAX)),
                (level(&head, 0)[1].0.clone(), 1)
            ],
        "{head}"
    );
    only_own_keys(&ctx, &traffic, &id)?;
    Ok(())
}
