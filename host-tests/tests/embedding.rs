//! How embedders use the component: composed into the example HTTP service with `wac` (as a
//! library, by `wac plug` semantics and from the `.wac` file), served by a
//! `wasi:http/incoming-handler` host and driven over HTTP against the test server and against
//! daprd with Redis; the Spin and wasmCloud manifests checked against the components they
//! name; and the component's import list pinned to the README's.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use dapr_session_host_tests::compose;
use dapr_session_host_tests::dapr_server::{DaprServer, ServerConfig};
use dapr_session_host_tests::daprd::{self, ComponentSpec, Daprd, DaprdOptions};
use dapr_session_host_tests::host::{COMPONENT, HTTP_SERVICE, InstanceOptions, Pool, check_fresh};
use dapr_session_host_tests::process::free_port;
use dapr_session_host_tests::redis::RedisServer;
use dapr_session_host_tests::serve::Service;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use wasmtime::Engine;
use wasmtime::component::Component;

const SESSION_INTERFACE_NAME: &str = "session";
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler@0.2.12";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn service_dir() -> PathBuf {
    root().join("examples").join("http-service")
}

fn read_wasm(path: &str) -> Vec<u8> {
    check_fresh(Path::new(path)).unwrap();
    std::fs::read(path).unwrap()
}

/// The service with the session component plugged in, by `wac plug` semantics.
fn composed() -> Vec<u8> {
    compose::plug(&read_wasm(HTTP_SERVICE), &read_wasm(COMPONENT)).unwrap()
}

