//! Builds the session component and the encryption middleware for `wasm32-wasip2` and embeds
//! them: copies the session `.wasm` into `OUT_DIR`, plugs it into the middleware's `session`
//! import (as `wac plug` does) for `--encryption-key-file`, and writes `component.rs` (both
//! components' bytes, and for development builds the files they were compiled from and when);
//! sets `DAPR_SESSION_COMPONENT_VERSION` (the `dapr-session` crate's version) and
//! `DAPR_SESSION_WIT_PACKAGE` (from `wit/session.wit`).

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    dapr_session_build::watch(&[
        "../../src",
        "../../wit",
        "../../Cargo.toml",
        "../../Cargo.lock",
        "../encrypt/src",
        "../encrypt/wit",
        "../encrypt/Cargo.toml",
    ]);
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.join("..").join("..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);

    let release =
        dapr_session_build::build_components(&root, &["dapr-session", "dapr-session-encrypt"])?;
    let wasm = release.join("dapr_session.wasm");
    let middleware = release.join("dapr_session_encrypt.wasm");
    let embedded = out.join("dapr_session.wasm");
    std::fs::copy(&wasm, &embedded)?;
    let encrypted = out.join("dapr_session_encrypted.wasm");
    std::fs::write(
        &encrypted,
        plug(&std::fs::read(&middleware)?, &std::fs::read(&wasm)?)?,
    )?;
    // Each component with when it was built and the files it was compiled from.
    let mut builds = Vec::new();
    for path in [&wasm, &middleware] {
        let built = std::fs::metadata(path)?
            .modified()?
            .duration_since(UNIX_EPOCH)?
            .as_nanos();
        let sources: Vec<String> = dapr_session_build::sources(path)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        builds.push(format!("({}, &{sources:?})", u64::try_from(built)?));
    }
    std::fs::write(
        out.join("component.rs"),
        format!(
            "/// The component's bytes.\n\
             pub const WASM: &[u8] = include_bytes!({embedded:?});\n\
             /// The encryption middleware with the component plugged into its import.\n\
             pub const ENCRYPTED_WASM: &[u8] = include_bytes!({encrypted:?});\n\
             /// The component and the middleware: when each was built (nanoseconds since the\n\
             /// Unix epoch) and the files it was compiled from.\n\
             #[allow(dead_code)]\n\
             pub const BUILDS: &[(u64, &[&str])] = &[{builds}];\n",
            embedded = embedded.display().to_string(),
            encrypted = encrypted.display().to_string(),
            builds = builds.join(", "),
        ),
    )?;

    let version = package_version(&root.join("Cargo.toml"))?;
    println!("cargo:rustc-env=DAPR_SESSION_COMPONENT_VERSION={version}");
    let wit = dapr_session_build::wit_package(&root.join("wit").join("session.wit"))?;
    println!("cargo:rustc-env=DAPR_SESSION_WIT_PACKAGE={wit}");
    Ok(())
}

/// `wac plug <socket> --plug <plug>`: `socket` instantiated with the imports `plug`'s exports
/// satisfy; every other import left to the host.
fn plug(socket: &[u8], plug: &[u8]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    use wac_graph::types::Package;
    use wac_graph::{CompositionGraph, EncodeOptions};
    let mut graph = CompositionGraph::new();
    let socket = Package::from_bytes("composed:socket", None, socket.to_vec(), graph.types_mut())
        .map_err(|e| format!("reading the encryption middleware: {e:#}"))?;
    let socket = graph.register_package(socket)?;
    let plug = Package::from_bytes("composed:plug", None, plug.to_vec(), graph.types_mut())
        .map_err(|e| format!("reading the session component: {e:#}"))?;
    let plug = graph.register_package(plug)?;
    wac_graph::plug(&mut graph, vec![plug], socket)?;
    Ok(graph.encode(EncodeOptions::default())?)
}

/// The `version` of the `[package]` section of `manifest`.
fn package_version(manifest: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(manifest)?;
    let mut in_package = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package && let Some(value) = line.strip_prefix("version") {
            let value = value.trim_start().strip_prefix('=').map(str::trim);
            if let Some(v) = value.and_then(|v| v.strip_prefix('"')?.strip_suffix('"')) {
                return Ok(v.to_string());
            }
        }
    }
    Err(format!("no literal [package] version in {}", manifest.display()).into())
}
