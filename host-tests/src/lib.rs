//! Host-side harness for the dapr-session component.
//!
//! - [`host`]: a wasmtime host that loads the built `.wasm` and calls its `session` interface.
//! - [`dapr_server`]: a Dapr-compatible state server, in process, with fault injection and
//!   request counters. It is also the embedded store of the command-line host's `demo`.
//!
//! The suites live in `tests/`.

pub mod client;
pub mod dapr_server;
pub mod host;
pub mod intercept;
