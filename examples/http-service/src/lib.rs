//! An example consumer of the dapr-session component: a conversation-memory HTTP service.
//!
//! It imports `agentmem:session/session@0.2.0` and exports `wasi:http/incoming-handler`:
//!
//! | request | answer |
//! |---|---|
//! | `GET /sessions/{id}/items?limit=N` | 200, a JSON array of the newest `N` items (all without `limit`) |
//! | `POST /sessions/{id}/items` (a JSON array of items) | 200 `{"added": n}`; 400 naming the bad item's index |
//! | `DELETE /sessions/{id}/items/last` | 200, the removed item; 404 when the session is empty |
//! | `GET /sessions/{id}` | 200 `{"session_id", "created_at", "updated_at"}` (ms) |
//! | `DELETE /sessions/{id}` | 204 |
//! | `GET /healthz` | 200 when the sidecar is up and has the store, else 503 or 500 |
//!
//! Errors are JSON: `{"error": kind, "message": text}`. Compose it with the session component
//! (`wac plug dapr_session_http_service.wasm --plug dapr_session.wasm -o service.wasm`) and
//! serve it with any `wasi:http` host.

pub mod api_error;
pub mod bindings;
pub mod handler;
pub mod routes;
pub mod settings;

/// The `wasi:http/incoming-handler` export (on `wasm32` only).
#[cfg(target_arch = "wasm32")]
mod server {
    use wstd::http::{Body, Error, Request, Response};

    #[wstd::http_server]
    async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
        let config = crate::settings::config(|k| std::env::var(k).ok());
        Ok(crate::handler::handle(request, config).await)
    }
}
