//! What is stored: the upstream layout exactly, and what happens when it is damaged.

use anyhow::ensure;
use dapr_session_host_tests::host::SessionError;
use serde_json::{Value, json};

use super::{contents, msg, session_error};
use crate::harness::{CaseResult, Ctx};

fn entries(texts: &[&str]) -> Value {
    Value::Array(texts.iter().map(|t| Value::String(t.to_string())).collect())
}

/// Upstream `test_get_items_limit_skips_corrupt_newest_entries`.
pub async fn limit_skips_corrupt_newest_entries(ctx: Ctx) -> CaseResult {
    let id = ctx.id("skip");
    let (v0, v1, v2) = (
        msg("user", "valid 0"),
        msg("user", "valid 1"),
        msg("user", "valid 2"),
    );
    ctx.backend
        .put_json(
            &format!("{id}:messages"),
            &entries(&[&v0, &v1, &v2, "not valid json {{{"]),
        )
        .await?;
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    ensure!(contents(&inst.get_items(s, Some(2)).await?) == ["valid 1", "valid 2"]);
    ensure!(inst.get_items(s, None).await?.len() == 3);
    Ok(())
}

/// Upstream `test_pop_item_skips_corrupt_most_recent`.
pub async fn pop_skips_corrupt_most_recent(ctx: Ctx) -> CaseResult {
    let id = ctx.id("pop-corrupt");
    let valid = msg("user", "valid");
    ctx.backend
        .put_json(
            &format!("{id}:messages"),
            &entries(&[&valid, "not valid json {{{"]),
        )
        .await?;
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    ensure!(inst.pop_item(s).await?.as_deref() == Some(valid.as_str()));
    ensure!(inst.get_items(s, None).await?.is_empty());
    let stored = ctx.backend.get_bytes(&format!("{id}:messages")).await?;
    ensure!(stored.map(|b| serde_json::from_slice::<Value>(&b).ok()) == Some(Some(json!([]))));
    Ok(())
}

/// Upstream `test_pop_item_returns_none_after_dropping_only_corrupt_entries`.
pub async fn pop_returns_none_after_dropping_only_corrupt_entries(ctx: Ctx) -> CaseResult {
    let id = ctx.id("only-corrupt");
    ctx.backend
        .put_json(
            &format!("{id}:messages"),
            &json!(["not valid json {{{", 42, "[1]"]),
        )
        .await?;
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    ensure!(inst.pop_item(s).await?.is_none());
    ensure!(inst.get_items(s, None).await?.is_empty());
    Ok(())
}

async fn never_overwritten(ctx: &Ctx, id: &str, planted: Vec<u8>) -> CaseResult {
    let key = format!("{id}:messages");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, id).await?;
    ensure!(
        inst.get_items(s, None).await?.is_empty(),
        "a corrupt value must read as empty"
    );
    let err = session_error(inst.add_items(s, &[msg("user", "new")]).await)?;
    ensure!(
        matches!(err, SessionError::Corrupt(_)),
        "add: expected corrupt, got {err:?}"
    );
    let err = session_error(inst.pop_item(s).await)?;
    ensure!(
        matches!(err, SessionError::Corrupt(_)),
        "pop: expected corrupt, got {err:?}"
    );
    let after = ctx.backend.get_bytes(&key).await?.unwrap_or_default();
    ensure!(
        after == planted,
        "the corrupt value was changed: {:?}",
        String::from_utf8_lossy(&after)
    );
    Ok(())
}

/// Upstream `test_add_items_rejects_corrupted_aggregate_state` for values Dapr's API can
/// store: a JSON object and a JSON string that is not an array.
pub async fn corrupt_aggregate_is_never_overwritten(ctx: Ctx) -> CaseResult {
    for (tag, value) in [
        ("object", json!({"not": "a list"})),
        ("string", json!("not valid json {{{")),
    ] {
        let id = ctx.id(tag);
        ctx.backend
            .put_json(&format!("{id}:messages"), &value)
            .await?;
        let planted = ctx
            .backend
            .get_bytes(&format!("{id}:messages"))
            .await?
            .unwrap_or_default();
        never_overwritten(&ctx, &id, planted).await?;
    }
    Ok(())
}

