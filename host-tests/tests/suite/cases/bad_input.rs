//! Bad input from the caller: items that are not JSON objects, oversized items and batches,
//! session ids and key prefixes that mean something to URLs, to Dapr or to the key scheme.
//!
//! Every case checks three things beyond the result itself: nothing reaches the sidecar when
//! the input is refused (the instance's traffic is recorded), every key the component touches
//! belongs to the session that touched it (exactly one of the layout's key forms under its
//! base), and nothing already stored changes (raw store values compared before and after).

use std::collections::BTreeMap;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::{Exchange, Layout, SessionError, Traffic};

use super::{contents, messages, msg, session_error, traced};
use crate::backend::Kind;
use crate::harness::{CaseResult, Ctx};

/// Decodes `%XX` escapes (and nothing else: a `+` stays a `+`).
pub fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).context("truncated % escape")?;
            out.push(u8::from_str_radix(hex, 16).context("bad % escape")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// Every state key a request names, in its path or its body. Fails on a state request whose
/// path is not `/v1.0/state/{store}`, `.../bulk`, `.../transaction` or `.../{one segment}`.
pub fn touched_keys(ex: &Exchange, store: &str) -> anyhow::Result<Vec<String>> {
    let path = ex.path_and_query();
    let Some(rest) = path.strip_prefix(&format!("/v1.0/state/{store}")) else {
        ensure!(
            path == "/v1.0/metadata" || path == "/v1.0/healthz",
            "request to an unexpected path: {} {path}",
            ex.method
        );
        return Ok(Vec::new());
    };
    let (rest, _query) = rest.split_once('?').unwrap_or((rest, ""));
    // Typed, so that values the component passes through verbatim (a stored entry with a lone
    // surrogate escape, say) do not stop the keys from being read.
    #[derive(serde::Deserialize)]
    struct Keyed {
        key: String,
    }
    #[derive(serde::Deserialize)]
    struct Bulk {
        keys: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Op {
        request: Keyed,
    }
    #[derive(serde::Deserialize)]
    struct Transaction {
        operations: Vec<Op>,
    }
    let what = || {
        format!(
            "unexpected body: {} {path} {:?}",
            ex.method,
            String::from_utf8_lossy(&ex.body)
                .chars()
                .take(200)
                .collect::<String>()
        )
    };
    Ok(match rest {
        "" => serde_json::from_slice::<Vec<Keyed>>(&ex.body)
            .with_context(what)?
            .into_iter()
            .map(|k| k.key)
            .collect(),
        "/bulk" => {
            serde_json::from_slice::<Bulk>(&ex.body)
                .with_context(what)?
                .keys
        }
        "/transaction" => serde_json::from_slice::<Transaction>(&ex.body)
            .with_context(what)?
            .operations
            .into_iter()
            .map(|o| o.request.key)
            .collect(),
        segment => {
            let segment = segment
                .strip_prefix('/')
                .context("state path without '/'")?;
            ensure!(
                !segment.contains(['/', '#', ' ']),
                "a key escaped its path segment: {path}"
            );
            vec![percent_decode(segment)?]
        }
    })
}

/// A nonce as the component makes them: 12 characters of `[0-9a-z]`.
pub fn is_nonce(s: &str) -> bool {
    s.len() == 12
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Whether `key` is one of the keys session `base` (prefix included) may have in `layout`:
/// `{base}:head` and `{base}:c:{nonce}` (log, format 2), the 0.1.0 keys a first write
/// migrates and deletes, `{base}:r`, `{base}:p:{nonce}` and `{base}:i:{nonce}:{n}` (log,
/// format 1), or `{base}:messages`, `{base}:metadata` (compat). A key of another session never
/// matches, even one whose id extends `base` (`{base}:head:head` is not a key of `base`).
pub fn belongs(key: &str, base: &str, layout: Layout) -> bool {
    let Some(rest) = key.strip_prefix(base).and_then(|r| r.strip_prefix(':')) else {
        return false;
    };
    match layout {
        Layout::Log => {
            rest == "head"
                || rest.strip_prefix("c:").is_some_and(is_nonce)
                || rest == "r"
                || rest.strip_prefix("p:").is_some_and(is_nonce)
                || rest
                    .strip_prefix("i:")
                    .and_then(|r| r.split_once(':'))
                    .is_some_and(|(n, i)| {
                        is_nonce(n) && !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())
                    })
        }
        Layout::Compat => rest == "messages" || rest == "metadata",
    }
}

/// Fails unless every key `traffic` touched belongs to session `base`.
pub fn only_own_keys(ctx: &Ctx, traffic: &Traffic, base: &str) -> CaseResult {
    for ex in traffic.exchanges() {
        for key in touched_keys(&ex, &ctx.backend.store)? {
            ensure!(
                belongs(&key, base, ctx.layout),
                "session {base:?} touched key {key:?} ({} {})",
                ex.method,
                ex.path_and_query()
            );
        }
    }
    Ok(())
}

/// The state requests `traffic` holds (not healthz / metadata).
pub fn state_requests(traffic: &Traffic) -> Vec<String> {
    traffic
        .exchanges()
        .iter()
        .filter(|e| e.path_and_query().starts_with("/v1.0/state/"))
        .map(|e| format!("{} {}", e.method, e.path_and_query()))
        .collect()
}

/// Every key under `prefix` and its raw value, read below and through Dapr's API.
pub async fn snapshot(ctx: &Ctx, prefix: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for key in ctx.backend.keys(prefix).await? {
        if let Some(v) = ctx.backend.get_bytes(&key).await? {
            out.insert(key, v);
        }
    }
    Ok(out)
}

/// Fails unless `after` holds every key of `before` with the same bytes.
pub fn unchanged(
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
    what: &str,
) -> CaseResult {
    for (k, v) in before {
        let now = after.get(k);
        ensure!(
            now == Some(v),
            "{what}: {k} changed from {:?} to {:?}",
            preview(v),
            now.map(|n| preview(n))
        );
    }
    Ok(())
}

fn preview(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(120).collect()
}

/// daprd's answer to a request body over its `--max-body-size` (4 MiB by default): a 400, or,
/// when it closes the connection before the body is sent, a broken request (`unavailable`).
fn body_too_large(err: &SessionError) -> bool {
    matches!(err, SessionError::Store(e)
        if e.status == 400 && e.error_code == "ERR_MALFORMED_REQUEST" && e.message.contains("too large"))
        || matches!(err, SessionError::Unavailable(_))
}

fn invalid_at(err: &SessionError) -> Option<Option<u32>> {
    match err {
        SessionError::InvalidInput(ii) if !ii.message.is_empty() => Some(ii.item_index),
        _ => None,
    }
}

/// Items that are not one JSON object are `invalid-input` naming their index; nothing is sent
/// to the sidecar and nothing stored changes.
pub async fn rejected_items_send_nothing(ctx: Ctx) -> CaseResult {
    let id = ctx.id("bad-items");
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &messages("before", 3)).await?;
    let before = snapshot(&ctx, &format!("{id}:")).await?;
    ensure!(!before.is_empty());
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(129), "]".repeat(129));
    let bad: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("whitespace", " \n\t ".into()),
        ("not json", "hello".into()),
        ("python repr", "{'role': 'user'}".into()),
        ("unquoted key", "{role:\"user\"}".into()),
        ("trailing comma", "{\"a\":1,}".into()),
        ("truncated", "{\"a\":".into()),
        ("two objects", "{} {}".into()),
        ("trailing garbage", "{\"a\":1}x".into()),
        ("array", "[{\"role\":\"user\"}]".into()),
        ("empty array", "[]".into()),
        ("string", "\"{\\\"a\\\":1}\"".into()),
        ("number", "42".into()),
        ("float", "-1.5e300".into()),
        ("null", "null".into()),
        ("true", "true".into()),
        ("NaN", "{\"a\":NaN}".into()),
        ("byte order mark", "\u{feff}{\"a\":1}".into()),
        ("raw newline in string", "{\"a\":\"x\ny\"}".into()),
        ("raw NUL in string", "{\"a\":\"x\0y\"}".into()),
        ("NUL after object", "{\"a\":1}\0".into()),
        ("bad escape", "{\"a\":\"\\x41\"}".into()),
        ("short unicode escape", "{\"a\":\"\\ud80\"}".into()),
        ("non-hex unicode escape", "{\"a\":\"\\uZZZZ\"}".into()),
        ("nested too deep", deep),
        ("unterminated string", "{\"a\":\"x}".into()),
    ];
    for (what, item) in &bad {
        traffic.clear();
        let batch = vec![msg("user", "ok"), item.clone(), msg("user", "also ok")];
        let err = session_error(inst.add_items(s, &batch).await)?;
        ensure!(
            invalid_at(&err) == Some(Some(1)),
            "{what}: expected invalid-input at item 1, got {err:?}"
        );
        ensure!(
            traffic.requests() == 0,
            "{what}: refused, yet sent {:?}",
            state_requests(&traffic)
        );
        // Alone, at index 0.
        let err = session_error(inst.add_items(s, std::slice::from_ref(item)).await)?;
        ensure!(invalid_at(&err) == Some(Some(0)), "{what} alone: {err:?}");
        ensure!(traffic.requests() == 0, "{what}: sent a request");
    }
    ensure!(
        contents(&inst.get_items(s, None).await?) == ["before 0", "before 1", "before 2"],
        "the stored items changed"
    );
    unchanged(
        &before,
        &snapshot(&ctx, &format!("{id}:")).await?,
        "bad items",
    )?;
    Ok(())
}

