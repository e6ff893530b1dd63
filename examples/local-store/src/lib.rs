//! A Dapr-compatible state store, in process, on a loopback port.
//!
//! [`StateServer`] answers the part of daprd's HTTP API that state clients use (state get,
//! save, delete, bulk get and transactions, `healthz`, `metadata`, the API token) the way
//! daprd v1.18 with `state.in-memory` does: same status codes, `errorCode`s, etags and JSON
//! re-encoding. Use it to try the component without a sidecar (the CLI's `demo` does) or to
//! test against. An [`Intercept`] sees every request before it is applied and decides what
//! happens to it: the test harness counts requests and injects faults through it.

mod answer;
mod api;
mod gojson;
mod route;
mod server;
mod store;

pub use answer::Answer;
pub use route::Route;
pub use server::{
    Apply, Body, Intercept, Reply, ReplyFuture, Request, ServerConfig, StateServer, StoreConfig,
};
pub use store::Item;
