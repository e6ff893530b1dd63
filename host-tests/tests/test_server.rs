//! The Dapr-compatible test server answers like daprd (v1.18, `state.in-memory`), and its
//! fault injection and counters work. `tests/differential.rs` checks the same answers
//! against a real daprd.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::time::Duration;

use dapr_session_host_tests::client::DaprHttp;
use dapr_session_host_tests::dapr_server::{
    Action, DaprServer, Fault, Route, ServerConfig, StoreConfig,
};
use http::Method;
use serde_json::{Value, json};

async fn server() -> (DaprServer, DaprHttp) {
    let s = DaprServer::start_default().await.unwrap();
    let c = DaprHttp::new(&s.endpoint());
    (s, c)
}

async fn save(c: &DaprHttp, body: Value) -> dapr_session_host_tests::client::Answer {
    c.send(
        Method::POST,
        "/v1.0/state/statestore",
        Some(serde_json::to_vec(&body).unwrap()),
        &[],
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn get_save_delete_and_etags() {
    let (_s, c) = server().await;
    let missing = c.get("statestore", "k").await.unwrap();
    assert_eq!(missing.status, 204);
    assert!(missing.body.is_empty());
    assert!(missing.header("etag").is_none());

    assert_eq!(
        save(&c, json!([{"key": "k", "value": {"b": 1, "a": "x<y"}}]))
            .await
            .status,
        204
    );
    let got = c.get("statestore", "k").await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("application/json"));
    // Re-encoded the way Go does it: keys sorted, '<' escaped.
    assert_eq!(&got.body[..], br#"{"a":"x\u003cy","b":1}"#);
    let etag = got.header("etag").unwrap().to_string();

    let stale = save(&c, json!([{"key": "k", "value": 2, "etag": "not-it", "options": {"concurrency": "first-write"}}])).await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.error_code().as_deref(), Some("ERR_STATE_SAVE"));
    let fresh = save(
        &c,
        json!([{"key": "k", "value": 2, "etag": etag, "options": {"concurrency": "first-write"}}]),
    )
    .await;
    assert_eq!(fresh.status, 204);
    let after = c.get("statestore", "k").await.unwrap();
    assert_ne!(
        after.header("etag"),
        Some(etag.as_str()),
        "the etag must change on write"
    );

    let create_again = save(
        &c,
        json!([{"key": "k", "value": 3, "options": {"concurrency": "first-write"}}]),
    )
    .await;
    assert_eq!(
        create_again.status, 409,
        "first-write without an etag on an existing key"
    );
    let etag_for_missing = save(&c, json!([{"key": "nope", "value": 3, "etag": "1"}])).await;
    assert_eq!(etag_for_missing.status, 409);

    let bad_delete = c
        .send(
            Method::DELETE,
            "/v1.0/state/statestore/k",
            None,
            &[("if-match", "wrong")],
        )
        .await
        .unwrap();
    assert_eq!(bad_delete.status, 409);
    assert_eq!(bad_delete.error_code().as_deref(), Some("ERR_STATE_DELETE"));
    assert_eq!(c.delete("statestore", "k").await.unwrap().status, 204);
    assert_eq!(
        c.delete("statestore", "k").await.unwrap().status,
        204,
        "deleting a missing key"
    );
}

#[tokio::test]
async fn bulk_and_transactions() {
    let (_s, c) = server().await;
    save(
        &c,
        json!([{"key": "a", "value": "A"}, {"key": "b", "value": {"x": 1}}]),
    )
    .await;
    let bulk = c
        .send(
            Method::POST,
            "/v1.0/state/statestore/bulk",
            Some(br#"{"keys":["a","missing","b"]}"#.to_vec()),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(bulk.status, 200);
    let items = bulk.json();
    assert_eq!(items[0]["data"], json!("A"));
    assert_eq!(items[1], json!({"key": "missing"}));
    assert_eq!(items[2]["data"], json!({"x": 1}));
    assert!(items[2]["etag"].is_string());

    let etag_a = c
        .get("statestore", "a")
        .await
        .unwrap()
        .header("etag")
        .unwrap()
        .to_string();
    let tx = |ops: Value| {
        let c = c.clone();
        async move {
            c.send(
                Method::POST,
                "/v1.0/state/statestore/transaction",
                Some(serde_json::to_vec(&json!({"operations": ops})).unwrap()),
                &[],
            )
            .await
            .unwrap()
        }
    };
    let stale = tx(json!([
        {"operation": "upsert", "request": {"key": "c", "value": 1}},
        {"operation": "upsert", "request": {"key": "a", "value": "A2", "etag": "stale"}},
    ]))
    .await;
    assert_eq!(stale.status, 500);
    assert_eq!(stale.error_code().as_deref(), Some("ERR_STATE_TRANSACTION"));
    assert_eq!(
        c.get("statestore", "c").await.unwrap().status,
        204,
        "a failed transaction applies nothing"
    );
    let ok = tx(json!([
        {"operation": "upsert", "request": {"key": "c", "value": 1}},
        {"operation": "upsert", "request": {"key": "a", "value": "A2", "etag": etag_a}},
        {"operation": "delete", "request": {"key": "b"}},
    ]))
    .await;
    assert_eq!(ok.status, 204);
    assert_eq!(c.get("statestore", "a").await.unwrap().json(), json!("A2"));
    assert_eq!(c.get("statestore", "b").await.unwrap().status, 204);
    let unknown = tx(json!([{"operation": "merge", "request": {"key": "c"}}])).await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.error_code().as_deref(),
        Some("ERR_NOT_SUPPORTED_STATE_OPERATION")
    );
}

#[tokio::test]
async fn transactions_refused_by_a_non_transactional_store() {
    let s = DaprServer::start(ServerConfig {
        stores: vec![StoreConfig {
            name: "plain".into(),
            transactional: false,
        }],
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let c = DaprHttp::new(&s.endpoint());
    let r = c
        .send(
            Method::POST,
            "/v1.0/state/plain/transaction",
            Some(
                br#"{"operations":[{"operation":"upsert","request":{"key":"k","value":1}}]}"#
                    .to_vec(),
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert_eq!(
        r.error_code().as_deref(),
        Some("ERR_STATE_STORE_NOT_SUPPORTED")
    );
    let meta = c
        .send(Method::GET, "/v1.0/metadata", None, &[])
        .await
        .unwrap()
        .json();
    let caps = meta["components"][0]["capabilities"].as_array().unwrap();
    assert!(caps.contains(&json!("ETAG")) && !caps.contains(&json!("TRANSACTIONAL")));
}

#[tokio::test]
async fn ttl_expiry() {
    let (s, c) = server().await;
    save(
        &c,
        json!([{"key": "t", "value": 1, "metadata": {"ttlInSeconds": "60"}}]),
    )
    .await;
    let got = c.get("statestore", "t").await.unwrap();
    let expire = got.header("metadata.ttlexpiretime").unwrap();
    assert!(expire.ends_with('Z') && expire.len() == 20, "{expire}");
    s.advance_clock(Duration::from_secs(61));
    assert_eq!(c.get("statestore", "t").await.unwrap().status, 204);
    let bad = save(
        &c,
        json!([{"key": "t", "value": 1, "metadata": {"ttlInSeconds": "soon"}}]),
    )
    .await;
    assert_eq!(bad.status, 500);
    assert_eq!(bad.error_code().as_deref(), Some("ERR_STATE_SAVE"));
}

#[tokio::test]
async fn errors_like_daprd() {
    let (_s, c) = server().await;
    let nostore = c.get("nostore", "k").await.unwrap();
    assert_eq!(nostore.status, 400);
    assert_eq!(
        nostore.error_code().as_deref(),
        Some("ERR_STATE_STORE_NOT_FOUND")
    );
    assert_eq!(
        nostore.json()["details"][0]["reason"],
        json!("DAPR_STATE_NOT_FOUND")
    );
    let illegal = c.get("statestore", "a||b").await.unwrap();
    assert_eq!(illegal.status, 400);
    assert_eq!(
        illegal.error_code().as_deref(),
        Some("ERR_MALFORMED_REQUEST")
    );
    assert_eq!(illegal.json()["details"].as_array().unwrap().len(), 3);
    for body in [
        &b"{}"[..],
        b"foobar",
        b"[{\"key\":\"k\",\"etag\":1}]",
        b"[{\"key\":\"k\",\"metadata\":{\"ttlInSeconds\":5}}]",
        b"[{}]",
    ] {
        let r = c
            .send(
                Method::POST,
                "/v1.0/state/statestore",
                Some(body.to_vec()),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(r.error_code().as_deref(), Some("ERR_MALFORMED_REQUEST"));
    }
    let no_key = c
        .send(Method::GET, "/v1.0/state/statestore", None, &[])
        .await
        .unwrap();
    assert_eq!(no_key.status, 404);
    assert_eq!(
        c.send(Method::GET, "/v1.0/healthz", None, &[])
            .await
            .unwrap()
            .status,
        204
    );
}

#[tokio::test]
async fn api_token() {
    let s = DaprServer::start(ServerConfig {
        api_token: Some("sesame".into()),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let anonymous = DaprHttp::new(&s.endpoint());
    let refused = anonymous.get("statestore", "k").await.unwrap();
    assert_eq!(refused.status, 401);
    assert_eq!(&refused.body[..], b"invalid api token\n");
    assert_eq!(refused.header("content-type"), Some("text/plain"));
    assert_eq!(
        anonymous
            .send(Method::GET, "/v1.0/metadata", None, &[])
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        anonymous
            .send(Method::GET, "/v1.0/healthz", None, &[])
            .await
            .unwrap()
            .status,
        204
    );
    let wrong = DaprHttp::new(&s.endpoint()).with_token(Some("nope"));
    assert_eq!(wrong.get("statestore", "k").await.unwrap().status, 401);
    let right = DaprHttp::new(&s.endpoint()).with_token(Some("sesame"));
    assert_eq!(right.get("statestore", "k").await.unwrap().status, 204);
}

#[tokio::test]
async fn key_encoding() {
    let (s, c) = server().await;
    for key in ["a/b", "sp ace", "plus+", "100%", "ünï", "q?x", "h#x"] {
        assert_eq!(
            c.put("statestore", key, &json!(key)).await.unwrap().status,
            204,
            "{key}"
        );
        assert_eq!(
            c.get("statestore", key).await.unwrap().json(),
            json!(key),
            "{key}"
        );
    }
    let keys = s.keys("statestore");
    assert!(
        keys.contains(&"a/b".to_string()) && keys.contains(&"plus+".to_string()),
        "{keys:?}"
    );
}

#[tokio::test]
async fn faults_and_counters() {
    let (s, c) = server().await;
    let before = s.stats().snapshot();
    s.faults().add(Fault::on(
        Route::Save,
        Action::Status(503, "ERR_STATE_SAVE"),
    ));
    let r = c.put("statestore", "k", &json!(1)).await.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(
        c.get("statestore", "k").await.unwrap().status,
        204,
        "a refused request is not applied"
    );

    s.faults()
        .add(Fault::on(Route::Save, Action::ResetAfterApply));
    assert!(
        c.put("statestore", "k", &json!(2)).await.is_err(),
        "the connection must drop"
    );
    assert_eq!(
        c.get("statestore", "k").await.unwrap().json(),
        json!(2),
        "but the write was applied"
    );

    s.faults().add(Fault::on(Route::Get, Action::Reset));
    assert!(c.get("statestore", "k").await.is_err());

    s.faults().add(Fault::on(Route::Get, Action::TruncateBody));
    assert!(
        c.get("statestore", "k").await.is_err(),
        "a truncated body is an error"
    );

    s.faults()
        .add(Fault::on(Route::Get, Action::Delay(Duration::from_millis(300))).containing("slow"));
    let t0 = std::time::Instant::now();
    c.get("statestore", "fast").await.unwrap();
    assert!(t0.elapsed() < Duration::from_millis(250));
    c.get("statestore", "slow").await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));

    s.faults().add(Fault::on(Route::Get, Action::Hang));
    let hung = tokio::time::timeout(Duration::from_millis(300), c.get("statestore", "k")).await;
    assert!(hung.is_err(), "a hung request must not answer");
    assert_eq!(s.faults().pending(), 0);

    let delta = s.stats().snapshot().since(&before);
    let saves = delta.routes[&Route::Save];
    assert_eq!(saves.requests, 2);
    assert!(saves.request_bytes > 20);
    assert!(delta.routes[&Route::Get].requests >= 6);
    assert!(delta.bytes() > saves.request_bytes);
    assert_eq!(
        s.stats()
            .log()
            .iter()
            .filter(|l| l.route == Route::Save)
            .count(),
        2
    );
}