/// Invalid UTF-8 cannot reach the component: a WIT `string` is UTF-8 by type (the host passes
/// `&str`, and the canonical ABI validates strings lifted from another component's memory).
/// The closest thing JSON can carry is an escaped lone surrogate (`"\ud800"`): syntactically
/// valid JSON, so it is accepted, stored and returned byte for byte, also by a fresh instance
/// after it has left the head's tail and been spilled into a page.
pub async fn lone_surrogate_escapes_round_trip(ctx: Ctx) -> CaseResult {
    let id = ctx.id("surrogates");
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &id).await?;
    let odd = vec![
        r#"{"role":"user","content":"lone high \ud800"}"#.to_string(),
        r#"{"role":"user","content":"lone low \udfff"}"#.to_string(),
        r#"{"role":"user","content":"reversed pair \ude00\ud83d"}"#.to_string(),
        r#"{"role":"user","content":"high then text \ud83dx"}"#.to_string(),
        r#"{"\ud800key":"surrogate in a key","nul":"\u0000","max":"\uffff"}"#.to_string(),
    ];
    inst.add_items(s, &odd).await?;
    ensure!(inst.get_items(s, None).await? == odd);
    // Push them out of the log layout's tail (24 items) and through a page spill.
    for i in 0..70 {
        inst.add_items(s, &[msg("user", &format!("filler {i}"))])
            .await?;
    }
    let mut fresh = ctx.instance().await?;
    let f = ctx.open(&mut fresh, &id).await?;
    let all = fresh.get_items(f, None).await?;
    ensure!(all.len() == 75, "{} items", all.len());
    ensure!(all[..5] == odd[..], "read back: {:?}", &all[..5]);
    // What is stored is the escape itself, not a replacement character.
    let stored: Vec<u8> = snapshot(&ctx, &format!("{id}:"))
        .await?
        .into_values()
        .flatten()
        .collect();
    let stored = String::from_utf8_lossy(&stored);
    ensure!(
        stored.contains(r"\\ud800") && !stored.contains('\u{fffd}'),
        "the escape did not survive in the store"
    );
    only_own_keys(&ctx, &traffic, &id)?;
    Ok(())
}

