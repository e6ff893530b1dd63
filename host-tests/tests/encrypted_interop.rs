//! The encryption middleware composed with the session component (`compat` layout) shares
//! sessions with the real Python `EncryptedSession(DaprSession(...))` (`openai-agents[dapr,
//! encrypt]` from PyPI) through one daprd with Redis: each reads what the other wrote (non-ASCII
//! text, 1 MiB items, non-ASCII session ids, which salt the key); another key reads nothing and
//! changes no stored byte; expired items are skipped by both, a limited read still returning
//! `limit` live ones; Redis never holds the plaintext.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use dapr_session_host_tests::daprd::{self, ComponentSpec, Daprd, DaprdOptions};
use dapr_session_host_tests::host::{Config, Host, InstanceOptions, Layout, ManualClock, config};
use dapr_session_host_tests::python::{self, PythonDapr, PythonEncryption};
use dapr_session_host_tests::redis::{RedisServer, Reply, Resp};
use serde_json::{Value, json};

const TOKEN: &str = "encrypted-interop-token";
/// A Fernet key (URL-safe base64 of 32 bytes), as `Fernet.generate_key()` makes.
const KEY: &str = "ZGFwci1zZXNzaW9uIGVuY3J5cHRpb24gdGVzdCBrZXk=";
const OTHER_KEY: &str = "YW5vdGhlciBrZXksIG5vdCB0aGUgb25lIHdyaXR0ZW4=";
const MARKER: &str = "PLAINTEXT-MARKER-c0ffee";
const TTL: u32 = 3600;

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn parsed(items: &[String]) -> Vec<Value> {
    items
        .iter()
        .map(|i| serde_json::from_str(i).unwrap())
        .collect()
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// An item of about 1 MiB of non-ASCII text.
fn large_item(tag: &str) -> Value {
    let unit = "Grüße aus Zürich, 東京 und 😊 — ";
    let content: String = unit.repeat((1 << 20) / unit.len() + 1);
    json!({"role": "assistant", "content": format!("{tag} {content}")})
}

/// Every Redis hash (daprd's layout: `data`, `version`, …) by key, fields concatenated.
async fn dump(redis: &mut Resp) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for key in redis.keys("*").await.unwrap() {
        let Reply::Array(fields) = redis.command(&[b"HGETALL", key.as_bytes()]).await.unwrap()
        else {
            panic!("{key} is not a hash");
        };
        let mut bytes = Vec::new();
        for f in fields {
            if let Reply::Bulk(Some(b)) = f {
                bytes.extend_from_slice(&b);
                bytes.push(0);
            }
        }
        out.insert(key, bytes);
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

struct Setup {
    _redis: RedisServer,
    _daprd: Daprd,
    redis: Resp,
    py: PythonDapr,
    host: Host,
    cfg: Config,
}

impl Setup {
    /// Python's `EncryptedSession` with `key` and `ttl`.
    fn python(&self, key: &str, ttl: Option<u32>) -> PythonDapr {
        PythonDapr {
            encryption: Some(PythonEncryption {
                key: key.into(),
                ttl,
            }),
            ..self.py.clone()
        }
    }
}

/// Redis, daprd, the Python venv and the composed host; `None` (skipped) without Go or
/// Python outside CI.
async fn setup() -> Option<Setup> {
    if matches!(daprd::binary(), Err(daprd::Unavailable::NoGo)) && !ci() {
        eprintln!(
            "\n!!! SKIPPING encrypted Python interop: {}\n",
            daprd::Unavailable::NoGo
        );
        return None;
    }
    let python = match python::python() {
        Ok(p) => p,
        Err(e) if !ci() => {
            eprintln!("\n!!! SKIPPING encrypted Python interop: {e:#}\n");
            return None;
        }
        Err(e) => panic!("{e:#}"),
    };
    let redis_server = RedisServer::start().await.unwrap();
    let daprd = Daprd::start(DaprdOptions {
        app_id: "encrypted-interop".into(),
        components: vec![ComponentSpec::redis("statestore", &redis_server.address())],
        api_token: Some(TOKEN.into()),
    })
    .await
    .unwrap();
    let py = PythonDapr {
        python,
        grpc_port: daprd.grpc_port(),
        http_endpoint: daprd.endpoint(),
        token: Some(TOKEN.into()),
        store: "statestore".into(),
        encryption: None,
    };
    let host = Host::encrypted(&[("encryption_key", KEY)]).unwrap();
    let mut cfg = config(&daprd.endpoint(), "statestore");
    cfg.api_token = Some(TOKEN.into());
    cfg.layout = Some(Layout::Compat);
    Some(Setup {
        redis: redis_server.client().await.unwrap(),
        _redis: redis_server,
        _daprd: daprd,
        py,
        host,
        cfg,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_encrypted_session_and_the_middleware_share_sessions() {
    let Some(mut s) = setup().await else {
        return;
    };
    let py = s.python(KEY, None);
    let mut inst = s.host.instance().await.unwrap();

    // Component → Python, in a session whose id is not ASCII (it salts the key).
    let id = "sitzung-zoë-東京-😊";
    let written = vec![
        json!({"role": "user", "content": format!("{MARKER} Wie spät ist es? 😊")}).to_string(),
        json!({"type": "function_call", "call_id": "c1", "name": "clock", "arguments": "{\"tz\":\"UTC\"}"}).to_string(),
        json!({"role": "assistant", "content": "Zwölf Uhr, <noon> & \"quoted\" \\ \u{7f}"}).to_string(),
        // Number spellings and escapes Python re-dumps differently read back as the same item.
        r#"{"n":1.0,"e":1e3,"u":"\u00e9\ud83d\ude0a","nested":{"a":[true,false,null]}}"#.to_string(),
    ];
    let h = inst.open(id, &s.cfg).await.unwrap();
    inst.add_items(h, &written).await.unwrap();
    assert_eq!(
        py.run(id, "get", None).unwrap(),
        Value::Array(parsed(&written)),
        "Python reads what the component wrote"
    );
    assert_eq!(
        py.run(id, "get", Some("2")).unwrap(),
        json!(parsed(&written)[2..])
    );

    // Python → component: read, limited read, pop, append; Python reads the result.
    let py_items = json!([
        {"role": "user", "content": format!("{MARKER} from python")},
        {"role": "assistant", "content": "ünïcødé reply ✓"},
        {"role": "user", "content": "last python item"},
    ]);
    let pid = "von-python-ß";
    py.run(pid, "add", Some(&py_items.to_string())).unwrap();
    let p = inst.open(pid, &s.cfg).await.unwrap();
    assert_eq!(
        Value::Array(parsed(&inst.get_items(p, None).await.unwrap())),
        py_items,
        "the component reads what Python wrote"
    );
    assert_eq!(
        Value::Array(parsed(&inst.get_items(p, Some(1)).await.unwrap())),
        json!([py_items[2]])
    );
    let popped = inst.pop_item(p).await.unwrap().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&popped).unwrap(), py_items[2]);
    let appended = json!({"role": "assistant", "content": "appended by the component"});
    inst.add_items(p, &[appended.to_string()]).await.unwrap();
    assert_eq!(
        py.run(pid, "get", None).unwrap(),
        json!([py_items[0], py_items[1], appended])
    );
    // Python pops what the component added.
    assert_eq!(py.run(pid, "pop", None).unwrap(), appended);
    assert_eq!(inst.get_items(p, None).await.unwrap().len(), 2);

    // 1 MiB items, both ways.
    let big = large_item("from the component");
    let b = inst.open("groß-1", &s.cfg).await.unwrap();
    inst.add_items(b, &[big.to_string()]).await.unwrap();
    assert_eq!(py.run("groß-1", "get", None).unwrap(), json!([big]));
    let big_py = large_item("from python");
    py.run("groß-2", "add", Some(&json!([big_py]).to_string()))
        .unwrap();
    let b2 = inst.open("groß-2", &s.cfg).await.unwrap();
    assert_eq!(
        Value::Array(parsed(&inst.get_items(b2, None).await.unwrap())),
        json!([big_py])
    );

    // Redis holds none of the text, from either writer.
    let stored = dump(&mut s.redis).await;
    assert!(stored.len() >= 4, "{:?}", stored.keys());
    for (key, bytes) in &stored {
        for needle in [
            MARKER,
            "Wie spät",
            "from python",
            "ünïcødé",
            "Grüße",
            "function_call",
        ] {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "{key} holds the plaintext {needle:?}"
            );
        }
    }
    // The session ids are keys, not secrets: they are there.
    assert!(stored.keys().any(|k| k.contains("von-python-ß")));

    // Clearing passes through, for both.
    py.run(id, "clear", None).unwrap();
    assert!(inst.get_items(h, None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_key_reads_nothing_and_changes_nothing() {
    let Some(mut s) = setup().await else {
        return;
    };
    let py = s.python(KEY, None);
    let id = "wrong-key-ü";
    // Written by both sides with the right key.
    py.run(
        id,
        "add",
        Some(&json!([{"k": "python 1"}, {"k": "python 2"}]).to_string()),
    )
    .unwrap();
    let mut inst = s.host.instance().await.unwrap();
    let h = inst.open(id, &s.cfg).await.unwrap();
    inst.add_items(h, &[json!({"k": "component"}).to_string()])
        .await
        .unwrap();
    let before = dump(&mut s.redis).await;

    // The middleware with another key.
    let mut other = s
        .host
        .instance_with(InstanceOptions {
            config: vec![("encryption_key".into(), OTHER_KEY.into())],
            ..Default::default()
        })
        .await
        .unwrap();
    let o = other.open(id, &s.cfg).await.unwrap();
    assert!(other.get_items(o, None).await.unwrap().is_empty());
    assert!(other.get_items(o, Some(1)).await.unwrap().is_empty());
    let snapshot = other.get_snapshot(o, None).await.unwrap();
    assert!(snapshot.items.is_empty());
    assert_eq!(snapshot.first, 3, "three stored items, none readable");
    assert_eq!(other.pop_item(o).await.unwrap(), None);
    assert_eq!(other.pop_item(o).await.unwrap(), None);
    // Python with another key reads nothing either (it is never asked to pop: its pop on
    // Dapr deletes what it cannot decrypt, openai-agents-python #5005).
    assert_eq!(
        s.python(OTHER_KEY, None).run(id, "get", None).unwrap(),
        json!([])
    );
    // The same key under another session id (another salt) reads nothing.
    let moved = "wrong-key-u";
    let raw: Vec<String> = {
        let mut plain = Host::new().unwrap().instance().await.unwrap();
        let p = plain.open(id, &s.cfg).await.unwrap();
        plain.get_items(p, None).await.unwrap()
    };
    assert_eq!(raw.len(), 3, "the stored envelopes");
    let mut plain = Host::new().unwrap().instance().await.unwrap();
    let m = plain.open(moved, &s.cfg).await.unwrap();
    plain.add_items(m, &raw).await.unwrap();
    let mm = inst.open(moved, &s.cfg).await.unwrap();
    assert!(inst.get_items(mm, None).await.unwrap().is_empty());
    assert_eq!(inst.pop_item(mm).await.unwrap(), None);

    let mut after = dump(&mut s.redis).await;
    after.retain(|k, _| !k.contains(moved));
    assert_eq!(after, before, "a wrong key changed stored bytes");
    // The right key still reads everything.
    assert_eq!(
        Value::Array(parsed(&inst.get_items(h, None).await.unwrap())),
        json!([{"k": "python 1"}, {"k": "python 2"}, {"k": "component"}])
    );
    assert_eq!(
        py.run(id, "get", None).unwrap(),
        json!([{"k": "python 1"}, {"k": "python 2"}, {"k": "component"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_items_are_skipped_by_both() {
    let Some(s) = setup().await else {
        return;
    };
    let id = "ttl-ö";
    let clock = ManualClock::at_ms(now_ms());
    let ttl = TTL.to_string();
    let mut inst = s
        .host
        .instance_with(InstanceOptions {
            config: vec![
                ("encryption_key".into(), KEY.into()),
                ("encryption_ttl_seconds".into(), ttl.clone()),
            ],
            clock: Some(clock.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let h = inst.open(id, &s.cfg).await.unwrap();
    // Interleaved: live items written now, expired ones written two hours ago, a Python one.
    let item = |n: &str| json!({"role": "user", "content": n}).to_string();
    let old = now_ms() - 2 * 3600 * 1000;
    for (name, at) in [
        ("live 1", None),
        ("old 1", Some(old)),
        ("live 2", None),
        ("old 2", Some(old)),
        ("old 3", Some(old)),
        ("live 3", None),
        ("old 4", Some(old)),
    ] {
        clock.set_ms(at.unwrap_or_else(now_ms));
        inst.add_items(h, &[item(name)]).await.unwrap();
    }
    let py = s.python(KEY, Some(TTL));
    py.run(
        id,
        "add",
        Some(&json!([{"role": "user", "content": "live 4"}]).to_string()),
    )
    .unwrap();
    clock.set_ms(now_ms());
    let live = json!([
        {"role": "user", "content": "live 1"},
        {"role": "user", "content": "live 2"},
        {"role": "user", "content": "live 3"},
        {"role": "user", "content": "live 4"},
    ]);
    assert_eq!(
        Value::Array(parsed(&inst.get_items(h, None).await.unwrap())),
        live
    );
    // A limited read widens past the expired ones to return `limit` live items.
    assert_eq!(
        Value::Array(parsed(&inst.get_items(h, Some(3)).await.unwrap())),
        json!(live.as_array().unwrap()[1..])
    );
    // Python's `ttl` skips the same ones.
    assert_eq!(py.run(id, "get", None).unwrap(), live);
    assert_eq!(
        py.run(id, "get", Some("2")).unwrap(),
        json!(live.as_array().unwrap()[2..])
    );
    // Without a TTL every item is readable (nothing was removed by reading).
    let mut untimed = s.host.instance().await.unwrap();
    let u = untimed.open(id, &s.cfg).await.unwrap();
    assert_eq!(untimed.get_items(u, None).await.unwrap().len(), 8);
    // Pop takes the newest live item; the next pop also drops the expired one after it,
    // and nothing else.
    let popped = inst.pop_item(h).await.unwrap().unwrap();
    assert_eq!(popped, item("live 4"));
    let stored = |names: &[&str]| {
        Value::Array(
            names
                .iter()
                .map(|n| json!({"role": "user", "content": n}))
                .collect(),
        )
    };
    assert_eq!(
        Value::Array(parsed(&untimed.get_items(u, None).await.unwrap())),
        stored(&[
            "live 1", "old 1", "live 2", "old 2", "old 3", "live 3", "old 4"
        ])
    );
    assert_eq!(inst.pop_item(h).await.unwrap().unwrap(), item("live 3"));
    assert_eq!(
        Value::Array(parsed(&untimed.get_items(u, None).await.unwrap())),
        stored(&["live 1", "old 1", "live 2", "old 2", "old 3"])
    );
}
