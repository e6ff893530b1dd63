//! A Dapr-compatible state server, in process, on a loopback port.
//!
//! It answers the part of daprd's HTTP API the component uses (state get/save/delete/bulk/
//! transaction, healthz, metadata, API token) the way daprd v1.18 with `state.in-memory`
//! does, and adds what tests need: fault injection ([`Faults`]), request and byte counters
//! and a request log ([`Stats`]), and direct access to the stored bytes.
//!
//! The command-line host uses it as the embedded store of its `demo`.

mod api;
pub mod faults;
mod gojson;
pub mod stats;
pub mod store;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use faults::{Action, Fault, Faults, Route};
pub use stats::{Logged, RouteStats, Snapshot, Stats};
pub use store::Item;

/// A state store the server offers.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Component name.
    pub name: String,
    /// Whether it supports transactions (and says so in `/v1.0/metadata`).
    pub transactional: bool,
}

/// How to run a [`DaprServer`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// App id reported in metadata.
    pub app_id: String,
    /// The state stores offered.
    pub stores: Vec<StoreConfig>,
    /// If set, every request but healthz must carry this `dapr-api-token`.
    pub api_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            app_id: "dapr-session-test".into(),
            stores: vec![StoreConfig {
                name: "statestore".into(),
                transactional: true,
            }],
            api_token: None,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) stores: Mutex<HashMap<String, store::Store>>,
    pub(crate) ready: AtomicBool,
    faults: Faults,
    stats: Stats,
    clock_offset_ms: AtomicI64,
}

impl Shared {
    pub(crate) fn now(&self) -> SystemTime {
        let offset = self.clock_offset_ms.load(Ordering::SeqCst);
        let base = SystemTime::now();
        if offset >= 0 {
            base + Duration::from_millis(offset.unsigned_abs())
        } else {
            base - Duration::from_millis(offset.unsigned_abs())
        }
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

/// A running server. Dropping it stops it and closes every connection.
pub struct DaprServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl DaprServer {
    /// Starts a server with `config` on a free loopback port, on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stores = config
            .stores
            .iter()
            .map(|s| (s.name.clone(), store::Store::default()))
            .collect();
        let shared = Arc::new(Shared {
            config,
            stores: Mutex::new(stores),
            ready: AtomicBool::new(true),
            faults: Faults::default(),
            stats: Stats::default(),
            clock_offset_ms: AtomicI64::new(0),
        });
        let (shutdown, mut stopped) = watch::channel(false);
        let accept_shared = shared.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let shared = accept_shared.clone();
                        let mut stop = stopped.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |req| serve(shared.clone(), req));
                            let conn = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service);
                            tokio::select! {
                                _ = conn => {}
                                _ = stop.changed() => {}
                            }
                        });
                    }
                }
            }
        });
        Ok(DaprServer {
            addr,
            shared,
            shutdown,
        })
    }

    /// Starts a server with one transactional store named `statestore`.
    pub async fn start_default() -> anyhow::Result<Self> {
        Self::start(ServerConfig::default()).await
    }

    /// The base URL to give the component, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Fault injection rules.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Counters and request log.
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Makes `/v1.0/healthz` answer ready or not ready.
    pub fn set_ready(&self, ready: bool) {
        self.shared.ready.store(ready, Ordering::SeqCst);
    }

    /// Moves the server's clock (TTL expiry) forward by `by`.
    pub fn advance_clock(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.shared.clock_offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    fn with_store<T>(
        &self,
        store: &str,
        f: impl FnOnce(&mut store::Store, SystemTime) -> T,
    ) -> Option<T> {
        let now = self.shared.now();
        let mut stores = self.shared.stores.lock().ok()?;
        stores.get_mut(store).map(|s| f(s, now))
    }

    /// The live item stored at `key`, bypassing the API.
    pub fn raw_get(&self, store: &str, key: &str) -> Option<Item> {
        self.with_store(store, |s, now| s.get(key, now).cloned())
            .flatten()
    }

    /// Stores `data` at `key` verbatim, bypassing the API (to plant corrupt data).
    pub fn raw_put(&self, store: &str, key: &str, data: &[u8]) {
        self.with_store(store, |s, now| s.put(key, data.to_vec(), 0, now));
    }

    /// Every live key of `store`, sorted.
    pub fn keys(&self, store: &str) -> Vec<String> {
        self.with_store(store, |s, now| s.keys(now))
            .unwrap_or_default()
    }

    /// Removes every key of `store`.
    pub fn wipe(&self, store: &str) {
        self.with_store(store, |s, _| s.clear());
    }
}

