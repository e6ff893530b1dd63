//! Injected faults: every operation of both layouts, with each kind of fault on each request it
//! makes in turn (500, 503, a hang, a reset before and after the write is applied, a truncated
//! body, a slow answer within and beyond the timeout), then 409 bursts and storms. Each trial
//! checks that the call succeeds or returns a typed error within its timeout, that a success
//! means the write is stored exactly once, that a failure left the session as it was (or, when
//! the fault hid a write that was applied, applied exactly once), and that the session works
//! afterwards. A failed `replace` or `replace-suffix` is retried as a caller would: the retry
//! must leave the new history exactly once (the conditional one fails `changed` if the first
//! attempt landed). `FAULTS_REPORT=1` prints the outcome table used in RELIABILITY.md.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dapr_session_host_tests::dapr_server::faults::{Action, Fault, Route};
use dapr_session_host_tests::dapr_server::{DaprServer, ServerConfig, StoreConfig};
use dapr_session_host_tests::host::{
    CallError, CallResult, Config, Host, Instance, Layout, SessionError, SessionHandle, config,
};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Per-request timeout of the instance under test.
const TIMEOUT_MS: u32 = 250;
/// The most any single-fault trial may take (one timed-out request plus the rest).
const BOUND: Duration = Duration::from_millis(TIMEOUT_MS as u64 * 2 + 2_500);
const SESSION: &str = "faulty";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Add,
    Pop,
    Clear,
    GetLast3,
    GetAll,
    Metadata,
    Ping,
    /// `replace` of the whole history, unconditional.
    Replace,
    /// `replace-suffix` from [`SUFFIX_START`], at the version the seeder read.
    ReplaceSuffix,
}

impl Op {
    const ALL: [Op; 9] = [
        Op::Add,
        Op::Pop,
        Op::Clear,
        Op::GetLast3,
        Op::GetAll,
        Op::Metadata,
        Op::Ping,
        Op::Replace,
        Op::ReplaceSuffix,
    ];

    fn writes(self) -> bool {
        matches!(
            self,
            Op::Add | Op::Pop | Op::Clear | Op::Replace | Op::ReplaceSuffix
        )
    }

    fn replaces(self) -> bool {
        matches!(self, Op::Replace | Op::ReplaceSuffix)
    }
}

/// Where `replace-suffix` starts: inside the oldest chunk of the `log` layout's history.
const SUFFIX_START: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Status500,
    Status503,
    Hang,
    Reset,
    ResetAfterApply,
    Truncated,
    SlowWithin,
    SlowBeyond,
}

impl Kind {
    const ALL: [Kind; 8] = [
        Kind::Status500,
        Kind::Status503,
        Kind::Hang,
        Kind::Reset,
        Kind::ResetAfterApply,
        Kind::Truncated,
        Kind::SlowWithin,
        Kind::SlowBeyond,
    ];

    fn action(self) -> Action {
        match self {
            Kind::Status500 => Action::Status(500, "ERR_STATE_STORE_FAILURE"),
            Kind::Status503 => Action::Status(503, "ERR_HEALTH_NOT_READY"),
            Kind::Hang => Action::Hang,
            Kind::Reset => Action::Reset,
            Kind::ResetAfterApply => Action::ResetAfterApply,
            Kind::Truncated => Action::TruncateBody,
            Kind::SlowWithin => Action::Delay(Duration::from_millis(u64::from(TIMEOUT_MS) / 5)),
            Kind::SlowBeyond => Action::Delay(Duration::from_millis(u64::from(TIMEOUT_MS) * 2)),
        }
    }

