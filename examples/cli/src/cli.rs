//! The command line: global options, subcommands and their help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;

/// Conversation memory for AI agents, kept in a Dapr state store by the dapr-session
/// WebAssembly component.
///
/// Every command runs the component in wasmtime and talks to the Dapr sidecar (daprd) over
/// Dapr's HTTP state API. Items are JSON objects (OpenAI Responses input items).
#[derive(Debug, Parser)]
#[command(
    name = "dapr-session",
    version = crate::component::VERSION_LINE,
    propagate_version = true,
    after_help = exit::HELP
)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Dapr sidecar URL [default: $DAPR_HTTP_ENDPOINT, else http://127.0.0.1:$DAPR_HTTP_PORT,
    /// else http://127.0.0.1:3500]
    #[arg(long, global = true, value_name = "URL", help_heading = "Sidecar")]
    pub endpoint: Option<String>,
    /// Name of the Dapr state store component
    #[arg(
        long,
        global = true,
        value_name = "NAME",
        default_value = "statestore",
        help_heading = "Sidecar"
    )]
    pub store: String,
    /// Dapr API token, sent as dapr-api-token (never printed)
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "DAPR_API_TOKEN",
        hide_env_values = true,
        help_heading = "Sidecar"
    )]
    pub token: Option<String>,
    /// Timeout of each request to the sidecar, in milliseconds [default: 10000]
    #[arg(long, global = true, value_name = "MS", help_heading = "Sidecar")]
    pub timeout_ms: Option<u32>,
    /// Tenant prefix: keys become PREFIX:SESSION:...
    #[arg(long, global = true, value_name = "PREFIX", help_heading = "Storage")]
    pub prefix: Option<String>,
    /// Expire the session's data this many seconds after its last write
    #[arg(long, global = true, value_name = "SECONDS", help_heading = "Storage")]
    pub ttl: Option<u32>,
    /// Keep at most this many items: every write (add, pop, import, replace) drops the oldest
    /// beyond it [default: no bound]
    #[arg(long, global = true, value_name = "N", help_heading = "Storage")]
    pub max_items: Option<u32>,
    /// Consistency of reads and writes [default: eventual]
    #[arg(long, global = true, value_enum, help_heading = "Storage")]
    pub consistency: Option<ConsistencyArg>,
    /// Storage layout; compat is the Python DaprSession's [default: log]
    #[arg(long, global = true, value_enum, help_heading = "Storage")]
    pub layout: Option<LayoutArg>,
    /// Print results as JSON on stdout, and errors as JSON on stderr
    #[arg(long, global = true, help_heading = "Output")]
    pub json: bool,
    /// Print no status lines or summaries on stderr (errors are still printed)
    #[arg(short, long, global = true, help_heading = "Output")]
    pub quiet: bool,
    /// Store items encrypted (the Python EncryptedSession format) with the key in FILE (one
    /// trailing newline ignored; the key is never printed). Runs the embedded component behind
    /// the embedded encryption middleware, or a --component that imports wasi:config/store
    #[arg(long, global = true, value_name = "FILE", help_heading = "Encryption")]
    pub encryption_key_file: Option<PathBuf>,
    /// The component to run [default: the one embedded in this binary]
    #[arg(long, global = true, value_name = "WASM", help_heading = "Advanced")]
    pub component: Option<PathBuf>,
}

/// `--layout`. (The variants have no doc comments: clap would print them, one paragraph
/// each, and switch `--help` to its long layout.)
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    // The component's own layout: a head and immutable chunks, each item stored once.
    Log,
    // The Python DaprSession layout: {id}:messages and {id}:metadata.
    Compat,
}

