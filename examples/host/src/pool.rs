//! A keep-alive connection pool for the component's outgoing requests.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use wasmtime_wasi_http::RequestOptions;

use crate::transport::{SendFuture, Transport, WasiBody};

/// A keep-alive HTTP/1 connection pool shared by instances, as hosts such as Spin and
/// wasmCloud keep one: without it, every request opens a connection to the sidecar. Clones
/// share the pool.
#[derive(Clone)]
pub struct Pool {
    client: Client<HttpConnector, WasiBody>,
    requests: Arc<AtomicU64>,
}

impl Pool {
    /// A new, empty pool.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Pool {
            client: Client::builder(TokioExecutor::new()).build(connector),
            requests: Arc::default(),
        }
    }

    /// Requests sent through the pool so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Default for Pool {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("requests", &self.requests())
            .finish()
    }
}

impl Transport for Pool {
    /// Sends through the pool; the pool's own timeouts apply, not `options`.
    fn send(&self, request: http::Request<WasiBody>, _: Option<RequestOptions>) -> SendFuture {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let client = self.client.clone();
        Box::new(async move {
            let res = client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    wasmtime_wasi_http::Error::ConnectionRefused
                } else {
                    wasmtime_wasi_http::Error::HttpProtocolError
                }
            })?;
            let res = res.map(|b| {
                b.map_err(|_| wasmtime_wasi_http::Error::HttpProtocolError)
                    .boxed_unsync()
            });
            Ok((
                res,
                Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}