    /// Whether the request is applied although the client sees a failure.
    fn hides_an_applied_write(self) -> bool {
        matches!(
            self,
            Kind::ResetAfterApply | Kind::Truncated | Kind::SlowBeyond
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Variant {
    compat: bool,
    transactional: bool,
    /// The instance under test has read the session before (it bets on the head's etag).
    warm: bool,
}

impl Variant {
    fn all() -> Vec<Variant> {
        let mut out = Vec::new();
        for (compat, transactional) in [(false, true), (false, false), (true, true)] {
            for warm in [false, true] {
                out.push(Variant {
                    compat,
                    transactional,
                    warm,
                });
            }
        }
        out
    }

    fn name(self) -> String {
        format!(
            "{}{} {}",
            if self.compat { "compat" } else { "log" },
            if self.transactional {
                ""
            } else {
                " (no transactions)"
            },
            if self.warm { "warm" } else { "fresh" }
        )
    }
}

fn item(tag: &str) -> String {
    json!({"role": "user", "content": tag}).to_string()
}

/// The session `op` starts from: two batches, or, for the replaces, a history long enough
/// that the `log` layout keeps part of it in a chunk.
fn seeded(op: Op) -> Vec<String> {
    if op.replaces() {
        return (0..90).map(|i| item(&format!("h{i}"))).collect();
    }
    ["a0", "a1", "a2", "b0", "b1"]
        .iter()
        .map(|t| item(t))
        .collect()
}

/// Batches the seeder adds `seeded(op)` in.
fn seed_batch(op: Op) -> usize {
    if op.replaces() { 10 } else { 3 }
}

fn added() -> Vec<String> {
    vec![item("n0"), item("n1")]
}

/// What the replaces write.
fn replacement() -> Vec<String> {
    vec![item("r0"), item("r1"), item("r2")]
}

/// The session after `op` applied once to the seeded one.
fn applied(op: Op) -> Vec<String> {
    let mut s = seeded(op);
    match op {
        Op::Add => s.extend(added()),
        Op::Pop => {
            s.pop();
        }
        Op::Clear => s.clear(),
        Op::Replace => s = replacement(),
        Op::ReplaceSuffix => {
            s.truncate(SUFFIX_START);
            s.extend(replacement());
        }
        _ => {}
    }
    s
}

async fn start_server(v: Variant) -> DaprServer {
    DaprServer::start(ServerConfig {
        stores: vec![StoreConfig {
            name: "statestore".into(),
            transactional: v.transactional,
        }],
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

fn cfg(server: &DaprServer, v: Variant) -> Config {
    let mut c = config(&server.endpoint(), "statestore");
    c.timeout_ms = Some(TIMEOUT_MS);
    c.layout = Some(if v.compat {
        Layout::Compat
    } else {
        Layout::Log
    });
    c
}

/// The config of the instances that seed and check the session, with the default request
/// timeout: they are not under test, and a busy machine must not fail them.
fn calm(server: &DaprServer, v: Variant) -> Config {
    Config {
        timeout_ms: None,
        ..cfg(server, v)
    }
}

/// The instance under test, with the session open, and the version the seeder left.
struct Prepared {
    inst: Instance,
    h: SessionHandle,
    version: String,
}

/// Seeds the session for `op` and opens it in the instance under test.
async fn prepare(host: &Host, server: &DaprServer, v: Variant, op: Op) -> Prepared {
    let c = cfg(server, v);
    // Seeding is not under test: the default timeout, so a busy machine cannot fail it.
    let seeding = calm(server, v);
    let mut seeder = host.instance().await.unwrap();
    let s = seeder.open(SESSION, &seeding).await.unwrap();
    let seed = seeded(op);
    for batch in seed.chunks(seed_batch(op)) {
        seeder.add_items(s, batch).await.unwrap();
    }
    let version = seeder.get_snapshot(s, Some(0)).await.unwrap().version;
    let mut inst = host.instance().await.unwrap();
    let h = inst.open(SESSION, &c).await.unwrap();
    if v.warm {
        // Setup, not under test: a read that times out on a busy machine is tried again.
        let mut read = inst.get_items(h, None).await;
        for _ in 0..5 {
            match &read {
                Err(CallError::Session(SessionError::Timeout)) => {
                    read = inst.get_items(h, None).await;
                }
                _ => break,
            }
        }
        assert_eq!(read.unwrap(), seed);
    }
    Prepared { inst, h, version }
}

/// What an operation returned, reduced to what the checks need.
#[derive(Debug)]
enum Returned {
    Items(Vec<String>),
    Popped(Option<String>),
    Nothing,
}

async fn run(p: &mut Prepared, op: Op) -> CallResult<Returned> {
    let (inst, h) = (&mut p.inst, p.h);
    match op {
        Op::Add => inst.add_items(h, &added()).await.map(|_| Returned::Nothing),
        Op::Pop => inst.pop_item(h).await.map(Returned::Popped),
        Op::Clear => inst.clear(h).await.map(|_| Returned::Nothing),
        Op::GetLast3 => inst.get_items(h, Some(3)).await.map(Returned::Items),
        Op::GetAll => inst.get_items(h, None).await.map(Returned::Items),
        Op::Metadata => inst.metadata(h).await.map(|m| {
            assert_eq!(m.session_id, SESSION);
            Returned::Nothing
        }),
        Op::Ping => inst.ping(h).await.map(|_| Returned::Nothing),
        Op::Replace => inst
            .replace(h, &replacement(), None)
            .await
            .map(|_| Returned::Nothing),
        Op::ReplaceSuffix => inst
            .replace_suffix(h, SUFFIX_START as u64, &replacement(), Some(&p.version))
            .await
            .map(|_| Returned::Nothing),
    }
}

/// Requests `op` makes when nothing goes wrong.
async fn requests_made(host: &Host, v: Variant, op: Op) -> u32 {
    let server = start_server(v).await;
    let mut p = prepare(host, &server, v, op).await;
    let before = server.stats().snapshot().requests();
    run(&mut p, op).await.unwrap();
    u32::try_from(server.stats().snapshot().requests() - before).unwrap()
}

fn error_name(e: &SessionError) -> String {
    match e {
        SessionError::InvalidInput(_) => "invalid-input".into(),
        SessionError::Conflict(_) => "conflict".into(),
        SessionError::Unavailable(_) => "unavailable".into(),
        SessionError::Timeout => "timeout".into(),
        SessionError::Unauthorized => "unauthorized".into(),
        SessionError::StoreNotFound(_) => "store-not-found".into(),
        SessionError::Corrupt(_) => "corrupt".into(),
        SessionError::Store(s) => format!("store {}", s.status),
        SessionError::Changed => "changed".into(),
        SessionError::Interrupted(_) => "interrupted".into(),
        SessionError::Unsupported(_) => "unsupported".into(),
        SessionError::TooManyItems(_) => "too-many-items".into(),
        SessionError::Protocol(_) => "protocol".into(),
        SessionError::Internal(_) => "internal".into(),
    }
}

/// Outcomes per (variant, op, fault kind): "ok", "ok+applied", an error name, with
/// "(applied)" when the hidden write had landed.
type Outcomes = Arc<Mutex<BTreeMap<(String, Op, Kind), BTreeMap<String, u32>>>>;

/// One trial: `kind` on request `position` of `op`.
async fn trial(host: Host, v: Variant, op: Op, kind: Kind, position: u32, outcomes: Outcomes) {
    let what = format!("{} {op:?} with {kind:?} on request {position}", v.name());
    let server = start_server(v).await;
    let mut p = prepare(&host, &server, v, op).await;
    server
        .faults()
        .add(Fault::any(kind.action()).after(position));
    let started = Instant::now();
    let result = run(&mut p, op).await;
    let elapsed = started.elapsed();
    assert_eq!(
        server.faults().pending(),
        0,
        "{what}: the fault never fired"
    );
    assert!(elapsed < BOUND, "{what}: took {elapsed:?}");
    // A delayed write lands after the client gave up: let it.
    tokio::time::sleep(Duration::from_millis(u64::from(TIMEOUT_MS) * 2)).await;

    let mut checker = host.instance().await.unwrap();
    let s = checker.open(SESSION, &calm(&server, v)).await.unwrap();
    let mut stored = checker.get_items(s, None).await.unwrap();
    let seeded = seeded(op);
    let mut outcome = match &result {
        Ok(returned) => {
            assert_eq!(
                stored,
                applied(op),
                "{what}: acknowledged, but stored is different"
            );
            match (op, returned) {
                (Op::Pop, Returned::Popped(p)) => {
                    assert_eq!(p.as_deref(), seeded.last().map(String::as_str), "{what}")
                }
                (Op::GetLast3, Returned::Items(items)) => {
                    assert_eq!(items[..], seeded[2..], "{what}")
                }
                (Op::GetAll, Returned::Items(items)) => assert_eq!(*items, seeded, "{what}"),
                _ => {}
            }
            "ok".to_string()
        }
        Err(CallError::Trap(e)) => panic!("{what}: trapped: {e:#}"),
        Err(CallError::Session(e)) => {
            let name = error_name(e);
            assert!(
                !matches!(e, SessionError::InvalidInput(_) | SessionError::Corrupt(_)),
                "{what}: {e:?} blames the caller or the data for a transport fault"
            );
            if stored == seeded {
                name
            } else if op.writes() && kind.hides_an_applied_write() && stored == applied(op) {
                format!("{name} (applied)")
            } else if v.compat && op == Op::Clear && stored.is_empty() {
                // Like the Python DaprSession, compat's clear deletes the items, then the
                // metadata: idempotent, and a failure between the two leaves the metadata.
                format!("{name} (items deleted)")
            } else {
                panic!("{what}: failed with {e:?} and left {stored:?}")
            }
        }
    };
    // A failed replace is retried, as a caller would, from the same instance: the new
    // history lands exactly once (the conditional replace is refused if the first landed).
    if op.replaces() && result.is_err() {
        let retried = run(&mut p, op).await;
        let landed = stored == applied(op);
        match (&retried, op, landed) {
            (Ok(_), _, _) => outcome.push_str("; retry ok"),
            (Err(CallError::Session(SessionError::Changed)), Op::ReplaceSuffix, true) => {
                outcome.push_str("; retry changed")
            }
            _ => panic!("{what}: the retry returned {retried:?}"),
        }
        stored = checker.get_items(s, None).await.unwrap();
        assert_eq!(stored, applied(op), "{what}: after the retry");
    }
    // The session works afterwards, from the instance that saw the fault too.
    let extra = item("after");
    p.inst
        .add_items(p.h, std::slice::from_ref(&extra))
        .await
        .unwrap_or_else(|e| panic!("{what}: the next add failed: {e}"));
    let mut expected = stored;
    expected.push(extra);
    assert_eq!(
        checker.get_items(s, None).await.unwrap(),
        expected,
        "{what}: after one more add"
    );
    *outcomes
        .lock()
        .unwrap()
        .entry((v.name(), op, kind))
        .or_default()
        .entry(outcome)
        .or_default() += 1;
}

fn report(title: &str, outcomes: &Outcomes) {
    if !std::env::var("FAULTS_REPORT").is_ok_and(|v| v == "1") {
        return;
    }
    let outcomes = outcomes.lock().unwrap();
    println!("\n{title}\n| variant | operation | fault | outcomes (trials) |\n|---|---|---|---|");
    for ((variant, op, kind), seen) in outcomes.iter() {
        let seen: Vec<String> = seen.iter().map(|(o, n)| format!("{o} ×{n}")).collect();
        println!("| {variant} | {op:?} | {kind:?} | {} |", seen.join(", "));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_on_every_request_of_every_operation() {
    let host = Host::new().unwrap();
    let outcomes = Outcomes::default();
    let limit = Arc::new(Semaphore::new(12));
    let mut trials = JoinSet::new();
    let mut count = 0;
    for v in Variant::all() {
        for op in Op::ALL {
            let n = requests_made(&host, v, op).await;
            assert!(n >= 1, "{} {op:?} made no request", v.name());
            for position in 0..n {
                for kind in Kind::ALL {
                    let (host, outcomes, limit) = (host.clone(), outcomes.clone(), limit.clone());
                    count += 1;
                    trials.spawn(async move {
                        let _permit = limit.acquire_owned().await.unwrap();
                        trial(host, v, op, kind, position, outcomes).await
                    });
                }
            }
        }
    }
    while let Some(r) = trials.join_next().await {
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    println!("{count} fault trials passed");
    report("Single faults", &outcomes);
}

/// 409s on every guarded write (`first-write`: an etag to match, or a key that must be
/// absent) for `times` writes. Unguarded writes (compat's clear deletes with last-write) are
/// left alone: another writer cannot make daprd refuse those.
fn conflicts(server: &DaprServer, times: u32) {
    for route in [Route::Save, Route::Transaction] {
        server.faults().add(
            Fault::on(route, Action::Conflict)
                .containing("first-write")
                .times(times),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflict_bursts_are_retried_and_storms_give_up_typed() {
    let host = Host::new().unwrap();
    let limit = Arc::new(Semaphore::new(12));
    let mut tasks = JoinSet::new();
    for v in Variant::all() {
        for op in [Op::Add, Op::Pop, Op::Clear, Op::Replace, Op::ReplaceSuffix] {
            for storm in [false, true] {
                let (host, limit) = (host.clone(), limit.clone());
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await.unwrap();
                    let what = format!(
                        "{} {op:?} {}",
                        v.name(),
                        if storm { "storm" } else { "burst" }
                    );
                    let server = start_server(v).await;
                    let mut p = prepare(&host, &server, v, op).await;
                    conflicts(&server, if storm { 100_000 } else { 5 });
                    let started = Instant::now();
                    let result = run(&mut p, op).await;
                    let elapsed = started.elapsed();
                    server.faults().clear();
                    let mut checker = host.instance().await.unwrap();
                    let s = checker.open(SESSION, &calm(&server, v)).await.unwrap();
                    let stored = checker.get_items(s, None).await.unwrap();
                    if v.compat && op == Op::Clear {
                        // compat's clear is one transaction of two deletes without etags
                        // (last-write): nothing guards it, so no writer can make daprd refuse
                        // it and no 409 is injected; it applies, burst or storm.
                        assert!(result.is_ok(), "{what}: {result:?}");
                        assert_eq!(stored, applied(op), "{what}");
                    } else if storm {
                        match result {
                            Err(CallError::Session(SessionError::Conflict(n))) => {
                                assert!(n >= 8, "{what}: gave up after {n}")
                            }
                            other => panic!("{what}: {other:?}"),
                        }
                        assert_eq!(
                            stored,
                            seeded(op),
                            "{what}: a failed write changed the session"
                        );
                        // Bounded by the backoff policy (about ten seconds), not unbounded.
                        assert!(elapsed < Duration::from_secs(25), "{what}: {elapsed:?}");
                    } else {
                        assert!(result.is_ok(), "{what}: {result:?}");
                        assert_eq!(stored, applied(op), "{what}");
                    }
                    p.inst.add_items(p.h, &[item("after")]).await.unwrap();
                    let mut expected = stored;
                    expected.push(item("after"));
                    assert_eq!(
                        checker.get_items(s, None).await.unwrap(),
                        expected,
                        "{what}"
                    );
                    (what, elapsed)
                });
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok((what, elapsed)) => println!("{what}: {elapsed:?}"),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_token_never_appears_in_errors_or_urls() {
    const TOKEN: &str = "tok-SECRET-1234";
    let host = Host::new().unwrap();
    let server = DaprServer::start(ServerConfig {
        api_token: Some(TOKEN.into()),
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let mut texts = Vec::new();
    for (token, layout) in [
        (TOKEN, Layout::Log),
        (TOKEN, Layout::Compat),
        ("wrong-SECRET-5678", Layout::Log),
        ("wrong-SECRET-5678", Layout::Compat),
    ] {
        let mut c = config(&server.endpoint(), "statestore");
        c.api_token = Some(token.into());
        c.timeout_ms = Some(TIMEOUT_MS);
        c.layout = Some(layout);
        for kind in Kind::ALL {
            let mut inst = host.instance().await.unwrap();
            let h = inst.open("secret", &c).await.unwrap();
            server.faults().add(Fault::any(kind.action()));
            if let Err(e) = inst.add_items(h, &added()).await {
                texts.push(format!("{e} {e:?}"));
            }
            if let Err(e) = inst.ping(h).await {
                texts.push(format!("{e} {e:?}"));
            }
            server.faults().clear();
        }
        // A token that is not a valid header value is refused without being echoed.
        let mut bad = c.clone();
        bad.api_token = Some(format!("{token}\n"));
        let mut inst = host.instance().await.unwrap();
        if let Err(e) = inst.open("secret", &bad).await {
            texts.push(format!("{e} {e:?}"));
        }
    }
    assert!(texts.len() >= 20, "too few errors seen: {texts:?}");
    assert!(texts.iter().any(|t| t.contains("Unauthorized")));
    for t in &texts {
        assert!(!t.contains("SECRET"), "the token leaked: {t}");
    }
    // It travels only in the dapr-api-token header, never in a URL or a body.
    for r in server.stats().log() {
        let seen = format!(
            "{} {:?} {}",
            r.path,
            r.query,
            String::from_utf8_lossy(&r.body)
        );
        assert!(!seen.contains("SECRET"), "the token leaked: {seen}");
    }
}
