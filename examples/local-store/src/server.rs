//! The server: configuration, the accept loop, the [`Intercept`] point, and direct access to
//! the stored values.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::answer::Answer;
use crate::api;
use crate::route::{Route, route};
use crate::store::{Item, Store};

/// The largest request body read (daprd's default is 4 MiB; this store takes more, so tests
/// can tell the component's own limits from daprd's).
const MAX_BODY: usize = 256 << 20;

/// A state store the server offers.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Component name.
    pub name: String,
    /// Whether it supports transactions (and says so in `/v1.0/metadata`).
    pub transactional: bool,
}

/// How to run a [`StateServer`].
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
    /// One transactional store named `statestore`, no API token.
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

/// A response body.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// What the server does with a request: answer it, or (`Err`) drop the connection unanswered.
pub type Reply = Result<http::Response<Body>, std::io::Error>;

/// The future an [`Intercept`] returns.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send>>;

/// One request, read whole.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which API it is for.
    pub route: Route,
    /// HTTP method.
    pub method: http::Method,
    /// Path, still percent-encoded.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
    /// Path parameters (store name, key), decoded.
    params: Vec<String>,
}

/// Applies requests to the server's stores; what an [`Intercept`] calls to let a request
/// through. Cheap to clone.
#[derive(Clone)]
pub struct Apply(Arc<Shared>);

impl Apply {
    /// Applies `request` to the stores and returns the answer daprd would give.
    pub fn apply(&self, request: &Request) -> Answer {
        let incoming = api::Incoming {
            query: request.query.as_deref(),
            headers: &request.headers,
            body: &request.body,
        };
        api::handle(&self.0, &incoming, request.route, &request.params)
    }
}

/// Sees every request before it is applied and decides what happens to it: apply it (with
/// [`Apply`]) and answer, answer something else, wait, or drop the connection.
pub trait Intercept: Send + Sync + 'static {
    /// Handles `request`; `apply` lets it through to the stores.
    fn handle(self: Arc<Self>, request: Request, apply: Apply) -> ReplyFuture;
}

pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) stores: Mutex<HashMap<String, Store>>,
    pub(crate) ready: AtomicBool,
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

/// A running server. Dropping it stops it and closes every connection.
pub struct StateServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl StateServer {
    /// Starts a server with `config` on a free loopback port, on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> std::io::Result<Self> {
        Self::start_inner(config, None).await
    }

    /// Starts a server whose every request goes through `intercept`.
    pub async fn start_intercepted(
        config: ServerConfig,
        intercept: Arc<dyn Intercept>,
    ) -> std::io::Result<Self> {
        Self::start_inner(config, Some(intercept)).await
    }

    async fn start_inner(
        config: ServerConfig,
        intercept: Option<Arc<dyn Intercept>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stores = config
            .stores
            .iter()
            .map(|s| (s.name.clone(), Store::default()))
            .collect();
        let shared = Arc::new(Shared {
            config,
            stores: Mutex::new(stores),
            ready: AtomicBool::new(true),
            clock_offset_ms: AtomicI64::new(0),
        });
        let (shutdown, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(
            listener,
            Apply(shared.clone()),
            intercept,
            stopped,
        ));
        Ok(StateServer {
            addr,
            shared,
            shutdown,
        })
    }

    /// The base URL to give the component, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
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

    fn with_store<T>(&self, store: &str, f: impl FnOnce(&mut Store, SystemTime) -> T) -> Option<T> {
        let now = self.shared.now();
        let mut stores = self.shared.stores.lock().ok()?;
        stores.get_mut(store).map(|s| f(s, now))
    }

    /// The live item stored at `key`, bypassing the API.
    pub fn raw_get(&self, store: &str, key: &str) -> Option<Item> {
        self.with_store(store, |s, now| s.get(key, now).cloned())
            .flatten()
    }

    /// Stores `data` at `key` verbatim, bypassing the API (to plant data the API would
    /// re-encode, or that is not JSON).
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

impl Drop for StateServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    apply: Apply,
    intercept: Option<Arc<dyn Intercept>>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let apply = apply.clone();
                let intercept = intercept.clone();
                let mut stop = stopped.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        serve(apply.clone(), intercept.clone(), req)
                    });
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
}

async fn serve(
    apply: Apply,
    intercept: Option<Arc<dyn Intercept>>,
    req: http::Request<Incoming>,
) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return Ok(Answer::error(
                413,
                "ERR_MALFORMED_REQUEST",
                format!("request body larger than {MAX_BODY} bytes"),
            )
            .into_response());
        }
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    };
    let path = parts.uri.path().to_string();
    let (route, params) = route(&parts.method, &path);
    let request = Request {
        route,
        method: parts.method,
        path,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
        params,
    };
    match intercept {
        Some(intercept) => intercept.handle(request, apply).await,
        None => Ok(apply.apply(&request).into_response()),
    }
}
