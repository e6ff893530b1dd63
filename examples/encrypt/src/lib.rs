//! Encryption at rest for dapr-session, as a middleware component.
//!
//! The component imports `agentmem:session/session@0.2.0` (the session component, or anything
//! else exporting it) and exports the same interface, so it plugs between an app and the
//! session component with `wac plug` and the app changes nothing. Every item is stored as the
//! envelope the Python Agents SDK's `EncryptedSession` writes
//! (`{"__enc__":1,"v":1,"kid":"hkdf-v1","payload":"<Fernet token>"}`, a per-session key from
//! HKDF-SHA256), so Python agents using `EncryptedSession(DaprSession(...))` on the same store
//! read what it writes and the other way round. The key and the item TTL come from
//! `wasi:config/store` ([`config`]).
//!
//! Modules, one concern each:
//! - [`python_base64`]: Python's lenient `urlsafe_b64decode`, which keys and tokens go through.
//! - [`key`]: the master key and the per-session key.
//! - [`fernet`]: Fernet tokens (encrypt, verify, decrypt, time checks).
//! - [`envelope`]: the stored JSON shape.
//! - [`item`]: which item texts are accepted and returned.
//! - [`codec`]: items to envelopes and back (live, expired, unreadable).
//! - [`config`]: the settings from `wasi:config/store`.
//! - [`inner`], [`platform`]: what the session logic needs from the wrapped session and the
//!   host, as traits (native tests supply in-memory ones).
//! - [`scan`]: reading back until enough items are live.
//! - [`backoff`]: pauses between attempts that lost a race.
//! - [`session`]: every call of the interface.
//! - [`error`]: the interface's error variant.
//! - [`wit`], [`import`], [`export`]: the bindings and the glue to the imported and exported
//!   interface.

pub mod backoff;
pub mod codec;
pub mod config;
pub mod envelope;
pub mod error;
pub mod export;
pub mod fernet;
pub mod import;
pub mod inner;
pub mod item;
pub mod key;
pub mod platform;
pub mod python_base64;
pub mod scan;
pub mod session;
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
