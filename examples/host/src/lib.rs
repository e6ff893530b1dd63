//! A wasmtime host for the dapr-session component.
//!
//! [`Host`] compiles the component once and keeps it ready to instantiate (`InstancePre`);
//! [`Host::instance`] makes a cheap [`Instance`], one store as one replica of an app has,
//! whose methods call the component's `session` interface with typed values ([`Config`] in,
//! [`SessionError`] out). The component reaches the Dapr sidecar through `wasi:http`; the
//! host sends those requests through a [`Transport`]: wasmtime's default ([`Direct`], a
//! connection per request), a keep-alive [`Pool`] shared by instances, or one of your own
//! (to log, meter or redirect them).
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use dapr_session_host::{Host, config};
//!
//! let host = Host::from_file("dapr_session.wasm".as_ref())?; // compiles the component once
//! let mut instance = host.instance().await?;                // cheap: InstancePre
//! let session = instance
//!     .open("user-123", &config("http://127.0.0.1:3500", "statestore"))
//!     .await?;
//! instance
//!     .add_items(session, &[r#"{"role":"user","content":"hi"}"#.to_string()])
//!     .await?;
//! let history = instance.get_items(session, Some(20)).await?;
//! # let _ = history;
//! # Ok(())
//! # }
//! ```
//!
//! Calls are async and run on the caller's tokio runtime.

mod host;
mod instance;
mod options;
mod pool;
mod transport;
mod wit;

pub use host::{Host, HostError, add_to_linker, engine};
pub use instance::{CallError, CallResult, Instance, SessionHandle};
pub use options::{HostState, InstanceOptions};
pub use pool::Pool;
pub use transport::{Direct, SendFuture, SendResult, Transport, WasiBody};
pub use wit::{
    Config, Consistency, InvalidInput, Layout, SessionError, SessionMetadata, Snapshot, StoreError,
    config,
};
