//! `dapr-session`: a command-line host for the dapr-session component.
//!
//! Runs the component in wasmtime and calls its `session` interface against a Dapr sidecar:
//! `get`, `add`, `pop`, `clear`, `metadata`, `ping`, `import`, `export`, `snapshot` and
//! `replace`, and `demo`, which starts the embedded Dapr-compatible store and runs a
//! conversation through the component.
//! Exit codes are listed in [`exit`].

mod cli;
mod commands;
mod compaction;
mod component;
mod connect;
mod demo;
mod encryption;
mod exit;
mod failure;
mod import_export;
mod items;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser as _;
use dapr_session_host::{CallError, Host};

use crate::cli::{Cli, Command, Global};
use crate::connect::Session;
use crate::exit::Kind;
use crate::failure::Failure;
use crate::output::Output;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let out = Output::new(cli.global.json, cli.global.quiet);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io("cannot start the async runtime", &e))
        .and_then(|runtime| runtime.block_on(run(cli, &out)));
    match result {
        Ok(kind) => kind.exit_code(),
        Err(failure) => failure.report(out.is_json()),
    }
}

/// Reports a command line clap refused (as JSON if `--json` is among the arguments); help and
/// version requests print as usual and succeed.
fn usage_error(e: &clap::Error) -> ExitCode {
    let json = std::env::args_os()
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if !e.use_stderr() || !json {
        // Prints the help, version or error (with usage) and exits with clap's code.
        e.exit();
    }
    let rendered = e.render().to_string();
    let message = rendered
        .trim()
        .strip_prefix("error: ")
        .unwrap_or(rendered.trim());
    Failure::new(Kind::Usage, message).report(true)
}

async fn run(cli: Cli, out: &Output) -> Result<Kind, Failure> {
    let global = &cli.global;
    match cli.command {
        Command::Get { session, limit } => {
            let mut s = open(global, &session).await?;
            commands::get(&mut s, limit, out).await
        }
        Command::Add { session, items } => {
            let items = commands::add_items(items)?;
            let mut s = open(global, &session).await?;
            commands::add(&mut s, &items, out).await
        }
        Command::Pop { session } => {
            let mut s = open(global, &session).await?;
            commands::pop(&mut s, out).await
        }
        Command::Clear { session } => {
            let mut s = open(global, &session).await?;
            commands::clear(&mut s, out).await
        }
        Command::Metadata { session } => {
            let mut s = open(global, &session).await?;
            commands::metadata(&mut s, out).await
        }
        Command::Ping => {
            // `ping` needs a session handle; the id is never used for a key.
            let mut s = open(global, "ping").await?;
            commands::ping(&mut s, out).await
        }
        Command::Import {
            session,
            input,
            batch_size,
        } => {
            // Every item is checked before the component is even loaded.
            let input = import_export::read(&input, "imported")?;
            let host = load_host(global)?;
            import_export::import(&host, global, &session, input, batch_size, out).await
        }
        Command::Export {
            session,
            out: to,
            jsonl,
        } => {
            let host = load_host(global)?;
            import_export::export(&host, global, &session, to.as_deref(), jsonl, out).await
        }
        Command::Snapshot { session, limit } => {
            let mut s = open(global, &session).await?;
            compaction::snapshot(&mut s, limit, out).await
        }
        Command::Replace {
            session,
            input,
            expect,
            start,
        } => {
            // Every item is checked before the component is even loaded.
            let input = import_export::read(&input, "replaced")?;
            let mut s = open(global, &session).await?;
            let r = compaction::Replace {
                input: &input,
                start,
                expect: expect.as_deref(),
            };
            compaction::replace(&mut s, &r, out).await
        }
        Command::Demo => {
            if global.encryption_key_file.is_some() {
                return Err(Failure::new(
                    Kind::Usage,
                    "demo runs its own store and takes no --encryption-key-file",
                ));
            }
            let host = load_host(global)?;
            let component = global
                .component
                .as_ref()
                .map_or_else(component::describe, |p| p.display().to_string());
            let text = demo::run(&host, &component, out)
                .await
                .map_err(|e| demo_failure(&e))?;
            out.raw(text.as_bytes())?;
            Ok(Kind::Success)
        }
    }
}

/// Compiles the component: `--component`, else the one embedded in this binary (behind the
/// embedded encryption middleware with `--encryption-key-file`).
fn load_host(global: &Global) -> Result<Host, Failure> {
    let encrypted = global.encryption_key_file.is_some();
    match &global.component {
        Some(path) => {
            let host = Host::from_file(path).map_err(|e| Failure::internal(&e))?;
            if encrypted {
                encryption::check_reads_config(&host, path)?;
            }
            Ok(host)
        }
        None if encrypted => component::embedded_encrypted(),
        None => component::embedded(),
    }
}

/// Loads the component and opens session `id` in a new instance.
async fn open(global: &Global, id: &str) -> Result<Session, Failure> {
    // The key file is read first: a bad one fails before anything is compiled.
    let key = encryption::key(global)?;
    Session::open(&load_host(global)?, global, id, key.as_ref()).await
}

/// A failed demo: the component's error keeps its exit code.
fn demo_failure(e: &anyhow::Error) -> Failure {
    let kind = e
        .downcast_ref::<CallError>()
        .and_then(CallError::session)
        .map_or(Kind::Other, Kind::of_session);
    Failure::new(kind, format!("the demo failed: {e:#}"))
}
