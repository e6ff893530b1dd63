//! Builds the session component, the example HTTP service that imports it and the encryption
//! middleware for `wasm32-wasip2`, and tells the crate where the `.wasm` files are
//! (`DAPR_SESSION_WASM`, `DAPR_SESSION_HTTP_SERVICE_WASM`, `DAPR_SESSION_ENCRYPT_WASM`).

use std::path::PathBuf;

fn main() {
    dapr_session_build::watch(&[
        "../src",
        "../wit",
        "../Cargo.toml",
        "../Cargo.lock",
        "../examples/http-service/src",
        "../examples/http-service/wit",
        "../examples/http-service/Cargo.toml",
        "../examples/encrypt/src",
        "../examples/encrypt/wit",
        "../examples/encrypt/Cargo.toml",
    ]);
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir.parent().map(PathBuf::from).unwrap_or_default();
    let release = match dapr_session_build::build_components(
        &root,
        &[
            "dapr-session",
            "dapr-session-http-service",
            "dapr-session-encrypt",
        ],
    ) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    let wasm = release.join("dapr_session.wasm");
    println!("cargo:rustc-env=DAPR_SESSION_WASM={}", wasm.display());
    let service = release.join("dapr_session_http_service.wasm");
    println!(
        "cargo:rustc-env=DAPR_SESSION_HTTP_SERVICE_WASM={}",
        service.display()
    );
    let encrypt = release.join("dapr_session_encrypt.wasm");
    println!(
        "cargo:rustc-env=DAPR_SESSION_ENCRYPT_WASM={}",
        encrypt.display()
    );
}