/// `agentmem:session/session@0.2.0`, from `wit/session.wit`.
fn session_interface() -> String {
    let wit = std::fs::read_to_string(root().join("wit/session.wit")).unwrap();
    let package = wit
        .lines()
        .find_map(|l| l.trim().strip_prefix("package "))
        .and_then(|p| p.strip_suffix(';'))
        .expect("package line in wit/session.wit");
    let (name, version) = package.split_once('@').expect("a versioned package");
    assert!(
        wit.contains(&format!("interface {SESSION_INTERFACE_NAME} {{")),
        "wit/session.wit defines interface {SESSION_INTERFACE_NAME}"
    );
    format!("{name}/{SESSION_INTERFACE_NAME}@{version}")
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A minimal HTTP client for the service.
struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response: status, `allow` header, body as JSON (`Null` when empty or not JSON), raw body.
#[derive(Debug)]
struct Reply {
    status: u16,
    allow: Option<String>,
    json: Value,
    body: Bytes,
}

impl Http {
    fn new(base: String) -> Self {
        Http {
            base,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Reply {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        let bytes = match body {
            Some((content_type, bytes)) => {
                request = request.header("content-type", content_type);
                Bytes::from(bytes)
            }
            None => Bytes::new(),
        };
        let response = self
            .client
            .request(request.body(Full::new(bytes)).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let allow = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Reply {
            status,
            allow,
            json,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    async fn post(&self, path: &str, value: &Value) -> Reply {
        self.send(
            "POST",
            path,
            Some(("application/json", serde_json::to_vec(value).unwrap())),
        )
        .await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, None).await
    }
}

/// Serves `component` with `env`, outgoing requests through a keep-alive pool.
async fn serve(engine: &Engine, component: &Component, env: &[(&str, String)]) -> Service {
    let options = InstanceOptions {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        hooks: dapr_session_host_tests::host::Hooks {
            pool: Some(Pool::new()),
            ..Default::default()
        },
        ..Default::default()
    };
    Service::start(engine, component, options).await.unwrap()
}

/// The README's import list: the first column of the table between the `imports` markers.
fn readme_imports() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- imports:begin -->")
        .expect("README has <!-- imports:begin -->");
    let end = readme
        .find("<!-- imports:end -->")
        .expect("README has <!-- imports:end -->");
    readme[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_string()))
        .collect()
}

#[test]
fn component_imports_are_what_the_readme_lists() {
    let wasm = read_wasm(COMPONENT);
    let imports: BTreeSet<String> = compose::imports(&wasm).unwrap().into_iter().collect();
    let listed = readme_imports();
    assert!(!listed.is_empty(), "README lists no imports");
    let unlisted: Vec<_> = imports.difference(&listed).collect();
    let gone: Vec<_> = listed.difference(&imports).collect();
    assert!(
        unlisted.is_empty() && gone.is_empty(),
        "the component imports {unlisted:?} that README.md does not list, and README.md lists {gone:?} it no longer imports"
    );
    // Configuration comes through `open`; nothing that reaches files, sockets or the clock's
    // time zone is imported.
    for forbidden in ["wasi:filesystem", "wasi:sockets", "wasi:random/insecure@"] {
        assert!(
            imports.iter().all(|i| !i.starts_with(forbidden)),
            "imports {forbidden}: {imports:?}"
        );
    }
    assert_eq!(compose::exports(&wasm).unwrap(), vec![session_interface()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plug_and_the_wac_file_compose_a_servable_service() {
    let session = read_wasm(COMPONENT);
    let service = read_wasm(HTTP_SERVICE);
    let interface = session_interface();
    assert!(
        compose::imports(&service).unwrap().contains(&interface),
        "the service imports {interface}"
    );
    let plugged = compose::plug(&service, &session).unwrap();
    let wac = std::fs::read_to_string(service_dir().join("compose.wac")).unwrap();
    let from_wac = compose::compose(
        &wac,
        &[
            ("agentmem:session", &session),
            ("agentmem:http-service", &service),
        ],
    )
    .unwrap();

    // What the composition must import: both components' imports but the plugged one.
    let expected: BTreeSet<String> = compose::imports(&service)
        .unwrap()
        .into_iter()
        .chain(compose::imports(&session).unwrap())
        .filter(|i| *i != interface)
        .collect();
    let server = DaprServer::start(ServerConfig::default()).await.unwrap();
    let engine = Engine::default();
    for (how, bytes) in [("wac plug", &plugged), ("compose.wac", &from_wac)] {
        let imports: BTreeSet<String> = compose::imports(bytes).unwrap().into_iter().collect();
        assert_eq!(imports, expected, "{how}: imports");
        assert_eq!(
            compose::exports(bytes).unwrap(),
            vec![INCOMING_HANDLER.to_string()],
            "{how}: exports"
        );
        // It instantiates and answers: a turn stored and read back through the test server.
        let component = Component::new(&engine, bytes).unwrap();
        let svc = serve(
            &engine,
            &component,
            &[("DAPR_HTTP_ENDPOINT", server.endpoint())],
        )
        .await;
        let http = Http::new(svc.url());
        assert_eq!(http.get("/healthz").await.status, 200, "{how}: healthz");
        let path = format!("/sessions/{}/items", how.replace(' ', "-"));
        let turn = json!([{"role": "user", "content": how}]);
        assert_eq!(http.post(&path, &turn).await.json, json!({"added": 1}));
        assert_eq!(http.get(&path).await.json, turn, "{how}");
        assert_eq!(svc.served(), 3);
    }
}

/// Every request of a conversation, and the errors clients can cause, over HTTP.
async fn conversation(http: &Http) {
    // Two sessions, three turns each, interleaved.
    let mut expected = std::collections::HashMap::new();
    for turn in 0..3 {
        for id in ["alice", "bob"] {
            let items = json!([
                {"role": "user", "content": format!("{id} asks {turn}")},
                {"role": "assistant", "content": format!("answer {turn} for {id} ✓")},
            ]);
            let r = http.post(&format!("/sessions/{id}/items"), &items).await;
            assert_eq!((r.status, &r.json), (200, &json!({"added": 2})), "{r:?}");
            expected
                .entry(id)
                .or_insert_with(Vec::new)
                .extend(items.as_array().unwrap().clone());
            // The history feeds the next turn: the newest two are this turn.
            let r = http.get(&format!("/sessions/{id}/items?limit=2")).await;
            assert_eq!((r.status, &r.json), (200, &items));
        }
    }
    for id in ["alice", "bob"] {
        let r = http.get(&format!("/sessions/{id}/items")).await;
        assert_eq!(r.json, Value::Array(expected[id].clone()), "{id}");
    }

    // Pop the newest, read metadata, clear.
    let r = http.delete("/sessions/alice/items/last").await;
    assert_eq!(
        (r.status, &r.json),
        (
            200,
            &json!({"role": "assistant", "content": "answer 2 for alice ✓"})
        )
    );
    let r = http.get("/sessions/alice/items").await;
    assert_eq!(r.json.as_array().unwrap().len(), 5);
    let r = http.get("/sessions/alice").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["session_id"], "alice");
    assert!(r.json["updated_at"].as_u64() >= r.json["created_at"].as_u64());
    let r = http.delete("/sessions/alice").await;
    assert_eq!((r.status, r.body.len()), (204, 0));
    assert_eq!(http.get("/sessions/alice/items").await.json, json!([]));
    let r = http.delete("/sessions/alice/items/last").await;
    assert_eq!((r.status, r.json["error"].as_str()), (404, Some("empty")));

    // Bad requests lose nothing already stored.
    let bob = Value::Array(expected["bob"].clone());
    let r = http
        .post(
            "/sessions/bob/items",
            &json!([{"role": "user"}, 7, {"x": 1}]),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.json["error"], "invalid_input");
    assert_eq!(r.json["item_index"], 1);
    let r = http
        .send(
            "POST",
            "/sessions/bob/items",
            Some(("application/json", b"[{\"role\":".to_vec())),
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some("bad_request"))
    );
    let r = http
        .post("/sessions/bob/items", &json!({"role": "user"}))
        .await;
    assert_eq!(r.status, 400, "not an array: {r:?}");
    let r = http
        .send(
            "POST",
            "/sessions/bob/items",
            Some(("text/plain", b"[]".to_vec())),
        )
        .await;
    assert_eq!(r.status, 415);
    let r = http
        .send(
            "POST",
            "/sessions/bob/items",
            Some(("application/json", vec![b' '; 8 * 1024 * 1024 + 1])),
        )
        .await;
    assert_eq!(r.status, 413);
    let r = http.get("/sessions/bob/items?limit=many").await;
    assert_eq!(r.status, 400);
    let r = http.send("PUT", "/sessions/bob/items", None).await;
    assert_eq!((r.status, r.allow.as_deref()), (405, Some("GET, POST")));
    assert_eq!(http.get("/nowhere").await.status, 404);
    assert_eq!(http.get("/sessions/bob/items").await.json, bob);

    // An id with reserved characters, percent-encoded in the path, is its own session; one
    // holding Dapr's key separator is refused.
    let odd = "/sessions/a%2Fb%20c%25d%C3%A9/items";
    let r = http.post(odd, &json!([{"k": "odd id"}])).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(http.get(odd).await.json, json!([{"k": "odd id"}]));
    let r = http
        .post("/sessions/a%7C%7Cb/items", &json!([{"k": 1}]))
        .await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (400, Some("invalid_input"))
    );
    assert_eq!(http.get("/sessions/bob/items").await.json, bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_service_against_daprd_and_redis() {
    if matches!(daprd::binary(), Err(daprd::Unavailable::NoGo)) && !ci() {
        eprintln!("\n!!! SKIPPING the HTTP service against daprd: no Go to build daprd\n");
        return;
    }
    const TOKEN: &str = "service-token";
    let redis = RedisServer::start().await.unwrap();
    let mut daprd = Daprd::start(DaprdOptions {
        app_id: "conversation-memory".into(),
        components: vec![ComponentSpec::redis("statestore", &redis.address())],
        api_token: Some(TOKEN.into()),
    })
    .await
    .unwrap();
    let engine = Engine::default();
    let component = Component::new(&engine, composed()).unwrap();
    let env = |token: &str| {
        vec![
            ("DAPR_HTTP_ENDPOINT", daprd.endpoint()),
            ("DAPR_API_TOKEN", token.to_string()),
            ("SESSION_STORE", "statestore".to_string()),
        ]
    };
    let svc = serve(&engine, &component, &env(TOKEN)).await;
    let http = Http::new(svc.url());
    assert_eq!(http.get("/healthz").await.status, 200);
    conversation(&http).await;

    // Another replica (its own instances, same store) sees the same conversations.
    let replica = serve(&engine, &component, &env(TOKEN)).await;
    let other = Http::new(replica.url());
    let r = other.get("/sessions/bob/items?limit=1").await;
    assert_eq!(
        r.json,
        json!([{"role": "assistant", "content": "answer 2 for bob ✓"}])
    );

    // The service's own token is wrong: the sidecar refuses it, and that is not the client's fault.
    let wrong = serve(&engine, &component, &env("not-the-token")).await;
    let r = Http::new(wrong.url()).get("/sessions/bob/items").await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (502, Some("sidecar_unauthorized"))
    );

    // A store daprd does not have.
    let mut env_store = env(TOKEN);
    env_store[2].1 = "nostore".into();
    let missing = serve(&engine, &component, &env_store).await;
    let r = Http::new(missing.url()).get("/sessions/bob/items").await;
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(r.json["error"], "store_not_found");
    assert_eq!(Http::new(missing.url()).get("/healthz").await.status, 500);

    // The sidecar goes away: 503 with a JSON error, and back to normal once it returns.
    daprd.stop().unwrap();
    let r = http.get("/sessions/bob/items").await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (503, Some("unavailable")),
        "{r:?}"
    );
    assert_eq!(http.get("/healthz").await.status, 503);
    daprd.restart().await.unwrap();
    let r = http.get("/sessions/bob/items?limit=1").await;
    assert_eq!(r.status, 200, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composed_service_against_the_test_server() {
    let server = DaprServer::start(ServerConfig::default()).await.unwrap();
    let engine = Engine::default();
    let component = Component::new(&engine, composed()).unwrap();
    let svc = serve(
        &engine,
        &component,
        &[("DAPR_HTTP_ENDPOINT", server.endpoint())],
    )
    .await;
    conversation(&Http::new(svc.url())).await;
    // Nothing listens at the endpoint: 503.
    let down = format!("http://127.0.0.1:{}", free_port().unwrap());
    let svc = serve(&engine, &component, &[("DAPR_HTTP_ENDPOINT", down)]).await;
    let r = Http::new(svc.url()).get("/sessions/x/items").await;
    assert_eq!(
        (r.status, r.json["error"].as_str()),
        (503, Some("unavailable"))
    );
}

/// A path Spin's route pattern matches, for trying it on the service.
fn sample_path(route: &str) -> String {
    match route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/spin-route/items"),
        None => route.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spin_manifest_describes_the_components() {
    let text = std::fs::read_to_string(service_dir().join("spin.toml")).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(manifest["spin_manifest_version"].as_integer(), Some(2));
    let components = manifest["component"].as_table().unwrap();
    assert_eq!(components.len(), 1);
    let (name, component) = components.iter().next().unwrap();

    // The sources are what `cargo build --target wasm32-wasip2 --release` makes.
    let release = root().join("target/wasm32-wasip2/release");
    let resolve = |p: &str| -> PathBuf { service_dir().join(p) };
    let source = resolve(component["source"].as_str().unwrap());
    assert_eq!(
        normalize(&source),
        normalize(&release.join("dapr_session_http_service.wasm"))
    );

    // The dependency is our interface, at its version, from our component.
    let deps = component["dependencies"].as_table().unwrap();
    assert_eq!(
        deps.keys().cloned().collect::<Vec<_>>(),
        vec![session_interface()]
    );
    let dep = &deps[&session_interface()];
    assert_eq!(
        normalize(&resolve(dep["path"].as_str().unwrap())),
        normalize(&release.join("dapr_session.wasm"))
    );
    let service = read_wasm(HTTP_SERVICE);
    assert!(
        compose::imports(&service)
            .unwrap()
            .contains(&session_interface())
    );
    assert_eq!(
        compose::exports(&read_wasm(COMPONENT)).unwrap(),
        vec![session_interface()]
    );
    // Without it Spin gives the dependency no environment and no outbound hosts.
    assert_eq!(
        component["dependencies_inherit_configuration"].as_bool(),
        Some(true)
    );

    // Environment: only variables the service or the session component read; the endpoint is
    // an allowed outbound host.
    use dapr_session_http_service::settings;
    let known = [
        "DAPR_HTTP_ENDPOINT",
        "DAPR_HTTP_PORT",
        "DAPR_API_TOKEN",
        settings::STORE,
        settings::KEY_PREFIX,
        settings::TTL,
        settings::LAYOUT,
    ];
    let env = component["environment"].as_table().unwrap();
    for key in env.keys() {
        assert!(
            known.contains(&key.as_str()),
            "spin.toml sets unknown {key}"
        );
    }
    let endpoint = env["DAPR_HTTP_ENDPOINT"].as_str().unwrap();
    let allowed: Vec<&str> = component["allowed_outbound_hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(allowed.contains(&endpoint), "{endpoint} not in {allowed:?}");

    // Every trigger names the component, and the service answers at each route (run with the
    // manifest's environment, the endpoint pointed at a test server).
    let server = DaprServer::start(ServerConfig::default()).await.unwrap();
    let engine = Engine::default();
    let wasm = Component::new(&engine, composed()).unwrap();
    let mut run_env: Vec<(&str, String)> = env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap().to_string()))
        .collect();
    for (k, v) in &mut run_env {
        if *k == "DAPR_HTTP_ENDPOINT" {
            *v = server.endpoint();
        }
    }
    let svc = serve(&engine, &wasm, &run_env).await;
    let http = Http::new(svc.url());
    let triggers = manifest["trigger"]["http"].as_array().unwrap();
    assert!(triggers.len() >= 2);
    for trigger in triggers {
        assert_eq!(trigger["component"].as_str(), Some(name.as_str()));
        let path = sample_path(trigger["route"].as_str().unwrap());
        let r = http.get(&path).await;
        assert_eq!(r.status, 200, "route {path}: {r:?}");
    }
}

/// `a/b/../c` → `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wadm_manifest_describes_the_composition() {
    let text = std::fs::read_to_string(service_dir().join("wadm.yaml")).unwrap();
    let manifest: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        manifest["apiVersion"].as_str(),
        Some("core.oam.dev/v1beta1")
    );
    assert_eq!(manifest["kind"].as_str(), Some("Application"));
    assert!(manifest["metadata"]["name"].as_str().is_some());
    assert!(
        manifest["metadata"]["annotations"]["version"]
            .as_str()
            .is_some()
    );
    let components = manifest["spec"]["components"].as_sequence().unwrap();
    let by_name = |n: &str| {
        components
            .iter()
            .find(|c| c["name"].as_str() == Some(n))
            .unwrap_or_else(|| panic!("no component named {n}"))
    };
    let app = components
        .iter()
        .find(|c| c["type"].as_str() == Some("component"))
        .unwrap();
    // The image is the composition the header comment makes with `wac plug ... -o service.wasm`.
    let image = app["properties"]["image"].as_str().unwrap();
    let file = image.strip_prefix("file://./").unwrap();
    assert!(
        text.contains(&format!(
            "wac plug dapr_session_http_service.wasm --plug dapr_session.wasm -o {file}"
        )),
        "wadm.yaml says how {file} is made"
    );
    let composed = composed();
    let imports = compose::imports(&composed).unwrap();
    let exports = compose::exports(&composed).unwrap();

    // Links: every target exists; the interfaces linked are what the composition imports
    // (from a provider) or exports (to the HTTP server).
    let mut linked = Vec::new();
    for component in components {
        for t in component["traits"].as_sequence().into_iter().flatten() {
            if t["type"].as_str() != Some("link") {
                continue;
            }
            let p = &t["properties"];
            let target = p["target"]["name"].as_str().unwrap();
            let target_component = by_name(target);
            let ns = p["namespace"].as_str().unwrap();
            let package = p["package"].as_str().unwrap();
            for interface in p["interfaces"].as_sequence().unwrap() {
                let interface = interface.as_str().unwrap();
                let prefix = format!("{ns}:{package}/{interface}@");
                if component["name"] == app["name"] {
                    // The app calls out to the target provider through this import.
                    assert_eq!(target_component["type"].as_str(), Some("capability"));
                    assert!(
                        imports.iter().any(|i| i.starts_with(&prefix)),
                        "{prefix} not imported: {imports:?}"
                    );
                } else {
                    // A provider calls into the app through this export.
                    assert_eq!(target_component["name"], app["name"]);
                    assert!(
                        exports.iter().any(|e| e.starts_with(&prefix)),
                        "{prefix} not exported: {exports:?}"
                    );
                }
                linked.push(prefix);
            }
        }
    }
    assert!(
        linked
            .iter()
            .any(|l| l.starts_with("wasi:http/outgoing-handler"))
    );
    assert!(
        linked
            .iter()
            .any(|l| l.starts_with("wasi:http/incoming-handler"))
    );
    // The session interface is inside the composition, not left for wasmCloud to link.
    assert!(!imports.iter().any(|i| i.starts_with("agentmem:")));
    // And the composition instantiates in wasmtime as a wasi:http proxy.
    let engine = Engine::default();
    let component = Component::new(&engine, &composed).unwrap();
    drop(serve(&engine, &component, &[]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wash_config_serves_the_composition() {
    let path = service_dir().join(".wash").join("config.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();

    // wash serves the composition the header comment makes, with no build step of its own.
    assert_eq!(config["build"]["command"].as_str(), Some("true"));
    let file = config["build"]["component_path"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "wac plug dapr_session_http_service.wasm --plug dapr_session.wasm -o {file}"
        )),
        ".wash/config.yaml says how {file} is made"
    );
    let address = config["dev"]["address"].as_str().unwrap();
    assert!(address.starts_with("127.0.0.1:"), "{address}");

    // Outgoing HTTP to daprd is allowed: no allowedHosts list at all, or one naming the
    // sidecar (an empty list denies every request).
    let workload = &config["workload"];
    let env = workload["environment"]["config"].as_mapping().unwrap();
    let endpoint = env
        .get("DAPR_HTTP_ENDPOINT")
        .and_then(|v| v.as_str())
        .unwrap();
    if let Some(allowed) = workload.get("allowedHosts") {
        let allowed: Vec<&str> = allowed
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|h| h.as_str())
            .collect();
        assert!(
            allowed.iter().any(|h| endpoint.contains(h)),
            "{endpoint} not in {allowed:?}"
        );
    }

    // Only variables the service or the session component read.
    use dapr_session_http_service::settings;
    let known = [
        "DAPR_HTTP_ENDPOINT",
        "DAPR_HTTP_PORT",
        "DAPR_API_TOKEN",
        settings::STORE,
        settings::KEY_PREFIX,
        settings::TTL,
        settings::LAYOUT,
    ];
    let mut run_env = Vec::new();
    for (key, value) in env {
        let key = key.as_str().unwrap();
        assert!(known.contains(&key), "config.yaml sets unknown {key}");
        run_env.push((key, value.as_str().unwrap().to_string()));
    }

    // The composition answers with that environment (the endpoint pointed at a test server).
    let server = DaprServer::start(ServerConfig::default()).await.unwrap();
    for (k, v) in &mut run_env {
        if *k == "DAPR_HTTP_ENDPOINT" {
            *v = server.endpoint();
        }
    }
    let engine = Engine::default();
    let component = Component::new(&engine, composed()).unwrap();
    let svc = serve(&engine, &component, &run_env).await;
    let http = Http::new(svc.url());
    assert_eq!(http.get("/healthz").await.status, 200);
    conversation(&http).await;
}

/// The `wasmtime` CLI: `$WASMTIME_BIN`, else the one `.ci/run` installs in the cache, else
/// one on `PATH`.
fn wasmtime_cli() -> Option<PathBuf> {
    std::env::var_os("WASMTIME_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let cached = dapr_session_host_tests::cache::cache_dir().join("tools/bin/wasmtime");
            cached.is_file().then_some(cached)
        })
        .or_else(|| dapr_session_host_tests::redis::which("wasmtime"))
}

/// The README's `wasmtime serve` recipe, run: the composition written to a file and served
/// by the wasmtime CLI (`-S cli` for the `wasi:cli` imports Rust's standard library brings),
/// the sidecar named by `--env`, against the test server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasmtime_serve_runs_the_composition() {
    let Some(wasmtime) = wasmtime_cli() else {
        assert!(
            !ci(),
            "CI=true: the wasmtime CLI is required (.ci/run installs wasmtime-cli 48.0.8)"
        );
        eprintln!("\n!!! SKIPPING wasmtime serve: no wasmtime CLI (set WASMTIME_BIN)\n");
        return;
    };
    let version = std::process::Command::new(&wasmtime)
        .arg("--version")
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&version.stdout).trim());
    let dir = dapr_session_host_tests::process::TempDir::new("wasmtime-serve").unwrap();
    let app = dir.path().join("app.wasm");
    std::fs::write(&app, composed()).unwrap();
    let server = DaprServer::start(ServerConfig::default()).await.unwrap();
    let port = free_port().unwrap();
    let mut cmd = std::process::Command::new(&wasmtime);
    cmd.arg("serve")
        .args(["-S", "cli"])
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .args([
            "--env",
            &format!("DAPR_HTTP_ENDPOINT={}", server.endpoint()),
        ])
        .args(["--env", "SESSION_STORE=statestore"])
        .arg(&app);
    let process = dapr_session_host_tests::process::Process::spawn(
        "wasmtime serve",
        cmd,
        &dir.path().join("wasmtime.log"),
    )
    .unwrap();
    let http = Http::new(format!("http://127.0.0.1:{port}"));
    let probe = http.base.clone();
    let up =
        dapr_session_host_tests::process::wait_until(std::time::Duration::from_secs(60), || {
            let probe = probe.clone();
            async move {
                tokio::net::TcpStream::connect(probe.trim_start_matches("http://"))
                    .await
                    .is_ok()
            }
        })
        .await;
    assert!(
        up,
        "wasmtime serve did not listen:\n{}",
        process.log_tail(30)
    );
    assert_eq!(http.get("/healthz").await.status, 200);
    conversation(&http).await;
    drop(process);
}