impl Drop for DaprServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::io::Error> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .to_bytes();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let (route, params) = api::route(&parts.method, &path);

    let mut log = Logged {
        route,
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        status: 0,
    };

    let fault = shared.faults.take(route, &path, &body);
    let mut after_apply = None;
    match fault {
        Some(Action::Delay(d)) => {
            // A sidecar does not take back a write because its client gave up: the delayed
            // request is applied in a task of its own, even if the connection is gone by then.
            let request = Owned {
                headers: parts.headers,
                query,
                body,
                route,
                params,
            };
            let task = tokio::spawn(async move {
                tokio::time::sleep(d).await;
                apply(&shared, &request, log, None)
            });
            return task
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        Some(Action::Hang) => {
            shared.stats.record(log, 0);
            return std::future::pending().await;
        }
        Some(Action::Reset) => {
            shared.stats.record(log, 0);
            return Err(std::io::Error::other("fault: connection reset"));
        }
        Some(Action::Status(status, code)) => {
            let answer = api::Answer::error(status, code, format!("injected fault: HTTP {status}"));
            log.status = status;
            shared.stats.record(log, answer.body.len() as u64);
            return Ok(respond(answer, false));
        }
        Some(Action::Conflict) => {
            let answer = api::Answer::error(
                409,
                "ERR_STATE_SAVE",
                "failed saving state: possible etag mismatch. error from state store: injected fault",
            );
            log.status = 409;
            shared.stats.record(log, answer.body.len() as u64);
            return Ok(respond(answer, false));
        }
        Some(other @ (Action::ResetAfterApply | Action::TruncateBody)) => after_apply = Some(other),
        None => {}
    }
    let request = Owned {
        headers: parts.headers,
        query,
        body,
        route,
        params,
    };
    apply(&shared, &request, log, after_apply)
}

/// A request's parts, owned, so it can be applied in a task of its own.
struct Owned {
    headers: http::HeaderMap,
    query: Option<String>,
    body: Bytes,
    route: Route,
    params: Vec<String>,
}

/// Applies a request to the stores and answers it (or fails it after applying, as `fault` says).
fn apply(
    shared: &Shared,
    request: &Owned,
    mut log: Logged,
    fault: Option<Action>,
) -> Result<Response<Body>, std::io::Error> {
    let incoming = api::Incoming {
        query: request.query.as_deref(),
        headers: &request.headers,
        body: &request.body,
    };
    let answer = api::handle(shared, &incoming, request.route, &request.params);
    log.status = answer.status.as_u16();
    match fault {
        Some(Action::ResetAfterApply) => {
            log.status = 0;
            shared.stats.record(log, 0);
            Err(std::io::Error::other(
                "fault: connection reset after applying",
            ))
        }
        Some(Action::TruncateBody) => {
            shared.stats.record(log, answer.body.len() as u64 / 2);
            Ok(respond(answer, true))
        }
        _ => {
            shared.stats.record(log, answer.body.len() as u64);
            Ok(respond(answer, false))
        }
    }
}

fn respond(answer: api::Answer, truncate: bool) -> Response<Body> {
    let mut builder = Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let body: Body = if truncate {
        // Announce the whole length, send half, then fail: the client sees a cut-off body.
        builder = builder.header("content-length", answer.body.len().max(2).to_string());
        let half = answer.body.slice(..answer.body.len() / 2);
        let frames = vec![
            Ok(Frame::data(half)),
            Err(std::io::Error::other("fault: body truncated")),
        ];
        StreamBody::new(futures_stream(frames)).boxed()
    } else {
        Full::new(answer.body)
            .map_err(|e: Infallible| match e {})
            .boxed()
    };
    builder.body(body).unwrap_or_else(|_| {
        Response::new(
            Full::new(Bytes::new())
                .map_err(|e: Infallible| match e {})
                .boxed(),
        )
    })
}

/// A stream over a fixed list of frames.
fn futures_stream(
    frames: Vec<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Frame<Bytes>, std::io::Error>> + Send + Sync {
    struct Frames(std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>);
    impl futures_core::Stream for Frames {
        type Item = Result<Frame<Bytes>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Frames(frames.into_iter())
}
