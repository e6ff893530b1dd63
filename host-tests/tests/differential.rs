//! The test server and a real daprd answer the same raw HTTP state requests the same way:
//! same status codes, same `errorCode`s, same JSON values.
//!
//! One scripted sequence (saves with and without etags, mismatched etags, missing keys, bulk,
//! transactions with a stale etag, TTL, a bad store name, a bad token, ...) runs against the
//! test server and against daprd with `state.in-memory` (the store the test server imitates)
//! and with `state.sqlite`; every answer is normalised (etag values and expiry times become
//! markers) and compared.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::HashMap;
use std::time::Duration;

use dapr_session_host_tests::client::{Answer, DaprHttp, encode};
use dapr_session_host_tests::dapr_server::{DaprServer, ServerConfig};
use dapr_session_host_tests::daprd::{self, ComponentSpec, Daprd, DaprdOptions};
use dapr_session_host_tests::process::TempDir;
use http::Method;
use serde_json::{Value, json};

const TOKEN: &str = "differential-token";
const STORE: &str = "statestore";

/// One request of the script. `{etag:K}` in a body or header is replaced by the etag the
/// last `GET K` of the same run returned.
struct Step {
    name: &'static str,
    method: Method,
    path: String,
    body: Option<String>,
    headers: Vec<(&'static str, String)>,
    token: Token,
    wait: Option<Duration>,
}

#[derive(Clone, Copy)]
enum Token {
    Right,
    Wrong,
    None,
}

fn step(name: &'static str, method: Method, path: &str, body: Option<Value>) -> Step {
    Step {
        name,
        method,
        path: path.to_string(),
        body: body.map(|b| b.to_string()),
        headers: Vec::new(),
        token: Token::Right,
        wait: None,
    }
}

fn get(name: &'static str, key: &str) -> Step {
    step(
        name,
        Method::GET,
        &format!("/v1.0/state/{STORE}/{}", encode(key)),
        None,
    )
}

fn save(name: &'static str, body: Value) -> Step {
    step(
        name,
        Method::POST,
        &format!("/v1.0/state/{STORE}"),
        Some(body),
    )
}

fn raw_save(name: &'static str, body: &str) -> Step {
    let mut s = save(name, Value::Null);
    s.body = Some(body.to_string());
    s
}

fn tx(name: &'static str, ops: Value) -> Step {
    step(
        name,
        Method::POST,
        &format!("/v1.0/state/{STORE}/transaction"),
        Some(json!({"operations": ops})),
    )
}

fn script() -> Vec<Step> {
    let mut s = vec![
        get("get missing key", "k1"),
        save(
            "save without etag",
            json!([{"key": "k1", "value": {"b": 1, "a": "x<y&z>", "n": 12345678901234567890u64, "f": 0.1}}]),
        ),
        get("get saved key", "k1"),
        save(
            "save with wrong etag",
            json!([{"key": "k1", "value": 2, "etag": "wrong", "options": {"concurrency": "first-write"}}]),
        ),
        save(
            "save with current etag",
            json!([{"key": "k1", "value": 2, "etag": "{etag:k1}", "options": {"concurrency": "first-write"}}]),
        ),
        get("get after guarded save", "k1"),
        save(
            "save with the old etag",
            json!([{"key": "k1", "value": 3, "etag": "{etag:k1-old}", "options": {"concurrency": "first-write"}}]),
        ),
        save(
            "first-write without etag on existing key",
            json!([{"key": "k1", "value": 4, "options": {"concurrency": "first-write"}}]),
        ),
        save(
            "etag for a missing key",
            json!([{"key": "k2", "value": 1, "etag": "1"}]),
        ),
        save(
            "last-write without etag",
            json!([{"key": "k1", "value": {"last": "write"}, "options": {"concurrency": "last-write"}}]),
        ),
        save(
            "multi-key save",
            json!([{"key": "k3", "value": "three"}, {"key": "k4", "value": [1, "four", null, true]}]),
        ),
        save("empty save", json!([])),
        step(
            "bulk get",
            Method::POST,
            &format!("/v1.0/state/{STORE}/bulk"),
            Some(json!({"keys": ["k1", "missing", "k3", "k4"], "parallelism": 4})),
        ),
        step(
            "bulk get of nothing",
            Method::POST,
            &format!("/v1.0/state/{STORE}/bulk"),
            Some(json!({"keys": []})),
        ),
        get("get before transaction", "k1"),
        tx(
            "transaction with a stale etag",
            json!([
                {"operation": "upsert", "request": {"key": "k5", "value": "five"}},
                {"operation": "upsert", "request": {"key": "k1", "value": "tx", "etag": "wrong"}},
            ]),
        ),
        get("transaction applied nothing", "k5"),
        tx(
            "transaction with current etag",
            json!([
                {"operation": "upsert", "request": {"key": "k5", "value": "five"}},
                {"operation": "delete", "request": {"key": "k3"}},
                {"operation": "upsert", "request": {"key": "k1", "value": "tx", "etag": "{etag:k1}"}},
            ]),
        ),
        get("transaction upserted", "k5"),
        get("transaction deleted", "k3"),
        get("transaction updated", "k1"),
        tx(
            "transaction with an unknown operation",
            json!([{"operation": "merge", "request": {"key": "k5"}}]),
        ),
        tx("empty transaction", json!([])),
        tx(
            "transaction deleting a missing key",
            json!([{"operation": "delete", "request": {"key": "never"}}]),
        ),
        save(
            "save with a TTL",
            json!([{"key": "k6", "value": "ttl", "metadata": {"ttlInSeconds": "60"}}]),
        ),
        get("get with a TTL", "k6"),
        save(
            "TTL that is not a number",
            json!([{"key": "k6", "value": 1, "metadata": {"ttlInSeconds": "soon"}}]),
        ),
        save(
            "TTL given as a JSON number",
            json!([{"key": "k6", "value": 1, "metadata": {"ttlInSeconds": 60}}]),
        ),
        save(
            "save with a 1 s TTL",
            json!([{"key": "k7", "value": "short", "metadata": {"ttlInSeconds": "1"}}]),
        ),
        save(
            "numeric etag",
            json!([{"key": "k1", "value": 1, "etag": 5}]),
        ),
        raw_save("body that is not JSON", "foobar"),
        raw_save("body that is an object", "{}"),
        save("item without a key", json!([{"value": 1}])),
        save(
            "unknown concurrency",
            json!([{"key": "k1", "value": 1, "options": {"concurrency": "bogus"}}]),
        ),
        step(
            "bulk with a bad body",
            Method::POST,
            &format!("/v1.0/state/{STORE}/bulk"),
            Some(json!("nope")),
        ),
        step(
            "get from an unknown store",
            Method::GET,
            "/v1.0/state/nostore/k1",
            None,
        ),
        step(
            "save to an unknown store",
            Method::POST,
            "/v1.0/state/nostore",
            Some(json!([{"key": "k", "value": 1}])),
        ),
        get("key with ||", "a||b"),
        save("save a key with ||", json!([{"key": "a||b", "value": 1}])),
        step(
            "delete with a wrong etag",
            Method::DELETE,
            &format!("/v1.0/state/{STORE}/k1"),
            None,
        ),
        step(
            "delete a missing key",
            Method::DELETE,
            &format!("/v1.0/state/{STORE}/nothing"),
            None,
        ),
        get("get before delete", "k1"),
        step(
            "delete with the current etag",
            Method::DELETE,
            &format!("/v1.0/state/{STORE}/k1"),
            None,
        ),
        get("deleted", "k1"),
        save(
            "reserved characters in keys",
            json!([{"key": "a/b c+d%e?f#g:ü", "value": "reserved"}]),
        ),
        get("get a key with reserved characters", "a/b c+d%e?f#g:ü"),
        save(
            "unicode and escapes in values",
            json!([{"key": "u", "value": {"s": "é😊\u{2028}\t\"\\", "e": ""}}]),
        ),
        get("get unicode", "u"),
        step(
            "no key in the path",
            Method::GET,
            &format!("/v1.0/state/{STORE}"),
            None,
        ),
        step("healthz", Method::GET, "/v1.0/healthz", None),
        step(
            "healthz outbound",
            Method::GET,
            "/v1.0/healthz/outbound",
            None,
        ),
    ];
    // Delete guards: If-Match.
    for st in &mut s {
        if st.name == "delete with a wrong etag" {
            st.headers.push(("if-match", "wrong".into()));
        }
        if st.name == "delete with the current etag" {
            st.headers.push(("if-match", "{etag:k1}".into()));
        }
    }
    let mut expired = get("expired after 1 s TTL", "k7");
    expired.wait = Some(Duration::from_millis(2500));
    s.push(expired);
    for (name, token) in [
        ("get without a token", Token::None),
        ("get with a wrong token", Token::Wrong),
    ] {
        let mut st = get(name, "k5");
        st.token = token;
        s.push(st);
    }
    let mut meta = step(
        "metadata without a token",
        Method::GET,
        "/v1.0/metadata",
        None,
    );
    meta.token = Token::None;
    s.push(meta);
    let mut health = step(
        "healthz without a token",
        Method::GET,
        "/v1.0/healthz",
        None,
    );
    health.token = Token::None;
    s.push(health);
    s.push(step("metadata", Method::GET, "/v1.0/metadata", None));
    s
}

/// What is compared of an answer.
fn normalise(step: &Step, a: &Answer) -> Value {
    let mut out = json!({"status": a.status.as_u16()});
    let body = a.json();
    if let Some(code) = body.get("errorCode").and_then(Value::as_str) {
        out["errorCode"] = json!(code);
        return out;
    }
    if a.status == 401 {
        out["body"] = json!(String::from_utf8_lossy(&a.body));
        return out;
    }
    if step.path.ends_with("/bulk") && a.status == 200 {
        let mut items: Vec<Value> = body.as_array().cloned().unwrap_or_default();
        for it in &mut items {
            if it.get("etag").is_some() {
                it["etag"] = json!("<etag>");
            }
            if let Some(m) = it.get_mut("metadata").and_then(Value::as_object_mut)
                && m.contains_key("ttlExpireTime")
            {
                m.insert("ttlExpireTime".into(), json!("<time>"));
            }
        }
        items.sort_by_key(|i| i["key"].to_string());
        out["body"] = Value::Array(items);
        return out;
    }
    if step.path == "/v1.0/metadata" && a.status == 200 {
        let store = body["components"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == json!(STORE)))
            .cloned()
            .unwrap_or(Value::Null);
        out["store"] = json!({"name": store["name"], "capabilities": store["capabilities"]});
        return out;
    }
    if a.status == 200 {
        out["body"] = body;
        out["content-type"] = json!(a.header("content-type"));
        out["etag"] = json!(a.header("etag").is_some());
        out["ttl"] = json!(a.header("metadata.ttlexpiretime").is_some());
    } else {
        out["empty"] = json!(a.body.is_empty());
    }
    out
}

