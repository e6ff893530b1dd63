//! How the component's outgoing HTTP leaves the host: the [`Transport`] trait, the host's
//! interception point, and wasmtime's default behind it.

use std::future::Future;
use std::sync::Arc;

use http_body_util::BodyExt;
use wasmtime_wasi_http::{RequestOptions, WasiHttpHooks};

/// A request or response body as wasi-http passes it.
pub type WasiBody = wasmtime_wasi_http::WasiBody;

/// What sending one request gives: the response, and a future that drives the connection
/// until the response body is read (or fails).
pub type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

/// The future [`Transport::send`] returns.
pub type SendFuture = Box<dyn Future<Output = SendResult> + Send>;

/// Sends the requests the component makes (to the Dapr sidecar). Implement it to log, meter,
/// answer or redirect them; wrap [`Direct`] or a [`Pool`](crate::Pool) to send them on.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request`. Called when the component issues it; the future runs on the
    /// caller's tokio runtime.
    fn send(&self, request: http::Request<WasiBody>, options: Option<RequestOptions>)
    -> SendFuture;
}

/// Sends as wasmtime does by default: a new connection per request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Direct;

impl Transport for Direct {
    fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> SendFuture {
        Box::new(async move {
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}

/// The wasi-http hooks of a store: every request goes to its transport.
pub(crate) struct Outgoing(pub(crate) Arc<dyn Transport>);

impl WasiHttpHooks for Outgoing {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        _ = fut;
        self.0.send(request, options)
    }
}
