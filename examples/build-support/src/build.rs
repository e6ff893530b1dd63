//! Building components of the workspace from a build script.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the components could not be built.
#[derive(Debug)]
pub enum BuildError {
    /// cargo could not be run.
    Spawn(std::io::Error),
    /// cargo ran and failed (its output went to the build script's stderr).
    Failed(std::process::ExitStatus),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Spawn(e) => write!(f, "could not run cargo to build the component: {e}"),
            BuildError::Failed(s) => write!(f, "building the component failed ({s})"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Prints `cargo:rerun-if-changed` for each of `paths` (relative to the calling package):
/// directories are watched recursively. Paths relative to the package, not absolute: a
/// target dir shared by several checkouts must rebuild for the checkout at hand.
pub fn watch(paths: &[&str]) {
    for path in paths {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// Builds `packages` of the workspace at `root` with `cargo build --release --target
/// wasm32-wasip2` into `<root>/target/component` (a target dir of its own: the outer cargo
/// holds the lock on the workspace's) and returns the directory the `.wasm` files are in.
///
/// Concurrent calls (two build scripts at once) wait for each other on cargo's own lock.
pub fn build_components(root: &Path, packages: &[&str]) -> Result<PathBuf, BuildError> {
    ensure_wasm_target();
    let target_dir = root.join("target").join("component");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        // `cargo clippy` wraps rustc; the component gets its own clippy run in CI.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CLIPPY_ARGS");
    for package in packages {
        cmd.args(["--package", package]);
    }
    let status = cmd.status().map_err(BuildError::Spawn)?;
    if !status.success() {
        return Err(BuildError::Failed(status));
    }
    Ok(target_dir.join("wasm32-wasip2").join("release"))
}

/// `rustup target add wasm32-wasip2` for the toolchain in use, if rustup is there.
fn ensure_wasm_target() {
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", "wasm32-wasip2"]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    match cmd.output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => println!(
            "cargo:warning=rustup target add wasm32-wasip2 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(_) => {
            println!("cargo:warning=rustup not found; assuming wasm32-wasip2 std is installed")
        }
    }
}