async fn run(endpoint: &str) -> Vec<(String, Value)> {
    let right = DaprHttp::new(endpoint).with_token(Some(TOKEN));
    let wrong = DaprHttp::new(endpoint).with_token(Some("wrong-token"));
    let none = DaprHttp::new(endpoint);
    let mut etags: HashMap<String, String> = HashMap::new();
    let mut results = Vec::new();
    for st in script() {
        if let Some(w) = st.wait {
            tokio::time::sleep(w).await;
        }
        let fill = |s: &str| {
            let mut s = s.to_string();
            for (k, v) in &etags {
                s = s.replace(&format!("{{etag:{k}}}"), v);
            }
            s
        };
        let body = st.body.as_deref().map(|b| fill(b).into_bytes());
        let headers: Vec<(String, String)> = st
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), fill(v)))
            .collect();
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let client = match st.token {
            Token::Right => &right,
            Token::Wrong => &wrong,
            Token::None => &none,
        };
        let answer = client
            .send(st.method.clone(), &st.path, body, &header_refs)
            .await
            .unwrap();
        if st.method == Method::GET
            && let Some(key) = st.path.strip_prefix(&format!("/v1.0/state/{STORE}/"))
            && let Some(e) = answer.header("etag")
        {
            let key = key.to_string();
            if let Some(old) = etags.insert(key.clone(), e.to_string()) {
                etags.insert(format!("{key}-old"), old);
            }
        }
        results.push((st.name.to_string(), normalise(&st, &answer)));
    }
    results
}

