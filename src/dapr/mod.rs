//! A client for the Dapr sidecar's HTTP API: state (`/v1.0/state`), health (`/v1.0/healthz`)
//! and metadata (`/v1.0/metadata`).
//!
//! It speaks Dapr's wire format exactly as daprd implements it: a missing key is `204`, the
//! `ETag` header is unquoted, save bodies are JSON arrays, values are raw JSON, and errors are
//! `{"errorCode", "message"}` objects. It knows nothing about sessions.
//!
//! - [`client`]: the state, health and metadata calls;
//! - [`http`]: one exchange over `wasi:http`, with a timeout and a cap on the answer;
//! - [`wire`]: the JSON shapes of requests and answers;
//! - [`error`]: how a request failed and what that says about its effect.

pub mod client;
pub mod error;
pub mod http;
pub mod wire;

pub use client::{ComponentInfo, DaprClient};
pub use error::{DaprError, Outcome};
pub use wire::{Concurrency, Consistency, Stored, TxOp, Write};
