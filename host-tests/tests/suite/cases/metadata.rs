//! Session metadata: created-at kept from the first write, updated-at advanced on every write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::ensure;
use dapr_session_host_tests::host::{
    Exchange, Hooks, InstanceOptions, ManualClock, Synthetic, Traffic,
};
use serde_json::{Value, json};

use super::{contents, msg};
use crate::harness::{CaseResult, Ctx};

fn saves_of<'a>(traffic: &'a [Exchange], key: &'a str) -> impl Iterator<Item = Value> + 'a {
    traffic
        .iter()
        .filter(|e| {
            e.method == "POST"
                && !e.path_and_query().contains("/bulk")
                && !e.path_and_query().contains("/transaction")
        })
        .flat_map(|e| e.json().as_array().cloned().unwrap_or_default())
        .filter(move |w| w.get("key").and_then(Value::as_str) == Some(key))
}

/// Upstream `test_add_items_preserves_created_at_metadata`, with a host clock.
pub async fn created_at_kept_updated_at_advances(ctx: Ctx) -> CaseResult {
    let clock = ManualClock::at_ms(1_000_000);
    let mut inst = ctx
        .instance_with(InstanceOptions {
            clock: Some(clock.clone()),
            ..Default::default()
        })
        .await?;
    let s = ctx.open(&mut inst, &ctx.id("created")).await?;
    let m = inst.metadata(s).await?;
    ensure!(m.created_at.is_none() && m.updated_at.is_none(), "{m:?}");
    inst.add_items(s, &[msg("user", "one")]).await?;
    let m = inst.metadata(s).await?;
    ensure!(
        m.created_at == Some(1_000_000) && m.updated_at == Some(1_000_000),
        "{m:?}"
    );
    clock.set_ms(2_000_000);
    inst.add_items(s, &[msg("user", "two")]).await?;
    let m = inst.metadata(s).await?;
    ensure!(
        m.created_at == Some(1_000_000) && m.updated_at == Some(2_000_000),
        "{m:?}"
    );
    clock.set_ms(3_000_000);
    inst.pop_item(s).await?;
    let m = inst.metadata(s).await?;
    ensure!(
        m.created_at == Some(1_000_000) && m.updated_at == Some(3_000_000),
        "pop is a write: {m:?}"
    );
    clock.set_ms(4_000_000);
    inst.get_items(s, None).await?;
    ensure!(
        inst.metadata(s).await?.updated_at == Some(3_000_000),
        "a read is not a write"
    );
    Ok(())
}

/// Upstream `test_metadata_creation_does_not_request_first_write`: the first metadata save
/// carries no etag and last-write; later ones carry the etag read, with first-write.
pub async fn metadata_creation_then_etag_guarded_update(ctx: Ctx) -> CaseResult {
    let id = ctx.id("meta-wire");
    let traffic = Traffic::default();
    let mut inst = ctx
        .instance_with(InstanceOptions {
            hooks: Hooks {
                traffic: Some(traffic.clone()),
                before_send: None,
                pool: None,
            },
            ..Default::default()
        })
        .await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "one")]).await?;
    inst.add_items(s, &[msg("user", "two")]).await?;
    let saves: Vec<Value> = saves_of(&traffic.exchanges(), &format!("{id}:metadata")).collect();
    ensure!(saves.len() == 2, "{saves:?}");
    ensure!(
        saves[0].get("etag").is_none(),
        "creation sent an etag: {}",
        saves[0]
    );
    ensure!(
        saves[0]["options"]["concurrency"] == json!("last-write"),
        "{}",
        saves[0]
    );
    ensure!(
        saves[1]["etag"].as_str().is_some_and(|e| !e.is_empty()),
        "{}",
        saves[1]
    );
    ensure!(
        saves[1]["options"]["concurrency"] == json!("first-write"),
        "{}",
        saves[1]
    );
    // The items key is always written first-write, with the etag once the key exists.
    let item_saves: Vec<Value> =
        saves_of(&traffic.exchanges(), &format!("{id}:messages")).collect();
    ensure!(
        item_saves.len() == 2
            && item_saves[0].get("etag").is_none()
            && item_saves[1].get("etag").is_some()
    );
    ensure!(
        item_saves
            .iter()
            .all(|w| w["options"]["concurrency"] == json!("first-write"))
    );
    Ok(())
}

