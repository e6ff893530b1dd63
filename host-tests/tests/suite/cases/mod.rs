//! Every case of the behavioural suite, and the helpers they share.

mod bad_input;
mod chunks;
mod compaction;
mod concurrency;
mod config;
mod contract;
mod corrupt;
mod corrupt_chunk;
mod corrupt_head;
mod garbage;
mod legacy;
mod metadata;
mod retention;
mod scale;
mod stored;
mod stored_log;
mod ttl;
mod v010;
mod wire;
mod writers;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dapr_session_host_tests::host::{
    BeforeSend, CallResult, Exchange, Hooks, Instance, InstanceOptions, SessionError,
    SessionHandle, Traffic,
};
use serde_json::{Value, json};

use crate::backend::Kind;
use crate::case;
use crate::harness::{Case, Ctx};

/// The whole suite.
pub static ALL: &[Case] = &[
    // The upstream DaprSession tests, rewritten for the WIT interface.
    case!(contract::direct_ops),
    case!(contract::history_feeds_the_next_turn),
    case!(contract::session_isolation),
    case!(contract::get_items_with_limit),
    case!(contract::pop_from_empty_session),
    case!(contract::limit_returns_fewer_when_history_exhausted),
    case!(contract::add_empty_batch_is_a_noop),
    case!(contract::unicode_content),
    case!(contract::special_characters_and_json_safety),
    case!(contract::problematic_strings_round_trip),
    case!(contract::huge_limit_is_fine),
    case!(contract::default_limit_from_config),
    case!(contract::explicit_limit_overrides_default),
    case!(contract::closed_handle_cannot_be_used),
    case!(contract::other_instance_sees_items),
    case!(contract::large_items),
    case!(contract::items_come_back_byte_for_byte),
    case!(contract::invalid_items_are_rejected_with_index),
    case!(concurrency::add_retries_on_conflict, compat),
    case!(concurrency::pop_retries_on_conflict, compat),
    case!(concurrency::concurrent_adds_from_three_instances),
    case!(concurrency::two_instances_append_contiguous_batches),
    case!(concurrency::concurrent_pops_never_return_an_item_twice),
    case!(stored::limit_skips_corrupt_newest_entries, compat),
    case!(stored::pop_skips_corrupt_most_recent, compat),
    case!(
        stored::pop_returns_none_after_dropping_only_corrupt_entries,
        compat
    ),
    case!(stored::corrupt_aggregate_is_never_overwritten, compat),
    case!(stored::raw_bytes_aggregate_is_never_overwritten, compat),
    case!(stored::messages_not_a_list_read_as_empty, compat),
    case!(stored::already_deserialized_messages, compat),
    case!(stored::layout_matches_python, compat),
    case!(stored::python_written_items_are_read, compat),
    case!(metadata::created_at_kept_updated_at_advances),
    case!(metadata::metadata_creation_then_etag_guarded_update, compat),
    case!(
        metadata::stale_metadata_etag_retries_and_keeps_created_at,
        compat
    ),
    case!(metadata::add_survives_metadata_write_failing, compat),
    case!(metadata::clear_removes_metadata),
    case!(wire::ttl_and_consistency_on_the_wire),
    case!(wire::eventual_consistency_on_the_wire),
    case!(wire::ttl_expiry_observed),
    case!(wire::tenant_prefixes_isolate),
    case!(wire::keys_with_reserved_characters),
    case!(wire::add_items_round_trips, compat),
    case!(config::ping_ok),
    case!(config::ping_reports_unreachable_sidecar),
    case!(config::wrong_store_name),
    case!(config::api_token_accepted_and_refused),
    case!(config::api_token_from_environment),
    case!(config::endpoint_from_environment),
    case!(config::invalid_config_is_rejected),
    case!(config::invalid_session_ids_are_rejected),
    case!(config::unreachable_sidecar_is_unavailable),
    // The log layout: what it stores, costs, many writers, TTL.
    case!(chunks::log_layout_keys, log),
    case!(chunks::works_without_transactions, log, skip
        Kind::DaprdRedis => "runs its own non-transactional test server",
        Kind::DaprdSqlite => "runs its own non-transactional test server",
        Kind::DaprdPostgres => "runs its own non-transactional test server"),
    case!(chunks::reads_and_pops_across_chunks, log),
    case!(chunks::corrupt_head_is_never_overwritten, log),
    case!(scale::round_trips_per_operation, log),
    case!(scale::fresh_instance_per_operation, log),
    case!(scale::bytes_independent_of_history_length, log, skip
        Kind::DaprdRedis => "measured with the test server's byte counters",
        Kind::DaprdSqlite => "measured with the test server's byte counters",
        Kind::DaprdPostgres => "measured with the test server's byte counters"),
    case!(scale::compat_bytes_grow_with_history, compat, skip
        Kind::DaprdRedis => "measured with the test server's byte counters",
        Kind::DaprdSqlite => "measured with the test server's byte counters",
        Kind::DaprdPostgres => "measured with the test server's byte counters"),
    case!(scale::many_quick_operations),
    case!(writers::many_writers_keep_batches_contiguous, log),
    case!(writers::concurrent_pops_across_chunks, log),
    case!(writers::clear_racing_add_is_all_or_nothing, log),
    case!(writers::ambiguous_commit_is_not_applied_twice, log, skip
        Kind::DaprdRedis => "uses the test server's fault injection",
        Kind::DaprdSqlite => "uses the test server's fault injection",
        Kind::DaprdPostgres => "uses the test server's fault injection"),
    case!(ttl::ttl_slides_over_every_key, log),
    case!(ttl::ttl_slides_under_injected_delay, log, skip
        Kind::DaprdRedis => "uses the test server's fault injection",
        Kind::DaprdSqlite => "uses the test server's fault injection",
        Kind::DaprdPostgres => "uses the test server's fault injection"),
    // Bad input from the caller.
    case!(bad_input::rejected_items_send_nothing),
    case!(bad_input::lone_surrogate_escapes_round_trip),
    case!(bad_input::ten_mib_item),
    case!(bad_input::hundred_thousand_item_batch),
    case!(bad_input::refused_ids_and_prefixes_send_nothing),
    case!(bad_input::reserved_characters_isolate),
    case!(bad_input::tenant_prefixes_cannot_collide),
    // Corrupt stored data.
    case!(corrupt::main_key_not_json_or_wrong_kind),
    case!(corrupt_head::log_head_wrong_shapes, log),
    case!(corrupt_head::log_v1_head_wrong_shapes, log),
    case!(corrupt_head::log_head_claiming_too_many_items, log),
    case!(corrupt_head::log_trash_outside_the_session_is_refused, log),
    case!(
        corrupt_head::log_chunk_refs_naming_other_sessions_keys_are_refused,
        log
    ),
    case!(corrupt_chunk::log_head_points_at_missing_chunks, log),
    case!(corrupt_head::log_head_lists_chunks_never_written, log),
    case!(corrupt_chunk::log_chunk_corrupt, log),
    case!(corrupt_chunk::log_chunk_entries_corrupt, log),
    case!(corrupt::compat_mixed_entries, compat),
    case!(corrupt::compat_number_out_of_float_range, compat),
    case!(corrupt::compat_metadata_wrong_shapes, compat),
    case!(garbage::garbage_sidecar_answers_are_typed_errors),
    // Compaction (replace, replace-suffix) and retention (max-items).
    case!(compaction::suffix_replace_keeps_older_items_byte_for_byte),
    case!(compaction::replace_racing_an_append_lands_before_or_after),
    case!(compaction::conditional_replaces_racing_appends_lose_nothing),
    case!(compaction::unconditional_replaces_racing_appends_win_whole),
    case!(compaction::compat_replace_is_one_guarded_write, compat),
    case!(retention::max_items_bounds_every_write),
    case!(retention::max_items_under_concurrent_writers_keeps_storage_flat),
    // Sessions written by the 0.1.0 component.
    case!(legacy::small_session_migrates, log),
    case!(legacy::paged_session_migrates, log),
    case!(legacy::copies_disagreeing_with_the_head_are_ignored, log),
    case!(legacy::missing_and_corrupt_keys_are_skipped, log),
    case!(legacy::entries_naming_other_sessions_keys_are_refused, log),
    // Last, so that it runs alone at the end: 2,150 commits of the 0.1.0 component take over
    // a minute on daprd with SQLite.
    case!(legacy::two_level_session_migrates, log),
];

