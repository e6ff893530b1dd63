//! The encryption middleware (`dapr-session-encrypt`) composed between the example HTTP
//! service and the session component, by chained `wac plug` and from
//! `examples/encrypt/compose.wac`, served by a `wasi:http/incoming-handler` host with its key in
//! `wasi:config/store`, and driven over HTTP against the test server: the conversation works,
//! the store holds no plaintext, another key sees and removes nothing, no key is refused.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use dapr_session_host_tests::compose;
use dapr_session_host_tests::dapr_server::{DaprServer, ServerConfig};
use dapr_session_host_tests::host::{
    COMPONENT, ENCRYPT, HTTP_SERVICE, Hooks, InstanceOptions, Pool, check_fresh,
};
use dapr_session_host_tests::serve::Service;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use wasmtime::Engine;
use wasmtime::component::Component;

const SESSION: &str = "agentmem:session/session@0.2.0";
const CONFIG_STORE: &str = "wasi:config/store@0.2.0-rc.1";
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.12";
/// A Fernet key: URL-safe base64 of 32 bytes.
const KEY: &str = "ZGFwci1zZXNzaW9uIGVuY3J5cHRpb24gdGVzdCBrZXk=";
const OTHER_KEY: &str = "YW5vdGhlciBrZXksIG5vdCB0aGUgb25lIHdyaXR0ZW4=";
const STORE: &str = "statestore";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read_wasm(path: &str) -> Vec<u8> {
    check_fresh(Path::new(path)).unwrap();
    std::fs::read(path).unwrap()
}

/// service ← middleware ← session, by `wac plug` twice.
fn chained() -> Vec<u8> {
    compose::chain(&[
        &read_wasm(HTTP_SERVICE),
        &read_wasm(ENCRYPT),
        &read_wasm(COMPONENT),
    ])
    .unwrap()
}

/// The same from `examples/encrypt/compose.wac`.
fn from_wac() -> Vec<u8> {
    let wac = std::fs::read_to_string(root().join("examples/encrypt/compose.wac")).unwrap();
    compose::compose(
        &wac,
        &[
            ("agentmem:session", &read_wasm(COMPONENT)),
            ("agentmem:session-encrypt", &read_wasm(ENCRYPT)),
            ("agentmem:http-service", &read_wasm(HTTP_SERVICE)),
        ],
    )
    .unwrap()
}

fn imports(wasm: &[u8]) -> BTreeSet<String> {
    compose::imports(wasm).unwrap().into_iter().collect()
}

