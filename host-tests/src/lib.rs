//! Test harness for the dapr-session component.
//!
//! - [`host`]: the product host (`dapr-session-host`) loaded with the component this build
//!   made, with test options: a settable clock and hooks on its outgoing HTTP.
//! - [`dapr_server`]: the local Dapr-compatible state store (`dapr-session-local-store`) with
//!   fault injection and request counters.
//! - [`daprd`]: a real daprd, built once from the Go module proxy and cached, started
//!   standalone on loopback; [`redis`]: a Debian redis-server and a tiny RESP client;
//!   [`postgres`]: a PostgreSQL server and `psql`;
//!   [`process`]: child processes that always stop; [`cache`]: the per-machine cache and
//!   its lock.
//! - [`client`]: a native HTTP client for Dapr's state API; [`intercept`]: recording and
//!   steering the component's outgoing HTTP.
//! - [`compose`]: `wac` composition; [`serve`]: a `wasi:http/incoming-handler` host;
//!   [`python`]: the Python `DaprSession`.
//!
//! The suites live in `tests/`.

pub mod cache;
pub mod client;
pub mod compose;
pub mod dapr_server;
pub mod daprd;
pub mod host;
pub mod intercept;
pub mod postgres;
pub mod process;
pub mod python;
pub mod redis;
pub mod serve;