/// A new instance whose every exchange with the sidecar is recorded.
pub async fn traced(ctx: &Ctx) -> anyhow::Result<(Instance, Traffic)> {
    let traffic = Traffic::default();
    let inst = ctx
        .instance_with(InstanceOptions {
            hooks: Hooks {
                traffic: Some(traffic.clone()),
                ..Default::default()
            },
            ..Default::default()
        })
        .await?;
    Ok((inst, traffic))
}

/// An OpenAI Responses message item as JSON text.
pub fn msg(role: &str, content: &str) -> String {
    json!({"role": role, "content": content}).to_string()
}

/// `n` user messages `"{prefix} {i}"`.
pub fn messages(prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| msg("user", &format!("{prefix} {i}")))
        .collect()
}

/// A message whose stored text is about `bytes` long: `content` plus a `pad` field (so that
/// [`contents`] still reads `content`); a plain user message when `bytes` is that short.
pub fn padded(content: &str, bytes: usize) -> String {
    let plain = msg("user", content);
    let pad = bytes.saturating_sub(plain.len() + 9);
    if pad == 0 {
        return plain;
    }
    json!({"role": "user", "content": content, "pad": "p".repeat(pad)}).to_string()
}

/// Adds `batches` batches of `per` items named `{prefix} b{b} i{i}`, each about `bytes` long
/// ([`padded`]); returns them all, oldest first.
pub async fn fill(
    inst: &mut Instance,
    s: SessionHandle,
    prefix: &str,
    batches: usize,
    per: usize,
    bytes: usize,
) -> anyhow::Result<Vec<String>> {
    let mut all = Vec::with_capacity(batches * per);
    for b in 0..batches {
        let batch: Vec<String> = (0..per)
            .map(|i| padded(&format!("{prefix} b{b} i{i}"), bytes))
            .collect();
        inst.add_items(s, &batch).await?;
        all.extend(batch);
    }
    Ok(all)
}

