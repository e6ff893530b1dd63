//! Rust bindings for the imported `agentmem:session/session` interface (from `../../wit`, the
//! dapr-session component's own WIT, so the two cannot drift).

#![allow(missing_docs, unsafe_code, clippy::all)]

wit_bindgen::generate!({
    world: "agentmem:http-service/http-service",
    path: ["../../wit", "wit"],
    generate_all,
});
