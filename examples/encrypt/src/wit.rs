//! Rust bindings of the `encrypt` world (`wit/world.wit`): the imported and exported
//! `agentmem:session/session@0.2.0` (the repository's `wit/session.wit`) and the imported
//! `wasi:config/store@0.2.0-rc.1` (`wit/deps/config`).

#![allow(missing_docs, unsafe_code, clippy::all)]

wit_bindgen::generate!({
    world: "agentmem:session-encrypt/encrypt",
    path: ["../../wit", "wit"],
    pub_export_macro: true,
    generate_all,
});
