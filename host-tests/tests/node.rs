//! The Node example (`examples/node`): the component transpiled by jco (the versions pinned
//! in its `package-lock.json`), driven by `main.mjs` through `session.mjs`, against the test
//! server and against daprd with Redis. Errors arrive as typed JavaScript exceptions.
//!
//! Needs `node` and `npm` (`npm ci` fetches jco and preview2-shim from the registry, or npm's
//! cache); without them the tests are skipped loudly, and with `CI=true` they fail.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dapr_session_host_tests::cache::CacheLock;
use dapr_session_host_tests::dapr_server::{DaprServer, ServerConfig};
use dapr_session_host_tests::daprd::{self, ComponentSpec, Daprd, DaprdOptions};
use dapr_session_host_tests::host::{check_fresh, component};
use dapr_session_host_tests::process::TempDir;
use dapr_session_host_tests::redis::{RedisServer, which};
use serde_json::{Value, json};

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("node")
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `npm ci` in the example, once per test process (and one at a time in this checkout: it
/// empties `node_modules` first). `false` (skip) without node and npm, outside CI.
fn installed() -> bool {
    static DONE: OnceLock<bool> = OnceLock::new();
    *DONE.get_or_init(|| {
        let Some(npm) = which("npm").filter(|_| which("node").is_some()) else {
            assert!(!ci(), "CI=true: node and npm are required");
            eprintln!("\n!!! SKIPPING the Node example: node or npm is not on PATH\n");
            return false;
        };
        let example = example_dir();
        let _lock =
            CacheLock::acquire(&example.join("node_modules.lock"), "running npm ci").unwrap();
        run(
            Command::new(npm)
                .args(["ci", "--no-audit", "--no-fund", "--prefer-offline"])
                .current_dir(&example),
            "npm ci",
        );
        true
    })
}

/// A directory holding the example's program, the component under test transpiled into
/// `generated/` (as `npm run transpile` does), and a link to the example's `node_modules`.
fn prepared() -> Option<TempDir> {
    if !installed() {
        return None;
    }
    let example = example_dir();
    let wasm = component();
    check_fresh(&wasm).unwrap();
    let dir = TempDir::new("node").unwrap();
    for file in ["main.mjs", "session.mjs", "package.json"] {
        std::fs::copy(example.join(file), dir.path().join(file)).unwrap();
    }
    std::os::unix::fs::symlink(
        example.join("node_modules"),
        dir.path().join("node_modules"),
    )
    .unwrap();
    run(
        Command::new(which("node").unwrap())
            .arg(example.join("node_modules/@bytecodealliance/jco/dist/jco.js"))
            .arg("transpile")
            .arg(&wasm)
            .args(["--name", "dapr_session", "--out-dir"])
            .arg(dir.path().join("generated")),
        "jco transpile",
    );
    Some(dir)
}

/// Runs `main.mjs` against `endpoint` and returns its steps by name.
fn conversation(dir: &Path, endpoint: &str, token: &str) -> serde_json::Map<String, Value> {
    let node = which("node").unwrap();
    let stdout = run(
        Command::new(node)
            .arg("main.mjs")
            .args([endpoint, "statestore"])
            .env("DAPR_API_TOKEN", token)
            .env_remove("DAPR_HTTP_ENDPOINT")
            .current_dir(dir),
        "node main.mjs",
    );
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            (v["step"].as_str().unwrap().to_string(), v["result"].clone())
        })
        .collect()
}

fn check(steps: &serde_json::Map<String, Value>) {
    let msg =
        |role: &str, content: &str| json!({"type": "message", "role": role, "content": content});
    assert_eq!(steps["ping"], "ok");
    assert_eq!(
        steps["history"],
        json!([
            msg("user", "What city is the Golden Gate Bridge in?"),
            msg("assistant", "San Francisco.")
        ])
    );
    assert_eq!(
        steps["newest-two"],
        json!([
            msg("user", "What state is it in?"),
            msg("assistant", "California.")
        ])
    );
    assert_eq!(steps["pop"], msg("assistant", "California."));
    assert_eq!(
        steps["replaced"],
        json!([msg("assistant", "California, USA.")]),
        "replace-suffix at the snapshot's position replaced the newest item"
    );
    assert_eq!(steps["stale-replace"], json!({"kind": "changed"}));
    assert_eq!(steps["metadata"]["ordered"], true);
    assert_eq!(
        steps["invalid-item"],
        json!({"error": "InvalidInputError", "kind": "invalid-input", "itemIndex": 1})
    );
    assert_eq!(
        steps["after-invalid"], 3,
        "the refused batch stored nothing"
    );
    assert_eq!(
        steps["wrong-store"],
        json!({"kind": "store-not-found", "isSessionError": true})
    );
    assert_eq!(steps["cleared"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_example_against_the_test_server() {
    let Some(dir) = prepared() else { return };
    let server = DaprServer::start(ServerConfig {
        api_token: Some("node-token".into()),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let endpoint = server.endpoint();
    let dir = dir.path().to_path_buf();
    let steps = tokio::task::spawn_blocking(move || conversation(&dir, &endpoint, "node-token"))
        .await
        .unwrap();
    check(&steps);
    assert!(
        server
            .stats()
            .log()
            .iter()
            .all(|r| r.header("dapr-api-token") == Some("node-token") || r.path == "/v1.0/healthz"),
        "every request carried the token from DAPR_API_TOKEN"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_example_against_daprd_and_redis() {
    let Some(dir) = prepared() else { return };
    if matches!(daprd::binary(), Err(daprd::Unavailable::NoGo)) && !ci() {
        eprintln!("\n!!! SKIPPING the Node example against daprd: no Go to build daprd\n");
        return;
    }
    let redis = RedisServer::start().await.unwrap();
    let daprd = Daprd::start(DaprdOptions {
        app_id: "node-example".into(),
        components: vec![ComponentSpec::redis("statestore", &redis.address())],
        api_token: Some("node-token".into()),
    })
    .await
    .unwrap();
    let endpoint = daprd.endpoint();
    let dir = dir.path().to_path_buf();
    let steps = tokio::task::spawn_blocking(move || conversation(&dir, &endpoint, "node-token"))
        .await
        .unwrap();
    check(&steps);
}
