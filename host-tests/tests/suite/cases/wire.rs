//! What goes over the wire: TTL, consistency, keys and prefixes, request counts.

use std::time::Duration;

use anyhow::ensure;
use dapr_session_host_tests::host::{Consistency, Layout};
use serde_json::{Value, json};

use super::{contents, messages, msg, traced};
use crate::harness::{CaseResult, Ctx};

/// Every write request in a save (`upsert`) or a transaction (`upsert`/`delete`).
fn writes_of(e: &dapr_session_host_tests::host::Exchange) -> Vec<(String, Value)> {
    let body = e.json();
    if let Some(saves) = body.as_array() {
        return saves
            .iter()
            .map(|w| ("upsert".to_string(), w.clone()))
            .collect();
    }
    body["operations"]
        .as_array()
        .map(|ops| {
            ops.iter()
                .map(|o| {
                    (
                        o["operation"].as_str().unwrap_or_default().to_string(),
                        o["request"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream `test_ttl_functionality` and `test_consistency_levels`, checked on the wire: every
/// read asks for the configured consistency, every write and delete carries it, and every
/// write carries `ttlInSeconds`. In the log layout the head is written with the TTL (3600)
/// and chunks with twice the TTL plus the request timeout (7210 with the default 10 s), so
/// that they outlive every head that lists them; the session is written past its tail's bound
/// so that chunks are written, and cleared so that they are deleted.
pub async fn ttl_and_consistency_on_the_wire(ctx: Ctx) -> CaseResult {
    let (mut inst, traffic) = traced(&ctx).await?;
    let mut config = ctx.config();
    config.ttl_seconds = Some(3600);
    config.consistency = Some(Consistency::Strong);
    let id = ctx.id("wire");
    let s = inst.open(&id, &config).await?;
    inst.add_items(s, &[msg("user", "hi")]).await?;
    if ctx.layout == Layout::Log {
        inst.add_items(s, &messages("flushed", 70)).await?;
    }
    inst.get_items(s, None).await?;
    inst.pop_item(s).await?;
    inst.clear(s).await?;
    let ex = traffic.exchanges();
    let (mut reads, mut writes, mut chunk_writes, mut deletes) = (0, 0, 0, 0);
    for e in &ex {
        match e.method.as_str() {
            "GET" if !e.uri.contains("/v1.0/state/") => {}
            "GET" => {
                reads += 1;
                ensure!(
                    e.uri.contains("consistency=strong"),
                    "read without strong consistency: {}",
                    e.uri
                );
            }
            "POST" => {
                for (op, w) in writes_of(e) {
                    ensure!(w["options"]["consistency"] == json!("strong"), "{w}");
                    if op == "delete" {
                        deletes += 1;
                        continue;
                    }
                    let key = w["key"].as_str().unwrap_or_default();
                    let ttl = if key.starts_with(&format!("{id}:c:")) {
                        chunk_writes += 1;
                        "7210"
                    } else {
                        writes += 1;
                        "3600"
                    };
                    ensure!(w["metadata"]["ttlInSeconds"] == json!(ttl), "{w}");
                }
            }
            "DELETE" => {
                deletes += 1;
                ensure!(e.uri.contains("consistency=strong"), "{}", e.uri);
            }
            other => anyhow::bail!("unexpected method {other}"),
        }
    }
    let chunks_expected = usize::from(ctx.layout == Layout::Log);
    ensure!(
        reads >= 1 && writes >= 4 && chunk_writes >= chunks_expected && deletes >= chunks_expected,
        "reads {reads} writes {writes} chunk writes {chunk_writes} deletes {deletes}"
    );
    Ok(())
}

/// The default is eventual consistency and no TTL, in saves and transactions alike.
pub async fn eventual_consistency_on_the_wire(ctx: Ctx) -> CaseResult {
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &ctx.id("eventual")).await?;
    inst.add_items(s, &[msg("user", "hi")]).await?;
    inst.add_items(s, &messages("more", 70)).await?;
    inst.get_items(s, None).await?;
    inst.clear(s).await?;
    for e in traffic.exchanges() {
        if e.method == "GET" && e.uri.contains("/v1.0/state/") {
            ensure!(e.uri.contains("consistency=eventual"), "{}", e.uri);
        }
        for (_, w) in writes_of(&e) {
            ensure!(w["options"]["consistency"] == json!("eventual"), "{w}");
            ensure!(
                w.get("metadata").is_none(),
                "a TTL was sent without one configured: {w}"
            );
        }
    }
    Ok(())
}

/// With a 2 s TTL, the session is gone a little later (observed through the store). Not 1 s:
/// daprd's SQLite store keeps expiry times in whole seconds, so a 1 s TTL can run out at
/// once, before the first read.
pub async fn ttl_expiry_observed(ctx: Ctx) -> CaseResult {
    let id = ctx.id("expiry");
    let mut inst = ctx.instance().await?;
    let mut config = ctx.config();
    config.ttl_seconds = Some(2);
    let s = inst.open(&id, &config).await?;
    inst.add_items(s, &[msg("user", "short-lived")]).await?;
    ensure!(inst.get_items(s, None).await?.len() == 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let gone = inst.get_items(s, None).await?.is_empty()
            && ctx.backend.get_bytes(&ctx.probe_key(&id)).await?.is_none()
            && ctx
                .backend
                .get_bytes(&format!("{id}:metadata"))
                .await?
                .is_none();
        if gone {
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "still there 10 s after a 2 s TTL"
        );
    }
    ensure!(inst.metadata(s).await?.created_at.is_none());
    Ok(())
}

/// Tenants with different prefixes never see each other's sessions, even with the same id;
/// every key a tenant writes starts with its prefix.
pub async fn tenant_prefixes_isolate(ctx: Ctx) -> CaseResult {
    let id = ctx.id("tenant");
    let (mut inst, traffic) = traced(&ctx).await?;
    let mut a = ctx.config();
    a.key_prefix = Some("tenant-a".into());
    let mut b = ctx.config();
    b.key_prefix = Some("tenant-b".into());
    let sa = inst.open(&id, &a).await?;
    let sb = inst.open(&id, &b).await?;
    let plain = ctx.open(&mut inst, &id).await?;
    inst.add_items(sa, &[msg("user", "for a")]).await?;
    inst.add_items(sb, &[msg("user", "for b")]).await?;
    ensure!(contents(&inst.get_items(sa, None).await?) == ["for a"]);
    ensure!(contents(&inst.get_items(sb, None).await?) == ["for b"]);
    ensure!(inst.get_items(plain, None).await?.is_empty());
    inst.clear(sa).await?;
    ensure!(contents(&inst.get_items(sb, None).await?) == ["for b"]);
    for e in traffic.exchanges() {
        for w in e.json().as_array().cloned().unwrap_or_default() {
            let key = w["key"].as_str().unwrap_or_default();
            ensure!(
                key.starts_with("tenant-a:") || key.starts_with("tenant-b:"),
                "unprefixed key {key}"
            );
        }
    }
    ensure!(
        ctx.backend
            .get_bytes(&ctx.probe_key(&format!("tenant-b:{id}")))
            .await?
            .is_some()
    );
    Ok(())
}

/// Session ids with characters that mean something in URLs or to Dapr are stored under
/// exactly the right key, and stay isolated from each other.
pub async fn keys_with_reserved_characters(ctx: Ctx) -> CaseResult {
    let base = ctx.id("chars");
    let ids: Vec<String> = [
        "a/b",
        "a%2Fb",
        "..",
        ".",
        "x?y=1",
        "x#frag",
        "sp ace",
        "plus+sign",
        "ünï©ødé",
        "semi;colon",
        "amp&",
        "back\\slash",
        "quote\"",
        "tab\tless",
    ]
    .iter()
    .map(|s| format!("{base}-{s}"))
    .filter(|s| !s.contains('\t'))
    .collect();
    let mut inst = ctx.instance().await?;
    for id in &ids {
        let s = ctx.open(&mut inst, id).await?;
        inst.add_items(s, &[msg("user", id)]).await?;
    }
    for id in &ids {
        let s = ctx.open(&mut inst, id).await?;
        ensure!(
            contents(&inst.get_items(s, None).await?) == [id.clone()],
            "{id}"
        );
        let raw = ctx.backend.get_bytes(&ctx.probe_key(id)).await?;
        ensure!(
            raw.is_some(),
            "nothing stored under the exact key for {id:?}"
        );
    }
    Ok(())
}

/// Request counts of the upstream layout: one read and one write for an add (plus the
/// metadata read and write), one read for a get.
pub async fn add_items_round_trips(ctx: Ctx) -> CaseResult {
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &ctx.id("trips")).await?;
    inst.add_items(s, &[msg("user", "a")]).await?;
    ensure!(
        traffic.requests() == 4,
        "add: {} requests",
        traffic.requests()
    );
    traffic.clear();
    inst.get_items(s, Some(1)).await?;
    ensure!(
        traffic.requests() == 1,
        "get: {} requests",
        traffic.requests()
    );
    let _: Value = Value::Null;
    Ok(())
}
