//! The Session contract: the upstream `DaprSession` tests, rewritten for the WIT interface.

use anyhow::ensure;
use dapr_session_host_tests::host::SessionError;
use serde_json::json;

use super::{contents, messages, msg, session_error};
use crate::harness::{CaseResult, Ctx};

/// Upstream `test_dapr_session_direct_ops`.
pub async fn direct_ops(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("direct")).await?;
    inst.add_items(s, &[msg("user", "Hello"), msg("assistant", "Hi there!")])
        .await?;
    let items = inst.get_items(s, None).await?;
    ensure!(contents(&items) == ["Hello", "Hi there!"], "got {items:?}");
    let popped = inst.pop_item(s).await?;
    ensure!(
        popped.as_deref().map(|p| contents(&[p.to_string()]))
            == Some(vec!["Hi there!".to_string()])
    );
    ensure!(contents(&inst.get_items(s, None).await?) == ["Hello"]);
    inst.clear(s).await?;
    ensure!(inst.get_items(s, None).await?.is_empty());
    Ok(())
}

/// Upstream `test_runner_integration`: what one turn stored is the next turn's input.
pub async fn history_feeds_the_next_turn(ctx: Ctx) -> CaseResult {
    let id = ctx.id("turns");
    let mut turn1 = ctx.instance().await?;
    let s = ctx.open(&mut turn1, &id).await?;
    ensure!(turn1.get_items(s, None).await?.is_empty());
    turn1
        .add_items(
            s,
            &[
                msg("user", "What city is the Golden Gate Bridge in?"),
                msg("assistant", "San Francisco"),
            ],
        )
        .await?;

    // The second turn runs in another instance, as another replica would.
    let mut turn2 = ctx.instance().await?;
    let s2 = ctx.open(&mut turn2, &id).await?;
    let history = turn2.get_items(s2, None).await?;
    ensure!(
        history.len() == 2 && contents(&history)[0].contains("Golden Gate"),
        "{history:?}"
    );
    turn2
        .add_items(
            s2,
            &[
                msg("user", "What state is it in?"),
                msg("assistant", "California"),
            ],
        )
        .await?;
    let all = contents(&turn1.get_items(s, None).await?);
    ensure!(
        all == [
            "What city is the Golden Gate Bridge in?",
            "San Francisco",
            "What state is it in?",
            "California"
        ],
        "{all:?}"
    );
    Ok(())
}

/// Upstream `test_session_isolation`.
pub async fn session_isolation(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let a = ctx.open(&mut inst, &ctx.id("cats")).await?;
    let b = ctx.open(&mut inst, &ctx.id("dogs")).await?;
    inst.add_items(a, &[msg("user", "I like cats")]).await?;
    inst.add_items(b, &[msg("user", "I like dogs")]).await?;
    ensure!(contents(&inst.get_items(a, None).await?) == ["I like cats"]);
    ensure!(contents(&inst.get_items(b, None).await?) == ["I like dogs"]);
    inst.clear(a).await?;
    ensure!(inst.get_items(a, None).await?.is_empty());
    ensure!(contents(&inst.get_items(b, None).await?) == ["I like dogs"]);
    Ok(())
}

/// Upstream `test_get_items_with_limit`.
pub async fn get_items_with_limit(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("limit")).await?;
    inst.add_items(s, &messages("m", 4)).await?;
    ensure!(contents(&inst.get_items(s, Some(2)).await?) == ["m 2", "m 3"]);
    ensure!(inst.get_items(s, None).await?.len() == 4);
    ensure!(inst.get_items(s, Some(10)).await?.len() == 4);
    ensure!(inst.get_items(s, Some(0)).await?.is_empty());
    ensure!(contents(&inst.get_items(s, Some(1)).await?) == ["m 3"]);
    Ok(())
}

/// Upstream `test_pop_from_empty_session`.
pub async fn pop_from_empty_session(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("empty")).await?;
    ensure!(inst.pop_item(s).await?.is_none());
    inst.add_items(s, &[msg("user", "only")]).await?;
    ensure!(inst.pop_item(s).await?.is_some());
    ensure!(inst.pop_item(s).await?.is_none());
    Ok(())
}

/// Upstream `test_get_items_limit_returns_fewer_when_history_exhausted`.
pub async fn limit_returns_fewer_when_history_exhausted(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("fewer")).await?;
    inst.add_items(s, &[msg("user", "one")]).await?;
    ensure!(contents(&inst.get_items(s, Some(5)).await?) == ["one"]);
    Ok(())
}