/// A 10 MiB item. The log layout refuses an item that cannot travel in one request to the
/// sidecar (`invalid-input` with its index, nothing sent); the compat layout sends it, and the
/// store either keeps it (test server) or daprd refuses the request body (4 MiB limit) with a
/// typed error. Either way the items stored before are intact, and the largest item the log
/// layout accepts round-trips byte for byte on every backend.
pub async fn ten_mib_item(ctx: Ctx) -> CaseResult {
    let id = ctx.id("10mib");
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &messages("before", 2)).await?;
    let before = snapshot(&ctx, &format!("{id}:")).await?;
    let big_text: String = "abcdéf😊\"\\".chars().cycle().take(10 << 20).collect();
    let big = msg("user", &big_text);
    ensure!(big.len() >= 10 << 20);
    traffic.clear();
    let result = inst
        .add_items(s, &[msg("user", "small"), big.clone()])
        .await;
    match ctx.layout {
        Layout::Log => {
            let err = session_error(result)?;
            ensure!(invalid_at(&err) == Some(Some(1)), "{err:?}");
            ensure!(
                traffic.requests() == 0,
                "sent {:?}",
                state_requests(&traffic)
            );
        }
        Layout::Compat => match ctx.backend.kind {
            Kind::TestServer => {
                result.map_err(|e| anyhow::anyhow!("the test server has no body limit: {e}"))?;
                let got = inst.get_items(s, None).await?;
                ensure!(got.len() == 4 && got[3] == big, "not read back");
                ensure!(inst.pop_item(s).await?.as_deref() == Some(big.as_str()));
                ensure!(inst.pop_item(s).await?.is_some());
            }
            Kind::DaprdRedis | Kind::DaprdSqlite | Kind::DaprdPostgres => {
                let err = session_error(result)?;
                ensure!(body_too_large(&err), "{err:?}");
            }
        },
    }
    ensure!(contents(&inst.get_items(s, None).await?) == ["before 0", "before 1"]);
    if ctx.layout == Layout::Log || ctx.backend.kind != Kind::TestServer {
        unchanged(&before, &snapshot(&ctx, &format!("{id}:")).await?, "10 MiB")?;
    }
    only_own_keys(&ctx, &traffic, &id)?;

    // The largest item one request carries (the log layout's limit is 4 MiB - 68 KiB for the
    // encoded item); 3.5 MiB of text with escapes round-trips from a fresh instance.
    let large_text: String = "xyz€\"😊".chars().cycle().take(1_572_864).collect();
    let large = msg("user", &large_text);
    let encoded = serde_json::to_string(&large)?.len();
    ensure!(
        encoded > 3 << 20 && encoded < (4 << 20) - (68 << 10),
        "{encoded}"
    );
    let id2 = ctx.id("large");
    let s2 = ctx.open(&mut inst, &id2).await?;
    inst.add_items(s2, std::slice::from_ref(&large)).await?;
    let mut fresh = ctx.instance().await?;
    let f = ctx.open(&mut fresh, &id2).await?;
    let got = fresh.get_items(f, None).await?;
    ensure!(
        got.len() == 1 && got[0] == large,
        "3.5 MiB item not read back"
    );
    ensure!(fresh.pop_item(f).await?.as_deref() == Some(large.as_str()));
    ensure!(fresh.get_items(f, None).await?.is_empty());
    Ok(())
}

