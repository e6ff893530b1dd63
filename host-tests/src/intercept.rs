//! Watching and steering the component's outgoing HTTP from the host, through the host's
//! [`Transport`] interception point.
//!
//! A [`Traffic`] records every request an instance sends (with its body) and the response
//! it got, whatever the backend behind it: the test server or a real daprd. A [`BeforeSend`]
//! hook runs before a request leaves, so a test can, say, slip in a competing write between
//! the component's read and its conditional write. [`Hooks`] puts them together in front of
//! a [`Pool`] or wasmtime's default sending.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use dapr_session_host::{Direct, Pool, SendFuture, Transport, WasiBody};
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::RequestOptions;

/// One request the component sent, and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// HTTP method.
    pub method: String,
    /// Full URI.
    pub uri: String,
    /// Request headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Bytes,
    /// Response status (0 if no response arrived).
    pub status: u16,
    /// Response body length.
    pub response_bytes: usize,
    /// When the request left.
    pub started: std::time::Instant,
    /// When the response was complete (or the request failed).
    pub finished: std::time::Instant,
}

impl Exchange {
    /// The request body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The path and query of the URI.
    pub fn path_and_query(&self) -> &str {
        self.uri
            .find("/v1.0")
            .and_then(|i| self.uri.get(i..))
            .unwrap_or(&self.uri)
    }

    /// The value of a request header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Everything an instance sent, in order.
#[derive(Debug, Default, Clone)]
pub struct Traffic(Arc<Mutex<Vec<Exchange>>>);

impl Traffic {
    /// A copy of every exchange so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Forgets what was recorded.
    pub fn clear(&self) {
        if let Ok(mut v) = self.0.lock() {
            v.clear();
        }
    }

    /// Number of requests recorded.
    pub fn requests(&self) -> usize {
        self.0.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Round trips recorded: requests in flight at the same time count once; a new round
    /// trip starts with a request sent after every earlier one was answered.
    pub fn round_trips(&self) -> usize {
        let mut spans: Vec<(std::time::Instant, std::time::Instant)> = self
            .exchanges()
            .iter()
            .map(|e| (e.started, e.finished))
            .collect();
        spans.sort();
        let mut trips = 0;
        let mut busy_until: Option<std::time::Instant> = None;
        for (start, end) in spans {
            match busy_until {
                Some(b) if start < b => busy_until = Some(b.max(end)),
                _ => {
                    trips += 1;
                    busy_until = Some(end);
                }
            }
        }
        trips
    }

    fn push(&self, e: Exchange) {
        if let Ok(mut v) = self.0.lock() {
            v.push(e);
        }
    }
}

/// An answer a hook gives in place of the sidecar's.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// HTTP status.
    pub status: u16,
    /// Body (JSON).
    pub body: String,
}

/// A future returned by a [`BeforeSend`] hook: `Some` answers the request without sending it.
pub type HookFuture = Pin<Box<dyn Future<Output = Option<Synthetic>> + Send>>;

/// Runs before each request leaves the host; sees the request about to be sent.
pub type BeforeSend = Arc<dyn Fn(&Exchange) -> HookFuture + Send + Sync>;

/// The hooks of one instance's outgoing HTTP.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Where to record exchanges, if anywhere.
    pub traffic: Option<Traffic>,
    /// What to run before each request.
    pub before_send: Option<BeforeSend>,
    /// Send through this keep-alive pool instead of a connection per request.
    pub pool: Option<Pool>,
}

impl Hooks {
    /// The transport these hooks make: the pool or wasmtime's default, behind a recorder
    /// when anything is recorded or hooked.
    pub fn transport(&self) -> Arc<dyn Transport> {
        let next: Arc<dyn Transport> = match &self.pool {
            Some(pool) => Arc::new(pool.clone()),
            None => Arc::new(Direct),
        };
        if self.traffic.is_none() && self.before_send.is_none() {
            return next;
        }
        Arc::new(Recorder {
            traffic: self.traffic.clone(),
            before_send: self.before_send.clone(),
            next,
        })
    }
}

/// Records and hooks requests, then sends them on with `next`.
struct Recorder {
    traffic: Option<Traffic>,
    before_send: Option<BeforeSend>,
    next: Arc<dyn Transport>,
}

fn full(body: Bytes) -> WasiBody {
    Full::new(body)
        .map_err(|e: std::convert::Infallible| match e {})
        .boxed_unsync()
}

impl Transport for Recorder {
    fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> SendFuture {
        // When the guest issued the request, not when the host got round to sending it:
        // requests the guest issues together count as one round trip whatever the scheduling.
        let started = std::time::Instant::now();
        let traffic = self.traffic.clone();
        let before_send = self.before_send.clone();
        let next = self.next.clone();
        Box::new(async move {
            let record = |exchange: Exchange| {
                if let Some(t) = &traffic {
                    t.push(exchange);
                }
            };
            let (parts, body) = request.into_parts();
            let body = body.collect().await?.to_bytes();
            let mut exchange = Exchange {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
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
                body: body.clone(),
                status: 0,
                response_bytes: 0,
                started,
                finished: std::time::Instant::now(),
            };
            if let Some(hook) = &before_send
                && let Some(answer) = hook(&exchange).await
            {
                exchange.status = answer.status;
                exchange.response_bytes = answer.body.len();
                exchange.finished = std::time::Instant::now();
                record(exchange);
                let res = http::Response::builder()
                    .status(answer.status)
                    .header("content-type", "application/json")
                    .body(full(Bytes::from(answer.body)))
                    .map_err(|_| wasmtime_wasi_http::Error::InternalError(None))?;
                let io = async { Ok(()) };
                return Ok((res, Box::new(io) as Box<dyn Future<Output = _> + Send>));
            }
            let request = http::Request::from_parts(parts, full(body));
            let (res, io) = match Box::into_pin(next.send(request, options)).await {
                Ok(ok) => ok,
                Err(e) => {
                    exchange.finished = std::time::Instant::now();
                    record(exchange);
                    return Err(e);
                }
            };
            // The connection must keep being driven while the body is read.
            let io = tokio::spawn(Box::into_pin(io));
            let (res_parts, res_body) = res.into_parts();
            let collected = res_body.collect().await;
            exchange.status = res_parts.status.as_u16();
            let res_bytes = match collected {
                Ok(c) => c.to_bytes(),
                Err(e) => {
                    record(exchange);
                    return Err(e);
                }
            };
            exchange.response_bytes = res_bytes.len();
            exchange.finished = std::time::Instant::now();
            record(exchange);
            let res = http::Response::from_parts(res_parts, full(res_bytes));
            let io = async move { io.await.unwrap_or(Ok(())) };
            Ok((res, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}
