//! A `wasi:http/incoming-handler` host, as `wasmtime serve` is: listens on a loopback port and
//! hands each request to a fresh instance of a component in its own store (as Spin and
//! wasmCloud do), with the full `wasi:cli` and `wasi:http` imports linked.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::WasiHttpView;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::host::{HostState, InstanceOptions};

/// A running HTTP service; stops listening, and drops its open connections, when dropped.
pub struct Service {
    addr: SocketAddr,
    served: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

struct Shared {
    pre: ProxyPre<HostState>,
    options: InstanceOptions,
    served: Arc<AtomicU64>,
}

impl Service {
    /// Links `component` (which must export `wasi:http/incoming-handler`) and serves it on a
    /// free port of 127.0.0.1; each request's instance is set up by `options`.
    pub async fn start(
        engine: &Engine,
        component: &Component,
        options: InstanceOptions,
    ) -> anyhow::Result<Self> {
        let mut linker = Linker::<HostState>::new(engine);
        dapr_session_host::add_to_linker(&mut linker)?;
        let pre = ProxyPre::new(linker.instantiate_pre(component)?)?;
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            pre,
            options,
            served: served.clone(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared));
        Ok(Service {
            addr,
            served,
            accept,
        })
    }

    /// The base URL, `http://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests handed to the component so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Accepts connections until aborted; aborting drops the set, which aborts every connection.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let shared = shared.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(&shared, request).await) }
            });
            // A client that goes away mid-request is not the service's failure.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Runs one request through a fresh instance; a trap or a missing response becomes a 500.
async fn handle(
    shared: &Shared,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<HyperOutgoingBody> {
    shared.served.fetch_add(1, Ordering::Relaxed);
    match call(shared, request).await {
        Ok(response) => response,
        Err(e) => {
            let body = Full::new(Bytes::from(format!("component failed: {e:#}\n")))
                .map_err(|never: Infallible| match never {})
                .boxed_unsync();
            let mut response = hyper::Response::new(body);
            *response.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

async fn call(
    shared: &Shared,
    request: hyper::Request<hyper::body::Incoming>,
) -> anyhow::Result<hyper::Response<HyperOutgoingBody>> {
    let mut store = Store::new(
        shared.pre.engine(),
        HostState::new(shared.options.to_host()),
    );
    let (tx, rx) = tokio::sync::oneshot::channel();
    let request = store
        .data_mut()
        .http()
        .new_incoming_request(Scheme::Http, request)?;
    let out = store.data_mut().http().new_response_outparam(tx)?;
    let pre = shared.pre.clone();
    // The guest may go on writing the body after it has set the response: it runs on.
    let task = tokio::spawn(async move {
        let proxy = pre.instantiate_async(&mut store).await?;
        proxy
            .wasi_http_incoming_handler()
            .call_handle(&mut store, request, out)
            .await
    });
    match rx.await {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(code)) => anyhow::bail!("the component answered with error {code:?}"),
        Err(_) => match task.await {
            Ok(Ok(())) => anyhow::bail!("the component returned without setting a response"),
            Ok(Err(e)) => Err(anyhow::Error::from(e).context("the component trapped")),
            Err(e) => Err(e.into()),
        },
    }
}