/// Upstream `test_stale_metadata_etag_retries_and_keeps_created_at`.
pub async fn stale_metadata_etag_retries_and_keeps_created_at(ctx: Ctx) -> CaseResult {
    let id = ctx.id("meta-stale");
    let key = format!("{id}:metadata");
    let clock = ManualClock::at_ms(1_000_000);
    let mut first = ctx
        .instance_with(InstanceOptions {
            clock: Some(clock.clone()),
            ..Default::default()
        })
        .await?;
    let s = ctx.open(&mut first, &id).await?;
    first.add_items(s, &[msg("user", "one")]).await?;

    // Before the second writer's guarded metadata save, someone else updates the metadata.
    let http = ctx.http();
    let store = ctx.backend.store.clone();
    let fired = Arc::new(AtomicBool::new(false));
    let (k2, id2) = (key.clone(), id.clone());
    let hook = Arc::new(move |ex: &Exchange| {
        let hit = ex.method == "POST"
            && ex.json().as_array().is_some_and(|a| {
                a.iter()
                    .any(|w| w["key"] == json!(k2) && w.get("etag").is_some())
            });
        let go = hit && !fired.swap(true, Ordering::SeqCst);
        let (http, store, key, id) = (http.clone(), store.clone(), k2.clone(), id2.clone());
        Box::pin(async move {
            if go {
                let cur = http.get(&store, &key).await.ok()?;
                let body = serde_json::to_vec(&json!([{
                    "key": key, "etag": cur.header("etag"), "options": {"concurrency": "first-write"},
                    "value": {"session_id": id, "created_at": "1000", "updated_at": "1500"},
                }]))
                .ok()?;
                let a = http
                    .send(
                        http::Method::POST,
                        &format!("/v1.0/state/{store}"),
                        Some(body),
                        &[],
                    )
                    .await
                    .ok()?;
                assert!(
                    a.status.is_success(),
                    "competing metadata write failed: {a:?}"
                );
            }
            None::<Synthetic>
        }) as dapr_session_host_tests::host::HookFuture
    });
    let traffic = Traffic::default();
    let clock2 = ManualClock::at_ms(2_000_000);
    let mut second = ctx
        .instance_with(InstanceOptions {
            clock: Some(clock2),
            hooks: Hooks {
                traffic: Some(traffic.clone()),
                before_send: Some(hook),
                pool: None,
            },
            ..Default::default()
        })
        .await?;
    let s2 = ctx.open(&mut second, &id).await?;
    second.add_items(s2, &[msg("user", "two")]).await?;
    let reads = traffic
        .exchanges()
        .iter()
        .filter(|e| {
            e.method == "GET"
                && e.uri
                    .contains(&dapr_session_host_tests::client::encode(&key))
        })
        .count();
    ensure!(
        reads == 2,
        "expected a re-read after the conflict, saw {reads} reads"
    );
    let m = second.metadata(s2).await?;
    ensure!(
        m.created_at == Some(1_000_000) && m.updated_at == Some(2_000_000),
        "{m:?}"
    );
    Ok(())
}

/// Upstream `test_add_items_survives_metadata_write_giving_up`: the items are stored, so
/// the add succeeds even when every metadata save fails.
pub async fn add_survives_metadata_write_failing(ctx: Ctx) -> CaseResult {
    let id = ctx.id("meta-fail");
    let key = format!("{id}:metadata");
    let hook = Arc::new(move |ex: &Exchange| {
        let hit = ex.method == "POST"
            && ex
                .json()
                .as_array()
                .is_some_and(|a| a.iter().any(|w| w["key"] == json!(key)));
        Box::pin(async move {
            hit.then(|| Synthetic {
                status: 500,
                body: r#"{"errorCode":"ERR_STATE_SAVE","message":"injected"}"#.into(),
            })
        }) as dapr_session_host_tests::host::HookFuture
    });
    let mut inst = ctx
        .instance_with(InstanceOptions {
            hooks: Hooks {
                traffic: None,
                before_send: Some(hook),
                pool: None,
            },
            ..Default::default()
        })
        .await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "kept")]).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == ["kept"]);
    ensure!(inst.metadata(s).await?.created_at.is_none());
    Ok(())
}

/// `clear` removes the metadata too; the next write starts a new created-at.
pub async fn clear_removes_metadata(ctx: Ctx) -> CaseResult {
    let clock = ManualClock::at_ms(5_000_000);
    let mut inst = ctx
        .instance_with(InstanceOptions {
            clock: Some(clock.clone()),
            ..Default::default()
        })
        .await?;
    let s = ctx.open(&mut inst, &ctx.id("meta-clear")).await?;
    inst.add_items(s, &[msg("user", "one")]).await?;
    inst.clear(s).await?;
    let m = inst.metadata(s).await?;
    ensure!(m.created_at.is_none() && m.updated_at.is_none(), "{m:?}");
    clock.set_ms(6_000_000);
    inst.add_items(s, &[msg("user", "two")]).await?;
    ensure!(inst.metadata(s).await?.created_at == Some(6_000_000));
    Ok(())
}
