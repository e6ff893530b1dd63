//! The test server: the local Dapr-compatible state store (`dapr-session-local-store`) with
//! fault injection ([`Faults`]), request and byte counters and a request log ([`Stats`]),
//! added through the store's [`Intercept`] point.

pub mod faults;
pub mod stats;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dapr_session_local_store::{Answer, Apply, Body, Intercept, ReplyFuture, Request, StateServer};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

pub use dapr_session_local_store::{Item, ServerConfig, StoreConfig};
pub use faults::{Action, Fault, Faults, Route};
pub use stats::{Logged, RouteStats, Snapshot, Stats};

/// A running test server. Dropping it stops it and closes every connection.
pub struct DaprServer {
    server: StateServer,
    instruments: Arc<Instruments>,
}

impl DaprServer {
    /// Starts a server with `config` on a free loopback port, on the current tokio runtime.
    pub async fn start(config: ServerConfig) -> anyhow::Result<Self> {
        let instruments = Arc::new(Instruments::default());
        let server = StateServer::start_intercepted(config, instruments.clone()).await?;
        Ok(DaprServer {
            server,
            instruments,
        })
    }

    /// Starts a server with one transactional store named `statestore`.
    pub async fn start_default() -> anyhow::Result<Self> {
        Self::start(ServerConfig::default()).await
    }

    /// The base URL to give the component, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Fault injection rules.
    pub fn faults(&self) -> &Faults {
        &self.instruments.faults
    }

    /// Counters and request log.
    pub fn stats(&self) -> &Stats {
        &self.instruments.stats
    }

    /// Makes `/v1.0/healthz` answer ready or not ready.
    pub fn set_ready(&self, ready: bool) {
        self.server.set_ready(ready);
    }

    /// Moves the server's clock (TTL expiry) forward by `by`.
    pub fn advance_clock(&self, by: Duration) {
        self.server.advance_clock(by);
    }

    /// The live item stored at `key`, bypassing the API.
    pub fn raw_get(&self, store: &str, key: &str) -> Option<Item> {
        self.server.raw_get(store, key)
    }

    /// Stores `data` at `key` verbatim, bypassing the API (to plant corrupt data).
    pub fn raw_put(&self, store: &str, key: &str, data: &[u8]) {
        self.server.raw_put(store, key, data);
    }

    /// Every live key of `store`, sorted.
    pub fn keys(&self, store: &str) -> Vec<String> {
        self.server.keys(store)
    }

    /// Removes every key of `store`.
    pub fn wipe(&self, store: &str) {
        self.server.wipe(store);
    }
}

/// Faults and counters, applied to every request.
#[derive(Default)]
struct Instruments {
    faults: Faults,
    stats: Stats,
}

impl Intercept for Instruments {
    fn handle(self: Arc<Self>, request: Request, apply: Apply) -> ReplyFuture {
        let log = Logged {
            route: request.route,
            method: request.method.to_string(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: request.body.to_vec(),
            status: 0,
        };
        let fault = self
            .faults
            .take(request.route, &request.path, &request.body);
        Box::pin(async move {
            let stats = &self.stats;
            match fault {
                Some(Action::Delay(d)) => {
                    // A sidecar does not take back a write because its client gave up: the
                    // delayed request is applied in a task of its own, even if the connection
                    // is gone by then.
                    let instruments = self.clone();
                    let task = tokio::spawn(async move {
                        tokio::time::sleep(d).await;
                        answer(&instruments.stats, log, apply.apply(&request), false)
                    });
                    task.await.map_err(|e| std::io::Error::other(e.to_string()))
                }
                Some(Action::Hang) => {
                    stats.record(log, 0);
                    std::future::pending().await
                }
                Some(Action::Reset) => {
                    stats.record(log, 0);
                    Err(std::io::Error::other("fault: connection reset"))
                }
                Some(Action::Status(status, code)) => {
                    let a = Answer::error(status, code, format!("injected fault: HTTP {status}"));
                    Ok(answer(stats, log, a, false))
                }
                Some(Action::Conflict) => {
                    let a = Answer::error(
                        409,
                        "ERR_STATE_SAVE",
                        "failed saving state: possible etag mismatch. error from state store: injected fault",
                    );
                    Ok(answer(stats, log, a, false))
                }
                Some(Action::ResetAfterApply) => {
                    let _ = apply.apply(&request);
                    stats.record(log, 0);
                    Err(std::io::Error::other(
                        "fault: connection reset after applying",
                    ))
                }
                Some(Action::TruncateBody) => Ok(answer(stats, log, apply.apply(&request), true)),
                None => Ok(answer(stats, log, apply.apply(&request), false)),
            }
        })
    }
}

/// Records `a` in the log and turns it into a response, whole or (`truncate`) cut short.
fn answer(stats: &Stats, mut log: Logged, a: Answer, truncate: bool) -> http::Response<Body> {
    log.status = a.status.as_u16();
    let len = a.body.len() as u64;
    stats.record(log, if truncate { len / 2 } else { len });
    if !truncate {
        return a.into_response();
    }
    // Announce the whole length, send half, then fail: the client sees a cut-off body.
    let whole = a.body.len().max(2);
    let half = a.body.slice(..a.body.len() / 2);
    let mut response = Answer {
        body: Bytes::new(),
        ..a
    }
    .into_response();
    let frames = vec![
        Ok(Frame::data(half)),
        Err(std::io::Error::other("fault: body truncated")),
    ];
    *response.body_mut() = StreamBody::new(Frames(frames.into_iter())).boxed();
    response
        .headers_mut()
        .insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(whole));
    response
}

/// A stream over a fixed list of frames.
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
