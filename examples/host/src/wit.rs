//! The component's WIT world as Rust types, generated from `wit/` by wasmtime's `bindgen!`.

mod bindings {
    wasmtime::component::bindgen!({
        world: "dapr-session",
        path: "../../wit",
        exports: { default: async },
    });
}

pub(crate) use bindings::{DaprSession, DaprSessionPre};

pub use bindings::exports::agentmem::session::session::{
    Config, Consistency, Error as SessionError, InvalidInput, Layout, SessionMetadata, Snapshot,
    StoreError,
};

/// A config for the state store `store` of the sidecar at `endpoint`, every other field left
/// to the component's defaults.
pub fn config(endpoint: &str, store: &str) -> Config {
    Config {
        store_name: store.to_string(),
        endpoint: Some(endpoint.to_string()),
        api_token: None,
        ttl_seconds: None,
        consistency: None,
        key_prefix: None,
        default_limit: None,
        timeout_ms: None,
        layout: None,
        max_items: None,
    }
}