/// The `content` of each item.
pub fn contents(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            serde_json::from_str::<Value>(i)
                .ok()
                .and_then(|v| {
                    v.get("content")
                        .and_then(|c| c.as_str())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| format!("<not a message: {i}>"))
        })
        .collect()
}

/// The session error of a failed call (fails the case if the call succeeded or trapped).
pub fn session_error<T: std::fmt::Debug>(r: CallResult<T>) -> anyhow::Result<SessionError> {
    match r {
        Err(e) => e
            .session()
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("expected a session error, got {e}")),
        Ok(v) => anyhow::bail!("expected an error, got Ok({v:?})"),
    }
}

/// A hook that, the first time the component saves `key`, first makes a competing
/// etag-guarded write that appends `competitor` (as a Python `DaprSession` would store it).
pub fn competing_append(ctx: &Ctx, key: &str, competitor: &str) -> BeforeSend {
    let http = ctx.http();
    let store = ctx.backend.store.clone();
    let key = key.to_string();
    let competitor = competitor.to_string();
    let fired = Arc::new(AtomicBool::new(false));
    Arc::new(move |ex: &Exchange| {
        let is_target = ex.method == "POST"
            && ex
                .path_and_query()
                .starts_with(&format!("/v1.0/state/{store}"))
            && !ex.path_and_query().contains("/bulk")
            && ex.json().as_array().is_some_and(|a| {
                a.iter()
                    .any(|w| w.get("key").and_then(Value::as_str) == Some(key.as_str()))
            });
        let go = is_target && !fired.swap(true, Ordering::SeqCst);
        let (http, store, key, competitor) =
            (http.clone(), store.clone(), key.clone(), competitor.clone());
        Box::pin(async move {
            if go {
                let current = http.get(&store, &key).await.ok()?;
                let etag = current.header("etag").map(str::to_string);
                let mut entries: Vec<Value> =
                    serde_json::from_slice(&current.body).unwrap_or_default();
                entries.push(Value::String(competitor));
                let body = serde_json::to_vec(&json!([{
                    "key": key, "value": entries, "etag": etag,
                    "options": {"concurrency": "first-write"}
                }]))
                .ok()?;
                let answer = http
                    .send(
                        http::Method::POST,
                        &format!("/v1.0/state/{store}"),
                        Some(body),
                        &[],
                    )
                    .await
                    .ok()?;
                assert!(
                    answer.status.is_success(),
                    "competing write failed: {answer:?}"
                );
            }
            None
        })
    })
}
