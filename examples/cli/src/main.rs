//! `dapr-session`: a command-line host for the dapr-session component.
//!
//! Runs the component in wasmtime and calls its `session` interface against a Dapr sidecar:
//! `get`, `add`, `pop`, `clear`, `metadata`, `ping`, and `demo`, which starts the embedded
//! Dapr-compatible store and runs a multi-turn conversation through the component.

mod demo;
mod output;

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use dapr_session_host_tests::host::{
    CallError, Config, Consistency, Host, InstanceOptions, Layout,
};

use crate::output::Output;

/// Conversation memory for AI agents, in a Dapr state store, through a WebAssembly component.
#[derive(Parser)]
#[command(name = "dapr-session", version, propagate_version = true)]
struct Cli {
    /// Dapr sidecar base URL. Default: the component's own (DAPR_HTTP_ENDPOINT, then
    /// DAPR_HTTP_PORT, then http://127.0.0.1:3500).
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// Name of the Dapr state store component.
    #[arg(long, global = true, default_value = "statestore")]
    store: String,
    /// Dapr API token. Default: DAPR_API_TOKEN.
    #[arg(long, global = true, env = "DAPR_API_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Tenant key prefix.
    #[arg(long, global = true)]
    prefix: Option<String>,
    /// Time to live of the session's data, in seconds.
    #[arg(long, global = true)]
    ttl: Option<u32>,
    /// Consistency of reads and writes.
    #[arg(long, global = true, value_enum)]
    consistency: Option<ConsistencyArg>,
    /// Timeout of each request to the sidecar, in milliseconds.
    #[arg(long, global = true)]
    timeout_ms: Option<u32>,
    /// Storage layout: `log` (default) or `compat` (shared with the Python DaprSession).
    #[arg(long, global = true, value_enum)]
    layout: Option<LayoutArg>,
    /// The component to run. Default: the one this build compiled.
    #[arg(long, global = true)]
    component: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LayoutArg {
    Log,
    Compat,
}

#[derive(Clone, Copy, ValueEnum)]
enum ConsistencyArg {
    Eventual,
    Strong,
}

#[derive(Subcommand)]
enum Command {
    /// Print the newest items of a session, oldest first, one JSON object per line.
    Get {
        /// Session id.
        session: String,
        /// How many of the newest items; all when omitted.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Append items to a session as one batch.
    Add {
        /// Session id.
        session: String,
        /// Items, each a JSON object. `-` reads stdin: a JSON array, or one object per line.
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// Remove the newest item of a session and print it.
    Pop {
        /// Session id.
        session: String,
    },
    /// Delete every item of a session.
    Clear {
        /// Session id.
        session: String,
    },
    /// Print a session's created/updated timestamps.
    Metadata {
        /// Session id.
        session: String,
    },
    /// Check that the sidecar is ready and has the state store.
    Ping,
    /// Start an embedded Dapr-compatible store and run a conversation through the component,
    /// printing what each step stored.
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Output::new(cli.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return out.internal(&anyhow::anyhow!("cannot start the async runtime: {e}")),
    };
    runtime.block_on(run(cli, out))
}

async fn run(cli: Cli, out: Output) -> ExitCode {
    let host = match &cli.component {
        Some(path) => Host::from_file(path),
        None => Host::new(),
    };
    let host = match host {
        Ok(h) => h,
        Err(e) => return out.internal(&e),
    };
    if matches!(cli.command, Command::Demo) {
        return match demo::run(&host, &out).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => out.internal(&e),
        };
    }
    // Let the component apply its own defaults from the same environment Dapr apps use.
    let env = ["DAPR_HTTP_ENDPOINT", "DAPR_HTTP_PORT"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let mut inst = match host
        .instance_with(InstanceOptions {
            env,
            ..Default::default()
        })
        .await
    {
        Ok(i) => i,
        Err(e) => return out.internal(&e),
    };
    let config = Config {
        store_name: cli.store.clone(),
        endpoint: cli.endpoint.clone(),
        api_token: cli.token.clone(),
        ttl_seconds: cli.ttl,
        consistency: cli.consistency.map(|c| match c {
            ConsistencyArg::Eventual => Consistency::Eventual,
            ConsistencyArg::Strong => Consistency::Strong,
        }),
        key_prefix: cli.prefix.clone(),
        default_limit: None,
        timeout_ms: cli.timeout_ms,
        layout: cli.layout.map(|l| match l {
            LayoutArg::Log => Layout::Log,
            LayoutArg::Compat => Layout::Compat,
        }),
    };
    let result = match cli.command {
        Command::Get { session, limit } => match inst.open(&session, &config).await {
            Ok(s) => inst
                .get_items(s, limit)
                .await
                .map(|items| out.items(&items)),
            Err(e) => Err(e),
        },
        Command::Add { session, items } => {
            let items = match read_items(items) {
                Ok(i) => i,
                Err(e) => return out.usage(&e),
            };
            match inst.open(&session, &config).await {
                Ok(s) => inst
                    .add_items(s, &items)
                    .await
                    .map(|()| out.added(items.len())),
                Err(e) => Err(e),
            }
        }
        Command::Pop { session } => match inst.open(&session, &config).await {
            Ok(s) => inst
                .pop_item(s)
                .await
                .map(|item| out.popped(item.as_deref())),
            Err(e) => Err(e),
        },
        Command::Clear { session } => match inst.open(&session, &config).await {
            Ok(s) => inst.clear(s).await.map(|()| out.done("cleared")),
            Err(e) => Err(e),
        },
        Command::Metadata { session } => match inst.open(&session, &config).await {
            Ok(s) => inst.metadata(s).await.map(|m| out.metadata(&m)),
            Err(e) => Err(e),
        },
        Command::Ping => match inst.open("ping", &config).await {
            Ok(s) => inst
                .ping(s)
                .await
                .map(|()| out.done("the sidecar is ready and has the state store")),
            Err(e) => Err(e),
        },
        Command::Demo => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CallError::Session(e)) => out.session_error(&e),
        Err(CallError::Trap(e)) => out.internal(&e),
    }
}

/// The items of `add`: each argument is one JSON object, and `-` reads stdin.
fn read_items(args: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut items = Vec::new();
    for arg in args {
        if arg != "-" {
            items.push(arg);
            continue;
        }
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        match serde_json::from_str::<Vec<serde_json::Value>>(&input) {
            Ok(array) => items.extend(array.iter().map(|v| v.to_string())),
            Err(_) => items.extend(
                input
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(str::to_string),
            ),
        }
    }
    Ok(items)
}