/// A minimal HTTP client for the service.
struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    fn new(base: String) -> Self {
        Http {
            base,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    /// Status and body (JSON, `Null` when empty or not JSON).
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        let bytes = match body {
            Some(v) => {
                request = request.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(v).unwrap())
            }
            None => Bytes::new(),
        };
        let response = self
            .client
            .request(request.body(Full::new(bytes)).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }

    async fn post(&self, path: &str, value: &Value) -> (u16, Value) {
        self.send("POST", path, Some(value)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send("DELETE", path, None).await
    }
}

/// Serves `component` against `server` with `config` in `wasi:config/store`.
async fn serve(
    engine: &Engine,
    component: &Component,
    server: &DaprServer,
    config: &[(&str, &str)],
) -> Service {
    let options = InstanceOptions {
        env: vec![("DAPR_HTTP_ENDPOINT".into(), server.endpoint())],
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        hooks: Hooks {
            pool: Some(Pool::new()),
            ..Default::default()
        },
        ..Default::default()
    };
    Service::start(engine, component, options).await.unwrap()
}

/// Every stored value of the store, by key.
fn dump(server: &DaprServer) -> BTreeMap<String, Vec<u8>> {
    server
        .keys(STORE)
        .into_iter()
        .filter_map(|k| server.raw_get(STORE, &k).map(|item| (k, item.data)))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The README's table of the middleware's imports (between the `encrypt-imports` markers).
fn readme_imports() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- encrypt-imports:begin -->")
        .expect("README has <!-- encrypt-imports:begin -->");
    let end = readme
        .find("<!-- encrypt-imports:end -->")
        .expect("README has <!-- encrypt-imports:end -->");
    readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn middleware_imports_are_what_the_readme_lists() {
    let imports = imports(&read_wasm(ENCRYPT));
    let listed = readme_imports();
    assert!(!listed.is_empty(), "README lists no middleware imports");
    assert_eq!(
        imports, listed,
        "the middleware's imports differ from README.md's encrypt-imports table"
    );
}

#[test]
fn middleware_and_compositions_import_and_export_what_they_should() {
    let session = read_wasm(COMPONENT);
    let encrypt = read_wasm(ENCRYPT);
    let service = read_wasm(HTTP_SERVICE);
    // The middleware: the session interface in and out, its key from wasi:config.
    let middleware = imports(&encrypt);
    assert!(middleware.contains(SESSION), "{middleware:?}");
    assert!(middleware.contains(CONFIG_STORE), "{middleware:?}");
    for forbidden in ["wasi:filesystem", "wasi:sockets", "wasi:http"] {
        assert!(
            middleware.iter().all(|i| !i.starts_with(forbidden)),
            "the middleware imports {forbidden}: {middleware:?}"
        );
    }
    assert_eq!(compose::exports(&encrypt).unwrap(), vec![SESSION]);

    // Both compositions import every component's imports but the plugged interface.
    let expected: BTreeSet<String> = [&service, &encrypt, &session]
        .into_iter()
        .flat_map(|c| imports(c))
        .filter(|i| i != SESSION)
        .collect();
    assert!(expected.contains(CONFIG_STORE));
    for (how, bytes) in [("wac plug", chained()), ("compose.wac", from_wac())] {
        assert_eq!(imports(&bytes), expected, "{how}: imports");
        assert_eq!(
            compose::exports(&bytes).unwrap(),
            vec![INCOMING_HANDLER.to_string()],
            "{how}: exports"
        );
    }
}

/// A conversation through the encrypted service: two sessions (one with a non-ASCII id),
/// limited reads, pop, metadata, clear, and bad input refused with nothing lost.
async fn conversation(http: &Http, marker: &str) -> BTreeMap<&'static str, Vec<Value>> {
    let mut expected: BTreeMap<&'static str, Vec<Value>> = BTreeMap::new();
    let ids = [("alice", "alice"), ("zoë", "zo%C3%AB")];
    for turn in 0..3 {
        for (id, path_id) in ids {
            let items = json!([
                {"role": "user", "content": format!("{marker} {id} asks {turn}")},
                {"role": "assistant", "content": format!("Antwort {turn} für {id} ✓")},
            ]);
            let path = format!("/sessions/{path_id}/items");
            assert_eq!(
                http.post(&path, &items).await,
                (200, json!({"added": 2})),
                "{id} turn {turn}"
            );
            expected
                .entry(id)
                .or_default()
                .extend(items.as_array().unwrap().clone());
            assert_eq!(
                http.get(&format!("{path}?limit=2")).await,
                (200, items),
                "{id}: the newest two"
            );
        }
    }
    for (id, path_id) in ids {
        let (status, body) = http.get(&format!("/sessions/{path_id}/items")).await;
        assert_eq!((status, body), (200, Value::Array(expected[id].clone())));
    }
    // Pop the newest, then metadata passes through.
    let (status, popped) = http.delete("/sessions/alice/items/last").await;
    assert_eq!(
        (status, &popped),
        (200, &expected.get_mut("alice").unwrap().pop().unwrap())
    );
    let (status, alice) = http.get("/sessions/alice/items").await;
    assert_eq!(
        (status, alice),
        (200, Value::Array(expected["alice"].clone()))
    );
    let (status, meta) = http.get("/sessions/alice").await;
    assert_eq!((status, &meta["session_id"]), (200, &json!("alice")));
    // Bad items are refused before anything is written.
    let (status, body) = http
        .post("/sessions/alice/items", &json!([{"role": "user"}, 7]))
        .await;
    assert_eq!((status, &body["error"]), (400, &json!("invalid_input")));
    let (_, alice) = http.get("/sessions/alice/items").await;
    assert_eq!(alice, Value::Array(expected["alice"].clone()));
    expected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_service_against_the_test_server() {
    let server = DaprServer::start(ServerConfig::default()).await.unwrap();
    let engine = Engine::default();
    const MARKER: &str = "PLAINTEXT-MARKER-7f3a";
    for (how, bytes) in [("wac plug", chained()), ("compose.wac", from_wac())] {
        server.wipe(STORE);
        let component = Component::new(&engine, &bytes).unwrap();
        let svc = serve(
            &engine,
            &component,
            &server,
            &[("encryption_key", KEY), ("encryption_ttl_seconds", "3600")],
        )
        .await;
        let http = Http::new(svc.url());
        assert_eq!(http.get("/healthz").await.0, 200, "{how}: healthz");
        let expected = conversation(&http, MARKER).await;

        // What the store holds: envelopes, never the text.
        let stored = dump(&server);
        assert!(!stored.is_empty(), "{how}: nothing stored");
        for (key, data) in &stored {
            for needle in [MARKER, "asks", "Antwort", "für", "assistant"] {
                assert!(
                    !contains(data, needle),
                    "{how}: {key} holds the plaintext {needle:?}"
                );
            }
        }
        assert!(
            stored
                .values()
                .any(|d| contains(d, r#"\"__enc__\":1"#) || contains(d, r#""__enc__":1"#)),
            "{how}: no envelope stored: {stored:?}"
        );

        // Another key: reads see nothing of these sessions, pop removes nothing, and the
        // stored bytes do not change.
        let other = serve(
            &engine,
            &component,
            &server,
            &[("encryption_key", OTHER_KEY)],
        )
        .await;
        let other = Http::new(other.url());
        assert_eq!(other.get("/sessions/alice/items").await, (200, json!([])));
        assert_eq!(
            other.get("/sessions/zo%C3%AB/items?limit=1").await,
            (200, json!([]))
        );
        let (status, body) = other.delete("/sessions/alice/items/last").await;
        assert_eq!((status, &body["error"]), (404, &json!("empty")), "{how}");
        assert_eq!(
            dump(&server),
            stored,
            "{how}: another key changed the store"
        );
        // The right key still reads everything.
        assert_eq!(
            http.get("/sessions/alice/items").await,
            (200, Value::Array(expected["alice"].clone()))
        );

        // No key: opening is refused, nothing is sent to the store.
        let requests = server.stats().snapshot().requests();
        let keyless = serve(&engine, &component, &server, &[]).await;
        let (status, body) = Http::new(keyless.url()).get("/sessions/alice/items").await;
        assert_eq!(
            (status, &body["error"]),
            (400, &json!("invalid_input")),
            "{how}"
        );
        assert!(
            body.to_string().contains("encryption_key"),
            "{how}: the error names the missing value: {body}"
        );
        assert_eq!(server.stats().snapshot().requests(), requests, "{how}");

        // Clearing passes through.
        assert_eq!(http.delete("/sessions/alice").await.0, 204);
        assert_eq!(http.get("/sessions/alice/items").await, (200, json!([])));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plain_service_sees_only_envelopes() {
    // What the middleware wrote, read without it: every item is an envelope whose token
    // holds none of the text.
    let server = DaprServer::start(ServerConfig::default()).await.unwrap();
    let engine = Engine::default();
    let encrypted = Component::new(&engine, chained()).unwrap();
    let svc = serve(&engine, &encrypted, &server, &[("encryption_key", KEY)]).await;
    let items = json!([{"role": "user", "content": "geheim ✓"}, {"k": [1, 2.5, null]}]);
    assert_eq!(
        Http::new(svc.url()).post("/sessions/s/items", &items).await,
        (200, json!({"added": 2}))
    );
    let plain = Component::new(
        &engine,
        compose::plug(&read_wasm(HTTP_SERVICE), &read_wasm(COMPONENT)).unwrap(),
    )
    .unwrap();
    let svc = serve(&engine, &plain, &server, &[]).await;
    let (status, stored) = Http::new(svc.url()).get("/sessions/s/items").await;
    assert_eq!(status, 200);
    let stored = stored.as_array().unwrap();
    assert_eq!(stored.len(), 2);
    for envelope in stored {
        let fields: BTreeSet<&str> = envelope
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, BTreeSet::from(["__enc__", "v", "kid", "payload"]));
        assert_eq!(
            (&envelope["__enc__"], &envelope["v"], &envelope["kid"]),
            (&json!(1), &json!(1), &json!("hkdf-v1"))
        );
        let payload = envelope["payload"].as_str().unwrap();
        assert!(payload.starts_with("gAAAAA"), "a Fernet token: {payload}");
        assert!(!payload.contains("geheim"));
    }
    assert_ne!(stored[0]["payload"], stored[1]["payload"]);
}
