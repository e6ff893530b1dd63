//! Rust bindings generated from `wit/session.wit`.

#![allow(missing_docs, unsafe_code, clippy::all)]

wit_bindgen::generate!({
    world: "dapr-session",
    path: "wit",
    pub_export_macro: true,
});
