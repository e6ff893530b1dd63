//! Corrupt stored data, for both layouts: values that are not JSON or JSON of the wrong
//! kind under the key that decides what a session holds, and the compat layout's entries and
//! metadata of every kind. Reads skip what they cannot decode; writes fail with `corrupt` and
//! leave the stored bytes as they were (compared raw, before and after); nothing ever traps.
//!
//! `stored.rs` has the upstream cases for the compat layout's messages array,
//! `corrupt_head.rs` and `corrupt_chunk.rs` the log layout's, `legacy.rs` 0.1.0's keys, and
//! `garbage.rs` answers the sidecar should never give.

use std::collections::BTreeMap;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::{Layout, SessionError, Traffic};
use serde_json::{Value, json};

use super::bad_input::{only_own_keys, snapshot, unchanged};
use super::traced;
use super::{contents, msg, session_error};
use crate::harness::{CaseResult, Ctx};

pub fn is_corrupt<T: std::fmt::Debug>(
    r: dapr_session_host_tests::host::CallResult<T>,
) -> anyhow::Result<String> {
    match session_error(r)? {
        SessionError::Corrupt(m) if !m.is_empty() => Ok(m),
        other => anyhow::bail!("expected corrupt, got {other:?}"),
    }
}

/// Fails if `traffic` holds a request that writes or deletes.
pub fn no_writes(traffic: &Traffic, what: &str) -> CaseResult {
    for e in traffic.exchanges() {
        let path = e.path_and_query();
        let read = e.method == "GET" || (e.method == "POST" && path.contains("/bulk"));
        ensure!(read, "{what}: wrote {} {path}", e.method);
    }
    Ok(())
}

/// The session's whole key space, raw.
pub async fn keys_of(ctx: &Ctx, id: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    snapshot(ctx, &format!("{id}:")).await
}

/// With `key` of session `id` holding `planted` (and nothing else stored for the session):
/// reads return nothing, every write (and `metadata` for the log layout, whose timestamps live
/// in the head) fails with `corrupt`, nothing is written or deleted, and `planted` is intact.
pub async fn refused_everywhere(ctx: &Ctx, id: &str, what: &str) -> CaseResult {
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

pub async fn delete(ctx: &Ctx, key: &str) -> CaseResult {
    let a = ctx.http().delete(&ctx.backend.store, key).await?;
    ensure!(a.status.is_success(), "deleting {key}: {a:?}");
    Ok(())
}

/// A fresh instance's view of session `id`, from a traced instance that must not write.
pub async fn read_fresh(ctx: &Ctx, id: &str, limit: Option<u32>) -> anyhow::Result<Vec<String>> {
    let (mut inst, traffic) = traced(ctx).await?;
    let s = ctx.open(&mut inst, id).await?;
    let got = inst.get_items(s, limit).await?;
    no_writes(&traffic, "a read")?;
    only_own_keys(ctx, &traffic, id)?;
    Ok(got)
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