/// The README's Rust recipe, as written there, with the product host crate alone: compile
/// once, instances from `InstancePre`, a shared keep-alive pool, typed errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_host_recipe() {
    use dapr_session_host::{Host, InstanceOptions, Pool, SessionError, config};
    let server = DaprServer::start(ServerConfig::default()).await.unwrap();
    let endpoint = server.endpoint();
    let wasm = dapr_session_host_tests::host::component();
    check_fresh(&wasm).unwrap();

    let host = Host::from_file(&wasm).unwrap(); // compiles the component once
    let mut instance = host.instance().await.unwrap(); // cheap: InstancePre
    let session = instance
        .open("user-123", &config(&endpoint, "statestore"))
        .await
        .unwrap();
    instance
        .add_items(session, &[r#"{"role":"user","content":"hi"}"#.to_string()])
        .await
        .unwrap();
    let history = instance.get_items(session, Some(20)).await.unwrap();
    assert_eq!(history, [r#"{"role":"user","content":"hi"}"#]);

    // Replicas share a keep-alive pool; a bad item is a typed error and stores nothing.
    let pool = Pool::new();
    let mut replica = host
        .instance_with(InstanceOptions {
            transport: Some(std::sync::Arc::new(pool.clone())),
            ..Default::default()
        })
        .await
        .unwrap();
    let s = replica
        .open("user-123", &config(&endpoint, "statestore"))
        .await
        .unwrap();
    let err = replica
        .add_items(s, &["[1]".to_string()])
        .await
        .unwrap_err();
    assert!(
        matches!(err.session(), Some(SessionError::InvalidInput(i)) if i.item_index == Some(0)),
        "{err}"
    );
    assert_eq!(replica.get_items(s, None).await.unwrap().len(), 1);
    assert!(pool.requests() >= 1);
}