/// One batch of 100,000 items is stored whole and counted, read back in order, from a fresh
/// instance, with limits and pops; or (daprd, compat: the array exceeds daprd's 4 MiB body
/// limit) refused with a typed error leaving the earlier items exactly as they were.
pub async fn hundred_thousand_item_batch(ctx: Ctx) -> CaseResult {
    const N: usize = 100_000;
    let id = ctx.id("100k");
    let (mut inst, traffic) = traced(&ctx).await?;
    let s = ctx.open(&mut inst, &id).await?;
    inst.add_items(s, &[msg("user", "first")]).await?;
    let before = snapshot(&ctx, &format!("{id}:")).await?;
    // About 40 bytes per stored entry: 4 MB in all, just over daprd's 4 MiB request limit for
    // the compat layout's single array.
    let batch: Vec<String> = (0..N)
        .map(|i| format!("{{\"role\":\"user\",\"content\":\"{i:06}\"}}"))
        .collect();
    let result = inst.add_items(s, &batch).await;
    let stored = match (ctx.layout, ctx.backend.kind) {
        (Layout::Compat, Kind::DaprdRedis | Kind::DaprdSqlite | Kind::DaprdPostgres) => {
            let err = session_error(result)?;
            ensure!(body_too_large(&err), "{err:?}");
            false
        }
        _ => {
            result?;
            true
        }
    };
    if !stored {
        ensure!(contents(&inst.get_items(s, None).await?) == ["first"]);
        unchanged(&before, &snapshot(&ctx, &format!("{id}:")).await?, "100k")?;
        return Ok(());
    }
    let mut fresh = ctx.instance().await?;
    let f = ctx.open(&mut fresh, &id).await?;
    let all = fresh.get_items(f, None).await?;
    ensure!(all.len() == N + 1, "{} items", all.len());
    ensure!(all[0] == msg("user", "first"));
    ensure!(
        all[1..] == batch[..],
        "the batch did not come back in order"
    );
    let last30 = fresh.get_items(f, Some(30)).await?;
    ensure!(last30[..] == batch[N - 30..]);
    ensure!(fresh.pop_item(f).await?.as_deref() == Some(batch[N - 1].as_str()));
    inst.add_items(s, &[msg("user", "after")]).await?;
    let tail = fresh.get_items(f, Some(2)).await?;
    ensure!(
        tail == [batch[N - 2].clone(), msg("user", "after")],
        "{tail:?}"
    );
    ensure!(fresh.get_items(f, None).await?.len() == N + 1);
    only_own_keys(&ctx, &traffic, &id)?;
    Ok(())
}

