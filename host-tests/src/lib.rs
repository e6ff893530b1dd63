//! Host-side harness for the dapr-session component.
//!
//! - [`host`]: a wasmtime host that loads the built `.wasm` and calls its `session` interface.
//! - [`dapr_server`]: a Dapr-compatible state server, in process, with fault injection and
//!   request counters. It is also the embedded store of the command-line host's `demo`.
//! - [`daprd`]: a real daprd, built once from the Go module proxy and cached, started
//!   standalone on loopback; [`redis`]: a Debian redis-server and a tiny RESP client;
//!   [`process`]: child processes that always stop.
//! - [`client`]: a native HTTP client for Dapr's state API; [`intercept`]: the host's view of
//!   the component's outgoing HTTP.
//!
//! The suites live in `tests/`.

pub mod client;
pub mod compose;
pub mod dapr_server;
pub mod daprd;
pub mod host;
pub mod intercept;
pub mod process;
pub mod python;
pub mod redis;
pub mod serve;