/// `--consistency`. (The variants have no doc comments, as for [`LayoutArg`].)
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ConsistencyArg {
    // Dapr's `eventual`.
    Eventual,
    // Dapr's `strong`.
    Strong,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a session's newest items, oldest first (JSON Lines; a JSON array with --json)
    #[command(after_help = "Example:\n  dapr-session get user-123 --limit 20")]
    Get {
        /// Session id
        session: String,
        /// Print only the newest N items [default: all]
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Append items to a session as one atomic batch
    #[command(after_help = "Examples:\n  \
        dapr-session add user-123 '{\"role\":\"user\",\"content\":\"hi\"}'\n  \
        cat items.jsonl | dapr-session add user-123 -")]
    Add {
        /// Session id
        session: String,
        /// Items, each a JSON object; `-` reads stdin (a JSON array or JSON Lines)
        #[arg(required = true, value_name = "ITEM")]
        items: Vec<String>,
    },
    /// Remove a session's newest item and print it (exit status 3 when the session is empty)
    Pop {
        /// Session id
        session: String,
    },
    /// Delete every item of a session and its timestamps
    Clear {
        /// Session id
        session: String,
    },
    /// Print a session's created-at and updated-at times
    Metadata {
        /// Session id
        session: String,
    },
    /// Check that the sidecar is ready and has the state store
    Ping,
    /// Append items from a file (a JSON array or JSON Lines) to a session, in batches
    #[command(after_help = "\
Every item is checked (each must be a JSON object) before anything is written; the first bad one
is reported by index (0-based) and line. If a batch fails, the items of the batches before it stay
stored and the error says how many they are.

Example:
  dapr-session import user-123 history.jsonl --batch-size 500")]
    Import {
        /// Session id
        session: String,
        /// File to read, or `-` for stdin
        #[arg(value_name = "FILE|-")]
        input: PathBuf,
        /// Items per add-items call; each batch is stored atomically
        #[arg(long, value_name = "N", default_value_t = 100,
              value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: u32,
    },
    /// Write every item of a session as a JSON array (or JSON Lines) to stdout or a file
    #[command(after_help = "\
With --out, the file is replaced atomically (written to a temporary file, then renamed).
With --json and --out, a JSON summary is printed on stdout.

Example:
  dapr-session export user-123 --jsonl --out history.jsonl")]
    Export {
        /// Session id
        session: String,
        /// Write to FILE instead of stdout
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Write JSON Lines (one item per line) instead of a JSON array
        #[arg(long)]
        jsonl: bool,
    },
    /// Print a session's newest items (JSON Lines) with their position and the session's
    /// version (on stderr; all three as one JSON object with --json)
    #[command(after_help = "\
The version is what `replace --expect` takes: the replacement is written only if the session is
still at that version. The position of the first item printed is what `replace --start` takes to
replace exactly the items printed.

Examples:
  dapr-session snapshot user-123 --limit 20
  dapr-session snapshot user-123 --json    # {\"session\", \"version\", \"first\", \"items\": [...]}")]
    Snapshot {
        /// Session id
        session: String,
        /// Print only the newest N items [default: all]
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Replace a session's history (or its items from --start on) with the items of a file,
    /// atomically
    #[command(after_help = "\
Every item is checked (each must be a JSON object) before anything is written; the first bad one
is reported by index (0-based) and line. The replacement is one atomic write: readers see the old
history or the new one, never a mix. With --expect, nothing is written unless the session is still
at that version (from `dapr-session snapshot`); otherwise the exit status is 12 (changed). With
--start, the items before that position are kept as they are.

Example (compaction: replace the 20 newest items with a summary, unless the session moved on):
  dapr-session snapshot user-123 --limit 20 --json > window.json
  dapr-session replace user-123 summary.jsonl \\
      --start \"$(jq .first window.json)\" --expect \"$(jq -r .version window.json)\"")]
    Replace {
        /// Session id
        session: String,
        /// File holding the new items (a JSON array or JSON Lines), or `-` for stdin
        #[arg(value_name = "FILE|-")]
        input: PathBuf,
        /// Write only if the session is still at this version (from `snapshot`)
        #[arg(long, value_name = "VERSION")]
        expect: Option<String>,
        /// Keep the items before this position; replace only those from it on [default: 0]
        #[arg(long, value_name = "POSITION")]
        start: Option<u64>,
    },
    /// Start an embedded Dapr-compatible store and run a conversation through the component,
    /// printing what each step stored
    Demo,
}
