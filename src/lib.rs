//! dapr-session: conversation memory for AI agents, as a WebAssembly component.
//!
//! The component exports the WIT interface `agentmem:session/session` (see `wit/session.wit`):
//! the OpenAI Agents SDK `Session` contract (`get-items`, `add-items`, `pop-item`, `clear`)
//! plus `ping` and `metadata`, stored in any Dapr state store through the sidecar's HTTP API.
//!
//! Modules, one concern each:
//! - [`wit`]: Rust bindings generated from the WIT (not named `bindings`: `cargo component`
//!   writes its own `src/bindings.rs`, which this crate never compiles).
//! - [`export`]: the WIT exports, converting to and from the types below.
//! - [`session`]: argument checks and limits over a storage layout.
//! - [`layout`]: how a session maps onto state keys.
//! - [`dapr`]: the client for Dapr's HTTP state API.
//! - [`store`]: the state store as the layouts see it (a trait: the sidecar in the component,
//!   an in-memory store in unit tests).
//! - [`runtime`]: runs a call's future on `wasi:io/poll`; [`join`]: concurrent requests.
//! - [`config`], [`item`], [`error`], [`retry`], [`clock`], [`nonce`]: what their
//!   names say.

pub mod clock;
pub mod config;
pub mod dapr;
pub mod error;
pub mod export;
pub mod item;
pub mod join;
pub mod json;
pub mod layout;
pub mod nonce;
pub mod retry;
pub mod runtime;
pub mod session;
pub mod store;
#[cfg(test)]
mod testing;
pub mod wit;

/// The `#[export_name]` shims the component model calls; unsafe by nature, generated.
/// Only on wasm: component export names are not valid native symbol names.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod exports {
    use crate::export::Component;
    use crate::wit;
    wit::export!(Component with_types_in wit);
}
