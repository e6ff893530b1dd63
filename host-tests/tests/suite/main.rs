//! The behavioural suite: every case, run against every backend (see `backend.rs`).
//!
//! `cargo test -p dapr-session-host-tests --test suite [-- FILTER...]`; with
//! `SUITE_ENCRYPTED=1`, through the encryption middleware (see `encrypted.rs`).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod backend;
mod cases;
mod encrypted;
mod harness;

fn main() -> std::process::ExitCode {
    harness::main(cases::ALL)
}