/// Upstream `test_add_empty_items_list`: a no-op that sends nothing.
pub async fn add_empty_batch_is_a_noop(ctx: Ctx) -> CaseResult {
    let traffic = dapr_session_host_tests::host::Traffic::default();
    let mut inst = ctx
        .instance_with(dapr_session_host_tests::host::InstanceOptions {
            hooks: dapr_session_host_tests::host::Hooks {
                traffic: Some(traffic.clone()),
                before_send: None,
                pool: None,
            },
            ..Default::default()
        })
        .await?;
    let s = ctx.open(&mut inst, &ctx.id("noop")).await?;
    inst.add_items(s, &[]).await?;
    ensure!(
        traffic.requests() == 0,
        "an empty batch sent {} requests",
        traffic.requests()
    );
    ensure!(inst.get_items(s, None).await?.is_empty());
    Ok(())
}

/// Upstream `test_unicode_content`.
pub async fn unicode_content(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("unicode")).await?;
    let texts = [
        "こんにちは",
        "😊👍",
        "Привет",
        "مرحبا",
        "e\u{301}",
        "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
    ];
    let items: Vec<String> = texts.iter().map(|t| msg("user", t)).collect();
    inst.add_items(s, &items).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == texts);
    Ok(())
}

/// Upstream `test_special_characters_and_json_safety`.
pub async fn special_characters_and_json_safety(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("special")).await?;
    let texts = [
        "O'Reilly",
        r#"{"nested": "json"}"#,
        r#"Quote: "Hello""#,
        "Line1\nLine2\tTabbed",
        "<script>alert('x')</script> & more",
        "\u{2028}\u{2029}",
    ];
    let items: Vec<String> = texts.iter().map(|t| msg("user", t)).collect();
    inst.add_items(s, &items).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == texts);
    Ok(())
}

/// Upstream `test_data_integrity_with_problematic_strings`.
pub async fn problematic_strings_round_trip(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("problem")).await?;
    let texts = [
        "'; DROP TABLE sessions; --",
        r"\n\t\r literal backslashes \\",
        "null",
        "[]",
        "\u{0}\u{1}\u{1f}",
        "{\"a\":",
    ];
    let items: Vec<String> = texts.iter().map(|t| msg("user", t)).collect();
    inst.add_items(s, &items).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == texts);
    Ok(())
}

/// `limit = 2^32 - 1` (and the SDK's `2^31 - 1`) works and returns everything.
pub async fn huge_limit_is_fine(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("huge")).await?;
    inst.add_items(s, &messages("m", 3)).await?;
    ensure!(inst.get_items(s, Some(u32::MAX)).await?.len() == 3);
    ensure!(inst.get_items(s, Some(2_147_483_647)).await?.len() == 3);
    Ok(())
}

/// Upstream `test_get_items_uses_session_settings_limit`: `default-limit` applies to `none`.
pub async fn default_limit_from_config(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let mut config = ctx.config();
    config.default_limit = Some(3);
    let s = inst.open(&ctx.id("default-limit"), &config).await?;
    inst.add_items(s, &messages("Message", 5)).await?;
    ensure!(contents(&inst.get_items(s, None).await?) == ["Message 2", "Message 3", "Message 4"]);
    Ok(())
}

/// Upstream `test_get_items_explicit_limit_overrides_session_settings`.
pub async fn explicit_limit_overrides_default(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let mut config = ctx.config();
    config.default_limit = Some(5);
    let s = inst.open(&ctx.id("override"), &config).await?;
    inst.add_items(s, &messages("Message", 10)).await?;
    ensure!(contents(&inst.get_items(s, Some(2)).await?) == ["Message 8", "Message 9"]);
    ensure!(inst.get_items(s, Some(0)).await?.is_empty());
    Ok(())
}

/// Upstream lifecycle tests: once closed (dropped), a handle cannot be used; the data stays.
pub async fn closed_handle_cannot_be_used(ctx: Ctx) -> CaseResult {
    let id = ctx.id("closed");
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "kept")]).await?;
    inst.close(s).await?;
    let after = inst.get_items(s, None).await;
    ensure!(
        matches!(after, Err(ref e) if e.session().is_none()),
        "a closed handle answered: {after:?}"
    );
    let mut other = ctx.instance().await?;
    let s2 = ctx.open(&mut other, &id).await?;
    ensure!(contents(&other.get_items(s2, None).await?) == ["kept"]);
    Ok(())
}