async fn daprd_with(component: ComponentSpec) -> Option<Daprd> {
    match daprd::binary() {
        Err(daprd::Unavailable::NoGo) if std::env::var("CI").map_or(true, |v| v != "true") => {
            eprintln!(
                "\n!!! SKIPPING the differential test: {}\n",
                daprd::Unavailable::NoGo
            );
            None
        }
        Err(e) => panic!("{e}"),
        Ok(_) => Some(
            Daprd::start(DaprdOptions {
                app_id: "differential".into(),
                components: vec![component],
                api_token: Some(TOKEN.into()),
            })
            .await
            .unwrap(),
        ),
    }
}

fn compare(theirs: &str, a: &[(String, Value)], b: &[(String, Value)]) -> Vec<String> {
    a.iter()
        .zip(b)
        .filter(|((_, x), (_, y))| x != y)
        .map(|((name, x), (_, y))| format!("{name}:\n  test server: {x}\n  {theirs}: {y}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_answers_like_daprd_in_memory() {
    let Some(daprd) = daprd_with(ComponentSpec::in_memory(STORE)).await else {
        return;
    };
    let server = DaprServer::start(ServerConfig {
        api_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let (a, b) = (server.endpoint(), daprd.endpoint());
    let (ours, theirs) = tokio::join!(run(&a), run(&b));
    assert_eq!(ours.len(), script().len());
    let diffs = compare("daprd+in-memory", &ours, &theirs);
    assert!(
        diffs.is_empty(),
        "{} of {} answers differ:\n{}\n",
        diffs.len(),
        ours.len(),
        diffs.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_server_answers_like_daprd_sqlite() {
    let dir = TempDir::new("differential-sqlite").unwrap();
    let Some(daprd) = daprd_with(ComponentSpec::sqlite(STORE, &dir.path().join("state.db"))).await
    else {
        return;
    };
    let server = DaprServer::start(ServerConfig {
        api_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let (a, b) = (server.endpoint(), daprd.endpoint());
    let (ours, theirs) = tokio::join!(run(&a), run(&b));
    let diffs = compare("daprd+sqlite", &ours, &theirs);
    // The two stores differ only where noted; everything else must match.
    let allowed = ["metadata"];
    let unexpected: Vec<&String> = diffs
        .iter()
        .filter(|d| !allowed.iter().any(|a| d.starts_with(&format!("{a}:"))))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{} answers differ:\n{}\n",
        unexpected.len(),
        unexpected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
