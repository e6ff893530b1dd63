//! Builds the session component for `wasm32-wasip2` and embeds it: copies the `.wasm` into
//! `OUT_DIR` and writes `component.rs` (its bytes, and for development builds the files it
//! was compiled from and when); sets `DAPR_SESSION_COMPONENT_VERSION` (the `dapr-session`
//! crate's version) and `DAPR_SESSION_WIT_PACKAGE` (from `wit/session.wit`).

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
    ]);
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.join("..").join("..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);

    let release = dapr_session_build::build_components(&root, &["dapr-session"])?;
    let wasm = release.join("dapr_session.wasm");
    let built = std::fs::metadata(&wasm)?
        .modified()?
        .duration_since(UNIX_EPOCH)?
        .as_nanos();
    let built = u64::try_from(built)?;
    let embedded = out.join("dapr_session.wasm");
    std::fs::copy(&wasm, &embedded)?;
    let sources: Vec<String> = dapr_session_build::sources(&wasm)
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    std::fs::write(
        out.join("component.rs"),
        format!(
            "/// The component's bytes.\n\
             pub const WASM: &[u8] = include_bytes!({embedded:?});\n\
             /// When the component was built, in nanoseconds since the Unix epoch.\n\
             #[allow(dead_code)]\n\
             pub const BUILT_NS: u64 = {built};\n\
             /// The files it was compiled from.\n\
             #[allow(dead_code)]\n\
             pub const SOURCES: &[&str] = &{sources:?};\n",
            embedded = embedded.display().to_string(),
        ),
    )?;

    let version = package_version(&root.join("Cargo.toml"))?;
    println!("cargo:rustc-env=DAPR_SESSION_COMPONENT_VERSION={version}");
    let wit = dapr_session_build::wit_package(&root.join("wit").join("session.wit"))?;
    println!("cargo:rustc-env=DAPR_SESSION_WIT_PACKAGE={wit}");
    Ok(())
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
