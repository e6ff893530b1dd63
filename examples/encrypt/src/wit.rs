//! Rust bindings generated from `wit/` (the `encrypt` world): the imported and exported
//! `agentmem:session/session@0.2.0` and the imported `wasi:config/store@0.2.0-rc.1`.

#![allow(missing_docs, unsafe_code, clippy::all)]

wit_bindgen::generate!({
    world: "encrypt",
    path: "wit",
    pub_export_macro: true,
    generate_all,
});