/// Empty and over-long ids, ids with `||` or control characters, and bad prefixes are
/// `invalid-input` at open: nothing is sent, not even by the calls that follow a refused open.
pub async fn refused_ids_and_prefixes_send_nothing(ctx: Ctx) -> CaseResult {
    let (mut inst, traffic) = traced(&ctx).await?;
    let config = ctx.config();
    let kib4 = "x".repeat(4096);
    let over = "y".repeat(513);
    let multibyte_over = "é".repeat(257); // 514 bytes, 257 characters
    for id in [
        "",
        kib4.as_str(),
        over.as_str(),
        multibyte_over.as_str(),
        "||",
        "a||b",
        "a|||b",
        "||head",
        "nul\0",
        "line\nbreak",
        "cr\r",
        "tab\t",
        "del\u{7f}",
        "nel\u{85}",
        "esc\u{1b}[31m",
    ] {
        let err = session_error(inst.open(id, &config).await)?;
        ensure!(
            invalid_at(&err) == Some(None),
            "id {:?}: {err:?}",
            id.chars().take(20).collect::<String>()
        );
    }
    let long_prefix = "p".repeat(129);
    for prefix in [
        "",
        "a:b",
        ":",
        "a:",
        "a||b",
        "||",
        "x\n",
        long_prefix.as_str(),
    ] {
        let mut c = config.clone();
        c.key_prefix = Some(prefix.into());
        let err = session_error(inst.open(&ctx.id("p"), &c).await)?;
        ensure!(invalid_at(&err) == Some(None), "prefix {prefix:?}: {err:?}");
    }
    ensure!(
        traffic.requests() == 0,
        "refused opens sent {:?}",
        state_requests(&traffic)
    );
    // The longest id (512 bytes) under the longest prefix (128 bytes) is stored under exactly
    // its key.
    let tag = ctx.id("max").replace(':', "_");
    let id: String = format!("{tag}-{}", "é".repeat(300))
        .char_indices()
        .take_while(|(i, c)| i + c.len_utf8() <= 512)
        .map(|(_, c)| c)
        .collect();
    ensure!(id.len() >= 511);
    let prefix: String = format!("{tag}{}", "q".repeat(128))
        .chars()
        .take(128)
        .collect();
    let mut c = config.clone();
    c.key_prefix = Some(prefix.clone());
    let s = inst.open(&id, &c).await?;
    inst.add_items(s, &[msg("user", "max")]).await?;
    let mut fresh = ctx.instance().await?;
    let f = fresh.open(&id, &c).await?;
    ensure!(contents(&fresh.get_items(f, None).await?) == ["max"]);
    let base = format!("{prefix}:{id}");
    ensure!(
        ctx.backend
            .get_bytes(&ctx.probe_key(&base))
            .await?
            .is_some()
    );
    only_own_keys(&ctx, &traffic, &base)?;
    Ok(())
}

/// Writes `"{label}"` to each session, each through its own traced instance, then reads every
/// session from a fresh instance: each must hold exactly its own item. Every key each
/// instance touched belongs to its own session.
async fn isolated(ctx: &Ctx, sessions: &[(String, Option<String>)]) -> CaseResult {
    for (id, prefix) in sessions {
        let (mut inst, traffic) = traced(ctx).await?;
        let mut c = ctx.config();
        c.key_prefix = prefix.clone();
        let s = inst.open(id, &c).await?;
        inst.add_items(s, &[msg("user", &label(id, prefix))])
            .await?;
        ensure!(inst.get_items(s, None).await?.len() == 1, "{id:?}");
        let base = prefix
            .as_ref()
            .map_or_else(|| id.clone(), |p| format!("{p}:{id}"));
        only_own_keys(ctx, &traffic, &base)?;
        ensure!(
            ctx.backend
                .get_bytes(&ctx.probe_key(&base))
                .await?
                .is_some(),
            "nothing stored under the exact key of {base:?}"
        );
    }
    let mut reader = ctx.instance().await?;
    for (id, prefix) in sessions {
        let mut c = ctx.config();
        c.key_prefix = prefix.clone();
        let s = reader.open(id, &c).await?;
        let got = contents(&reader.get_items(s, None).await?);
        ensure!(
            got == [label(id, prefix)],
            "session {id:?} (prefix {prefix:?}) holds {got:?}"
        );
    }
    Ok(())
}