/// The same for bytes that are not JSON or not UTF-8 (as a gRPC client can store).
pub async fn raw_bytes_aggregate_is_never_overwritten(ctx: Ctx) -> CaseResult {
    for (tag, bytes) in [
        ("invalid-json", b"not valid json {{{".to_vec()),
        ("not-utf8", vec![0xff, 0xfe, b'[']),
    ] {
        let id = ctx.id(tag);
        ctx.backend
            .put_bytes(&format!("{id}:messages"), &bytes)
            .await?;
        never_overwritten(&ctx, &id, bytes).await?;
    }
    Ok(())
}

/// Upstream `test_messages_not_list_handling`.
pub async fn messages_not_a_list_read_as_empty(ctx: Ctx) -> CaseResult {
    let id = ctx.id("not-list");
    ctx.backend
        .put_json(&format!("{id}:messages"), &json!({"a": 1}))
        .await?;
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    ensure!(inst.get_items(s, None).await?.is_empty());
    ensure!(inst.get_items(s, Some(3)).await?.is_empty());
    Ok(())
}

/// Upstream `test_already_deserialized_messages`: entries stored as objects are read too.
pub async fn already_deserialized_messages(ctx: Ctx) -> CaseResult {
    let id = ctx.id("objects");
    ctx.backend
        .put_json(
            &format!("{id}:messages"),
            &json!([{"role": "user", "content": "first"}, msg("assistant", "second")]),
        )
        .await?;
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == ["first", "second"]);
    // Appending keeps the object entry as it was.
    inst.add_items(s, &[msg("user", "third")]).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == ["first", "second", "third"]);
    Ok(())
}

/// The stored value is what the Python `DaprSession` writes: `{id}:messages` holds a JSON
/// array of JSON-encoded item strings; `{id}:metadata` holds `session_id` and epoch-second
/// strings.
pub async fn layout_matches_python(ctx: Ctx) -> CaseResult {
    let id = ctx.id("layout");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    let items = [msg("user", "hi"), msg("assistant", "hello")];
    inst.add_items(s, &items).await?;
    let raw = ctx
        .backend
        .get_bytes(&format!("{id}:messages"))
        .await?
        .unwrap_or_default();
    let value: Value = serde_json::from_slice(&raw)?;
    let arr = value
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("not an array: {value}"))?;
    ensure!(arr.len() == 2);
    for (entry, item) in arr.iter().zip(&items) {
        let text = entry
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("entry is not a string: {entry}"))?;
        ensure!(serde_json::from_str::<Value>(text)? == serde_json::from_str::<Value>(item)?);
    }
    let meta: Value = serde_json::from_slice(
        &ctx.backend
            .get_bytes(&format!("{id}:metadata"))
            .await?
            .unwrap_or_default(),
    )?;
    ensure!(meta["session_id"] == json!(id), "{meta}");
    for field in ["created_at", "updated_at"] {
        let v = meta[field]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("{field} is not a string: {meta}"))?;
        ensure!(
            v.parse::<u64>().is_ok_and(|s| s > 1_600_000_000),
            "{field} = {v}"
        );
    }
    Ok(())
}

/// A session written the way Python writes it (compact JSON strings, ASCII escapes) is read,
/// popped from and appended to.
pub async fn python_written_items_are_read(ctx: Ctx) -> CaseResult {
    let id = ctx.id("python");
    // json.dumps(item, separators=(",", ":")) with ensure_ascii=True.
    let py = [
        r#"{"role":"user","content":"caf\u00e9 \ud83d\ude0a"}"#,
        r#"{"role":"assistant","content":"ok"}"#,
    ];
    ctx.backend
        .put_json(&format!("{id}:messages"), &entries(&py))
        .await?;
    ctx.backend
        .put_json(
            &format!("{id}:metadata"),
            &json!({"session_id": id, "created_at": "1700000000", "updated_at": "1700000000"}),
        )
        .await?;
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == ["café 😊", "ok"]);
    ensure!(inst.pop_item(s).await?.as_deref() == Some(py[1]));
    inst.add_items(s, &[msg("user", "from wasm")]).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == ["café 😊", "from wasm"]);
    let meta = inst.metadata(s).await?;
    ensure!(meta.created_at == Some(1_700_000_000_000), "{meta:?}");
    Ok(())
}
