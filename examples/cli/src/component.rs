//! The component embedded in this binary, built by `build.rs` from the workspace's sources,
//! alone and plugged into the encryption middleware (`dapr-session-encrypt`).
//!
//! Development builds (`cfg(debug_assertions)`) refuse to run it when one of the files it was
//! compiled from has changed since: a stale binary would test old code. Release builds (what
//! `cargo install` makes) carry no such check and run from anywhere.

use dapr_session_host::Host;

use crate::exit::Kind;
use crate::failure::Failure;

mod built {
    include!(concat!(env!("OUT_DIR"), "/component.rs"));
}

/// The component's crate version (`dapr-session`).
pub const VERSION: &str = env!("DAPR_SESSION_COMPONENT_VERSION");
/// The WIT package the component exports, read from `wit/session.wit` at build time.
pub const WIT_PACKAGE: &str = env!("DAPR_SESSION_WIT_PACKAGE");

/// What `--version` prints after the program name.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (component dapr-session ",
    env!("DAPR_SESSION_COMPONENT_VERSION"),
    ", WIT ",
    env!("DAPR_SESSION_WIT_PACKAGE"),
    ")"
);

/// How messages name the embedded component.
pub fn describe() -> String {
    format!(
        "embedded dapr-session {VERSION} ({WIT_PACKAGE}, {} bytes)",
        built::WASM.len()
    )
}

/// Compiles the embedded component.
pub fn embedded() -> Result<Host, Failure> {
    #[cfg(debug_assertions)]
    check_fresh()?;
    Host::from_binary(built::WASM).map_err(|e| Failure::internal(&e))
}

/// Compiles the embedded encryption middleware with the component plugged into it: it reads
/// its key from `wasi:config/store` (`encryption_key`).
pub fn embedded_encrypted() -> Result<Host, Failure> {
    #[cfg(debug_assertions)]
    check_fresh()?;
    Host::from_binary(built::ENCRYPTED_WASM).map_err(|e| Failure::internal(&e))
}

/// Fails if a source of an embedded component changed after it was built.
#[cfg(debug_assertions)]
fn check_fresh() -> Result<(), Failure> {
    for (built_ns, sources) in built::BUILDS {
        let built = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(*built_ns);
        for source in *sources {
            let changed = std::fs::metadata(source)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > built);
            if changed {
                return Err(Failure::new(
                    Kind::Other,
                    format!(
                        "the embedded component is older than {source}: rebuild this \
                         development build (cargo build -p dapr-session-cli), or pass --component"
                    ),
                ));
            }
        }
    }
    Ok(())
}