/// Upstream `test_dapr_session_close_is_noop_for_injected_client`: another instance on the
/// same id sees both instances' items.
pub async fn other_instance_sees_items(ctx: Ctx) -> CaseResult {
    let id = ctx.id("shared");
    let mut a = ctx.instance().await?;
    let mut b = ctx.instance().await?;
    let sa = ctx.open(&mut a, &id).await?;
    let sb = ctx.open(&mut b, &id).await?;
    a.add_items(sa, &[msg("user", "from a")]).await?;
    b.add_items(sb, &[msg("assistant", "from b")]).await?;
    ensure!(contents(&a.get_items(sa, None).await?) == ["from a", "from b"]);
    ensure!(a.id(sa).await? == id);
    Ok(())
}

/// 1 MiB items go in and come back intact.
pub async fn large_items(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("large")).await?;
    let big: String = "xyz€😊".chars().cycle().take(1 << 19).collect();
    let item = msg("user", &big);
    ensure!(item.len() >= 1 << 20, "item is {} bytes", item.len());
    inst.add_items(s, &[item.clone(), msg("assistant", "small")])
        .await?;
    let got = inst.get_items(s, None).await?;
    ensure!(
        got.len() == 2 && got[0] == item,
        "the 1 MiB item did not round-trip"
    );
    ensure!(inst.pop_item(s).await?.is_some());
    ensure!(inst.pop_item(s).await?.as_deref() == Some(item.as_str()));
    Ok(())
}

/// Items come back exactly as they were given (key order, spacing, numbers, escapes).
pub async fn items_come_back_byte_for_byte(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("exact")).await?;
    let items = vec![
        r#"{"z":1,"a":2,"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}"#.to_string(),
        r#"{"type":"function_call","call_id":"c1","name":"f","arguments":"{\"x\":1.000000001,\"big\":12345678901234567890}"}"#.to_string(),
        r#"{"n":1e400000000,"f":0.1,"i":-0,"u":"\u00e9\ud83d\ude00"}"#.to_string(),
    ];
    // The third is not valid JSON for serde (number out of range) only if parsed as f64; we
    // keep text, so it must be accepted if it is syntactically JSON.
    match inst.add_items(s, &items).await {
        Ok(()) => {
            ensure!(inst.get_items(s, None).await? == items);
        }
        Err(e) => {
            // serde_json rejects out-of-range numbers; then nothing may have been written.
            let err = e.session().cloned();
            ensure!(
                matches!(err, Some(SessionError::InvalidInput(ref ii)) if ii.item_index == Some(2)),
                "{e}"
            );
            ensure!(inst.get_items(s, None).await?.is_empty());
            inst.add_items(s, &items[..2]).await?;
            ensure!(inst.get_items(s, None).await? == items[..2]);
        }
    }
    // Surrounding whitespace is trimmed; the object itself is kept verbatim.
    inst.clear(s).await?;
    inst.add_items(s, &[" \n{ \"role\" : \"user\" }\t".to_string()])
        .await?;
    ensure!(inst.get_items(s, None).await? == [r#"{ "role" : "user" }"#]);
    Ok(())
}

/// Not JSON, or JSON that is not an object, is refused with the item's index; nothing of
/// the batch is written.
pub async fn invalid_items_are_rejected_with_index(ctx: Ctx) -> CaseResult {
    let mut inst = ctx.instance().await?;
    let s = ctx.open(&mut inst, &ctx.id("invalid")).await?;
    inst.add_items(s, &[msg("user", "before")]).await?;
    let cases = [
        ("not json", 1),
        ("[1,2]", 1),
        ("\"a string\"", 1),
        ("42", 1),
        ("null", 1),
        ("{\"a\":1} {\"b\":2}", 1),
        ("", 1),
        ("{\"unterminated\": ", 1),
    ];
    for (bad, index) in cases {
        let batch = vec![msg("user", "ok"), bad.to_string(), msg("user", "also ok")];
        let err = session_error(inst.add_items(s, &batch).await)?;
        match err {
            SessionError::InvalidInput(ii) => {
                ensure!(
                    ii.item_index == Some(index),
                    "{bad:?}: index {:?}",
                    ii.item_index
                );
                ensure!(!ii.message.is_empty());
            }
            other => anyhow::bail!("{bad:?}: expected invalid-input, got {other:?}"),
        }
    }
    // Deeply nested JSON is refused cleanly, not by overflowing a stack.
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    ensure!(matches!(
        session_error(inst.add_items(s, &[deep]).await)?,
        SessionError::InvalidInput(_)
    ));
    ensure!(contents(&inst.get_items(s, None).await?) == ["before"]);
    let _ = json!({});
    Ok(())
}
