//! The `compat` layout shares sessions with the real Python `DaprSession`
//! (`openai-agents[dapr]` from PyPI), through one daprd with Redis: what the component writes,
//! Python reads; what Python writes, the component reads, pops and appends to; what the
//! component compacts (`replace`, `replace-suffix`) or trims (`max-items`), Python reads as
//! the new history.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use dapr_session_host_tests::daprd::{self, ComponentSpec, Daprd, DaprdOptions};
use dapr_session_host_tests::host::{Host, Layout, SessionError, config};
use dapr_session_host_tests::python::{self, PythonDapr};
use dapr_session_host_tests::redis::RedisServer;
use serde_json::{Value, json};

const TOKEN: &str = "interop-token";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn parsed(items: &[String]) -> Vec<Value> {
    items
        .iter()
        .map(|i| serde_json::from_str(i).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_component_share_sessions() {
    if matches!(daprd::binary(), Err(daprd::Unavailable::NoGo)) && !ci() {
        eprintln!(
            "\n!!! SKIPPING Python interop: {}\n",
            daprd::Unavailable::NoGo
        );
        return;
    }
    let python = match python::python() {
        Ok(p) => p,
        Err(e) if !ci() => {
            eprintln!("\n!!! SKIPPING Python interop: {e:#}\n");
            return;
        }
        Err(e) => panic!("{e:#}"),
    };
    let redis = RedisServer::start().await.unwrap();
    let daprd = Daprd::start(DaprdOptions {
        app_id: "interop".into(),
        components: vec![ComponentSpec::redis("statestore", &redis.address())],
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
    let host = Host::new().unwrap();
    let mut inst = host.instance().await.unwrap();
    let mut cfg = config(&daprd.endpoint(), "statestore");
    cfg.api_token = Some(TOKEN.into());
    cfg.layout = Some(Layout::Compat);

    // Component → Python.
    let written = vec![
        json!({"role": "user", "content": "Wie spät ist es? 😊"}).to_string(),
        json!({"type": "function_call", "call_id": "c1", "name": "clock", "arguments": "{\"tz\":\"UTC\"}"}).to_string(),
        json!({"role": "assistant", "content": "Zwölf Uhr, <noon> & \"quoted\""}).to_string(),
    ];
    let s = inst.open("from-component", &cfg).await.unwrap();
    inst.add_items(s, &written).await.unwrap();
    let seen = py.run("from-component", "get", None).unwrap();
    assert_eq!(
        seen,
        Value::Array(parsed(&written)),
        "Python reads what the component wrote"
    );
    assert_eq!(
        py.run("from-component", "get", Some("1")).unwrap(),
        json!([parsed(&written)[2]])
    );

    // Python → component: read, pop, append; Python sees the result.
    let py_items = json!([
        {"role": "user", "content": "from python"},
        {"role": "assistant", "content": "ünïcødé reply"},
        {"role": "user", "content": "last python item"},
    ]);
    py.run("from-python", "add", Some(&py_items.to_string()))
        .unwrap();
    let p = inst.open("from-python", &cfg).await.unwrap();
    let got = inst.get_items(p, None).await.unwrap();
    assert_eq!(
        Value::Array(parsed(&got)),
        py_items,
        "the component reads what Python wrote"
    );
    let popped = inst.pop_item(p).await.unwrap().unwrap();
    assert_eq!(serde_json::from_str::<Value>(&popped).unwrap(), py_items[2]);
    let appended = json!({"role": "assistant", "content": "appended by the component"}).to_string();
    inst.add_items(p, std::slice::from_ref(&appended))
        .await
        .unwrap();
    let after = py.run("from-python", "get", None).unwrap();
    assert_eq!(
        after,
        json!([
            py_items[0],
            py_items[1],
            serde_json::from_str::<Value>(&appended).unwrap()
        ])
    );
    // Python appends again after the component, and pops what the component added last.
    py.run(
        "from-python",
        "add",
        Some(&json!([{"role": "user", "content": "python again"}]).to_string()),
    )
    .unwrap();
    assert_eq!(
        py.run("from-python", "pop", None).unwrap(),
        json!({"role": "user", "content": "python again"})
    );
    assert_eq!(inst.get_items(p, None).await.unwrap().len(), 3);
    // Metadata written by Python is read by the component (seconds become milliseconds).
    let meta = inst.metadata(p).await.unwrap();
    let created = meta.created_at.unwrap();
    assert!(
        created % 1000 == 0 && created > 1_600_000_000_000,
        "{meta:?}"
    );
    // Clearing from either side empties the session for both.
    py.run("from-component", "clear", None).unwrap();
    assert!(inst.get_items(s, None).await.unwrap().is_empty());
    inst.clear(p).await.unwrap();
    assert_eq!(py.run("from-python", "get", None).unwrap(), json!([]));

    // Compaction: Python writes a history, the component replaces its newest part and then
    // all of it; Python reads each new history, and a Python write makes the component's
    // snapshot stale.
    let history: Vec<Value> = (0..6)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": format!("turn {i}")}))
        .collect();
    py.run(
        "compacted",
        "add",
        Some(&Value::Array(history.clone()).to_string()),
    )
    .unwrap();
    let c = inst.open("compacted", &cfg).await.unwrap();
    let window = inst.get_snapshot(c, Some(4)).await.unwrap();
    assert_eq!(window.first, 2);
    assert_eq!(Value::Array(parsed(&window.items)), json!(history[2..]));
    let summary = json!({"role": "assistant", "content": "Zusammenfassung: turns 2-5 ✓"});
    inst.replace_suffix(
        c,
        window.first,
        &[summary.to_string()],
        Some(&window.version),
    )
    .await
    .unwrap();
    assert_eq!(
        py.run("compacted", "get", None).unwrap(),
        json!([history[0], history[1], summary]),
        "Python reads the history after replace-suffix"
    );
    // A Python append moves the version: the stale snapshot is refused, nothing changes.
    let stale = inst.get_snapshot(c, None).await.unwrap();
    py.run(
        "compacted",
        "add",
        Some(&json!([{"role": "user", "content": "late"}]).to_string()),
    )
    .unwrap();
    let refused = inst
        .replace(c, &[summary.to_string()], Some(&stale.version))
        .await;
    assert!(
        matches!(
            refused.as_ref().err().and_then(|e| e.session()),
            Some(SessionError::Changed)
        ),
        "{refused:?}"
    );
    let with_late = json!([history[0], history[1], summary, {"role": "user", "content": "late"}]);
    assert_eq!(py.run("compacted", "get", None).unwrap(), with_late);
    // The whole history, unconditionally; Python reads it, pops from it and appends to it.
    let fresh = vec![
        json!({"role": "assistant", "content": "summary of everything"}).to_string(),
        json!({"role": "user", "content": "next question"}).to_string(),
    ];
    inst.replace(c, &fresh, None).await.unwrap();
    assert_eq!(
        py.run("compacted", "get", None).unwrap(),
        Value::Array(parsed(&fresh))
    );
    assert_eq!(py.run("compacted", "pop", None).unwrap(), parsed(&fresh)[1]);
    py.run(
        "compacted",
        "add",
        Some(&json!([{"role": "user", "content": "python after"}]).to_string()),
    )
    .unwrap();
    assert_eq!(
        Value::Array(parsed(&inst.get_items(c, None).await.unwrap())),
        json!([parsed(&fresh)[0], {"role": "user", "content": "python after"}])
    );

    // Retention: a component bounded to 3 items trims a Python-written session on its write.
    let mut bounded = cfg.clone();
    bounded.max_items = Some(3);
    let b = inst.open("compacted", &bounded).await.unwrap();
    let more: Vec<String> = (0..3)
        .map(|i| json!({"role": "user", "content": format!("more {i}")}).to_string())
        .collect();
    inst.add_items(b, &more).await.unwrap();
    assert_eq!(
        py.run("compacted", "get", None).unwrap(),
        Value::Array(parsed(&more))
    );
}
