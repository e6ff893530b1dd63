//! Helpers for build scripts that need the workspace's components, and for programs that
//! must not run a component older than its sources.
//!
//! - [`build_components`]: `cargo build --release --target wasm32-wasip2` of some packages of
//!   the workspace, from a build script (adding the target with rustup if it is missing).
//! - [`sources`] and [`check_fresh`]: the files a built `.wasm` was compiled from (cargo's
//!   dep-info next to it) and whether any is newer than it.
//! - [`wit_package`]: the package a WIT file declares, e.g. `agentmem:session@0.1.0`.
//!
//! Standard library only.

mod build;
mod fresh;
mod wit;

pub use build::{BuildError, build_components, watch};
pub use fresh::{Stale, check_fresh, dep_info_sources, sources};
pub use wit::{WitError, wit_package};
