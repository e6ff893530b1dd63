//! Answers the sidecar should never give: random statuses and bodies near what each layout
//! stores (heads and chunks of the log layout, 0.1.0's pages, recent keys and item keys, the
//! compat arrays and metadata), damaged. Every call returns a value or a typed error, never
//! traps, and never steers a request to another session's key.

use std::collections::BTreeMap;

use anyhow::{Context as _, ensure};
use dapr_session_host_tests::host::{
    BeforeSend, Exchange, Hooks, InstanceOptions, Synthetic, Traffic,
};
use serde_json::{Value, json};

use super::bad_input::only_own_keys;
use super::{contents, msg};
use crate::harness::{CaseResult, Ctx};

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
    let base = key
        .rsplit_once(":c:")
        .map_or(key.trim_end_matches(":head"), |(b, _)| b);
    if key.ends_with(":head") && rng.chance(3) {
        // 0.1.0's head (format 1), read and migrated.
        let mut levels = vec![Value::Array(entries(rng))];
        if rng.chance(3) {
            levels.push(Value::Array(entries(rng)));
        }
        let mut head = json!({
            "v": *rng.pick(&[1, 1, 1, 0, 3]),
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
            head["t"] = json!([format!("{base}:i:{}:0", rng.nonce())]);
        }
        head
    } else if key.ends_with(":head") {
        // Format 2: chunk references, the tail, operation ids, trash.
        let chunks: Vec<Value> = (0..rng.below(4))
            .map(|_| {
                // Mostly references a writer could make (skip + live within total), some
                // claiming huge counts; the rest anything.
                let expires = if rng.chance(2) {
                    Value::Null
                } else {
                    json!(1_700_000_000_000u64)
                };
                let (total, skip, live) = match rng.below(4) {
                    0 => (json!(3), json!(0), json!(3)),
                    1 => (json!(5), json!(1), json!(2)),
                    2 => {
                        let n = *rng.pick(&[u64::MAX / 4, 1 << 40, u64::from(u32::MAX) + 1]);
                        (json!(n), json!(0), json!(n))
                    }
                    _ => {
                        let [t, s, l] = [rng.count(), rng.count(), rng.count()];
                        return json!([rng.nonce(), t, s, l, rng.count(), rng.below(4), expires]);
                    }
                };
                json!([rng.nonce(), total, skip, live, 100, rng.below(3), expires])
            })
            .collect();
        let mut head = json!({
            "v": *rng.pick(&[2, 2, 2, 2, 1, 3]),
            "g": rng.nonce(),
            "s": if rng.chance(4) { rng.count() } else { json!(7) },
            "c": 1_700_000_000_000u64,
            "u": 1_700_000_000_000u64,
            "k": chunks,
            "n": items(rng),
            "o": [format!("{}.0", rng.nonce())],
        });
        if rng.chance(4) {
            head["t"] = json!([format!("{base}:c:{}", rng.nonce())]);
        }
        if rng.chance(8) {
            head["n"] = json!([{"role": "user"}]);
        }
        if rng.chance(8) {
            head["m"] = json!(format!("v1.{}", rng.below(9)));
        }
        head
    } else if key.contains(":c:") {
        // A chunk: an array of item texts, of any length.
        let mut v: Vec<Value> = items(rng).into_iter().map(Value::String).collect();
        if rng.chance(4) {
            v.push(json!(7));
        }
        Value::Array(v)
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