fn label(id: &str, prefix: &Option<String>) -> String {
    format!("{prefix:?}/{id}")
}

/// Ids holding `|`, `/`, `..`, `%`, `?`, `#`, spaces, `:` and unicode (composed and decomposed
/// forms, bidi controls, line separators) are each their own session: requests name exactly
/// their keys, and reading any of them returns only its own item, also after another is
/// cleared.
pub async fn reserved_characters_isolate(ctx: Ctx) -> CaseResult {
    let base = ctx.id("ids");
    let odd = [
        "|",
        "a|b",
        "|a|",
        "a/b",
        "a//b",
        "/",
        "..",
        "../x",
        ".",
        "%",
        "%%",
        "%2F",
        "%2f",
        "%00",
        "%zz",
        "a%",
        "?",
        "x?y=1&z",
        "#",
        "x#frag",
        " ",
        "  ",
        "a b",
        "+",
        "a+b",
        "caf\u{e9}",
        "cafe\u{301}",
        "\u{202e}rtl",
        "line\u{2028}sep",
        "zero\u{200b}width",
        "\u{1f600}",
        "\u{fffd}",
        "x",
        "x:head",
        "x:i",
        "x:r",
        "x:p",
        "x:messages",
        "x:metadata",
        ":",
        "::",
        "x:",
        ":x",
        "\\",
        "\"",
        "'",
        "*",
        "[a]",
        "{}",
    ];
    let sessions: Vec<(String, Option<String>)> =
        odd.iter().map(|s| (format!("{base}-{s}"), None)).collect();
    isolated(&ctx, &sessions).await?;
    // Clearing one leaves every other one as it was.
    let mut inst = ctx.instance().await?;
    let cleared = &sessions[0].0;
    let s = ctx.open(&mut inst, cleared).await?;
    inst.clear(s).await?;
    ensure!(inst.get_items(s, None).await?.is_empty());
    for (id, prefix) in &sessions[1..] {
        let s = ctx.open(&mut inst, id).await?;
        ensure!(contents(&inst.get_items(s, None).await?) == [label(id, prefix)]);
    }
    Ok(())
}

/// The key scheme is `{prefix}:{id}:...`: a prefix holds no `:`, so the first `:` ends it and
/// prefixed tenants cannot collide (`a` + `b:c` and `a:b` + `c` cannot both exist: the second
/// prefix is refused). Near-misses (`ab` + `c`, `a|` + `|b`, ...) are distinct sessions. The
/// unprefixed namespace is not separate: id `a:b` without a prefix IS session `b` of tenant
/// `a` (same keys), as the README's key scheme says; checked here so that a change to it is
/// noticed.
pub async fn tenant_prefixes_cannot_collide(ctx: Ctx) -> CaseResult {
    let t = ctx.id("t").replace(':', "_");
    let a = format!("{t}a");
    let p = |s: &str| Some(s.to_string());
    let mut inst = ctx.instance().await?;
    let mut c = ctx.config();
    c.key_prefix = Some(format!("{a}:b"));
    let err = session_error(inst.open("c", &c).await)?;
    ensure!(invalid_at(&err) == Some(None), "{err:?}");

    let sessions: Vec<(String, Option<String>)> = vec![
        ("b:c".into(), p(&a)),
        ("b".into(), p(&a)),
        ("b:".into(), p(&a)),
        (":b".into(), p(&a)),
        ("c".into(), p(&format!("{a}b"))),
        ("bc".into(), p(&a)),
        ("|b".into(), p(&format!("{a}|"))),
        ("b".into(), p(&format!("{a}|"))),
        ("b".into(), p(&format!("{a}/"))),
        ("b".into(), p(&format!("{a}%3A"))),
        ("b".into(), p(&format!("{a} "))),
        (format!("{t}c"), None),
        (format!("{a}-b:c"), None),
    ];
    isolated(&ctx, &sessions).await?;

    // The documented overlap of the unprefixed namespace.
    let mut c = ctx.config();
    c.key_prefix = Some(a.clone());
    let tenant = inst.open("shared", &c).await?;
    inst.add_items(tenant, &[msg("user", "by tenant")]).await?;
    let plain = ctx.open(&mut inst, &format!("{a}:shared")).await?;
    ensure!(
        contents(&inst.get_items(plain, None).await?) == ["by tenant"],
        "an unprefixed id with ':' no longer aliases a prefixed session: update the README"
    );
    Ok(())
}
