//! Builds the session component and the example HTTP service that imports it for
//! `wasm32-wasip2` (adding the target with rustup if it is missing), and tells the crate where
//! the `.wasm` files are (`DAPR_SESSION_WASM`, `DAPR_SESSION_HTTP_SERVICE_WASM`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.parent().map(PathBuf::from).unwrap_or_default();
    // Relative to this package: a target dir shared by several checkouts (CI caches it) must
    // rebuild for the checkout at hand, not watch the one that built first.
    for watched in [
        "../src",
        "../wit",
        "../Cargo.toml",
        "../Cargo.lock",
        "../examples/http-service/src",
        "../examples/http-service/wit",
        "../examples/http-service/Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={watched}");
    }

    ensure_wasm_target();

    // A target dir of its own: the outer cargo holds the lock on the workspace's.
    let target_dir = root.join("target").join("component");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--package",
            "dapr-session",
            "--package",
            "dapr-session-http-service",
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        // `cargo clippy` wraps rustc; the component gets its own clippy run in CI.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("building the component failed ({s})")),
        Err(e) => fail(&format!("could not run cargo to build the component: {e}")),
    }
    let release = target_dir.join("wasm32-wasip2/release");
    let wasm = release.join("dapr_session.wasm");
    println!("cargo:rustc-env=DAPR_SESSION_WASM={}", wasm.display());
    let service = release.join("dapr_session_http_service.wasm");
    println!(
        "cargo:rustc-env=DAPR_SESSION_HTTP_SERVICE_WASM={}",
        service.display()
    );
}

/// `rustup target add wasm32-wasip2` for the toolchain in use, if rustup is there.
fn ensure_wasm_target() {
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").ok();
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", "wasm32-wasip2"]);
    if let Some(t) = &toolchain {
        cmd.args(["--toolchain", t]);
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

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1);
}
