//! What the CLI prints, as text or JSON, and the exit code of each outcome.

use std::process::ExitCode;

use dapr_session_host_tests::host::{SessionError, SessionMetadata};
use serde_json::{Value, json};

/// Exit code when the component refused an argument.
pub const EXIT_INVALID: u8 = 2;
/// Exit code when the sidecar is unreachable, not ready, or timed out.
pub const EXIT_UNAVAILABLE: u8 = 3;
/// Exit code when the sidecar refused the API token.
pub const EXIT_UNAUTHORIZED: u8 = 4;
/// Exit code for any other failure reported by the store.
pub const EXIT_FAILED: u8 = 1;
/// Exit code when the host itself failed (component not loadable, trap).
pub const EXIT_INTERNAL: u8 = 70;

/// Prints results in the chosen format.
pub struct Output {
    json: bool,
}

impl Output {
    /// Text output, or JSON when `json`.
    pub fn new(json: bool) -> Self {
        Output { json }
    }

    /// Whether output is JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Items, one JSON object per line (or a JSON array).
    pub fn items(&self, items: &[String]) {
        if self.json {
            let values: Vec<Value> = items
                .iter()
                .map(|i| serde_json::from_str(i).unwrap_or(Value::Null))
                .collect();
            println!("{}", Value::Array(values));
        } else {
            for item in items {
                println!("{item}");
            }
        }
    }

    /// The count of items added.
    pub fn added(&self, n: usize) {
        if self.json {
            println!("{}", json!({"added": n}));
        } else {
            println!("added {n} item{}", if n == 1 { "" } else { "s" });
        }
    }

    /// A popped item, or nothing.
    pub fn popped(&self, item: Option<&str>) {
        match (self.json, item) {
            (true, Some(i)) => println!(
                "{}",
                json!({"popped": serde_json::from_str::<Value>(i).unwrap_or(Value::Null)})
            ),
            (true, None) => println!("{}", json!({"popped": null})),
            (false, Some(i)) => println!("{i}"),
            (false, None) => eprintln!("the session is empty"),
        }
    }

    /// Session metadata.
    pub fn metadata(&self, m: &SessionMetadata) {
        if self.json {
            println!(
                "{}",
                json!({"session_id": m.session_id, "created_at_ms": m.created_at, "updated_at_ms": m.updated_at})
            );
        } else {
            println!("session    {}", m.session_id);
            println!(
                "created-at {}",
                m.created_at.map_or("-".to_string(), |t| t.to_string())
            );
            println!(
                "updated-at {}",
                m.updated_at.map_or("-".to_string(), |t| t.to_string())
            );
        }
    }

    /// A short confirmation.
    pub fn done(&self, what: &str) {
        if self.json {
            println!("{}", json!({"ok": true}));
        } else {
            println!("{what}");
        }
    }

    /// A bad command line; exit code 2.
    pub fn usage(&self, e: &anyhow::Error) -> ExitCode {
        self.fail("usage", &format!("{e:#}"), EXIT_INVALID)
    }

    /// A host failure; exit code 70.
    pub fn internal(&self, e: &anyhow::Error) -> ExitCode {
        self.fail("internal", &format!("{e:#}"), EXIT_INTERNAL)
    }

    /// The component's error, with its kind and a fitting exit code.
    pub fn session_error(&self, e: &SessionError) -> ExitCode {
        let (kind, message, code) = match e {
            SessionError::InvalidInput(ii) => (
                "invalid-input",
                match ii.item_index {
                    Some(i) => format!("item {i}: {}", ii.message),
                    None => ii.message.clone(),
                },
                EXIT_INVALID,
            ),
            SessionError::Conflict(n) => (
                "conflict",
                format!("other writers kept winning; gave up after {n} attempts"),
                EXIT_FAILED,
            ),
            SessionError::Unavailable(m) => (
                "unavailable",
                format!(
                    "the Dapr sidecar is not reachable or not ready: {m}\n  is daprd running? check --endpoint or DAPR_HTTP_ENDPOINT / DAPR_HTTP_PORT"
                ),
                EXIT_UNAVAILABLE,
            ),
            SessionError::Timeout => (
                "timeout",
                "the Dapr sidecar did not answer in time (see --timeout-ms)".into(),
                EXIT_UNAVAILABLE,
            ),
            SessionError::Unauthorized => (
                "unauthorized",
                "the sidecar refused the API token (see --token / DAPR_API_TOKEN)".into(),
                EXIT_UNAUTHORIZED,
            ),
            SessionError::StoreNotFound(m) => {
                ("store-not-found", format!("{m} (see --store)"), EXIT_FAILED)
            }
            SessionError::Corrupt(m) => ("corrupt", m.clone(), EXIT_FAILED),
            SessionError::Store(s) => (
                "store",
                format!("HTTP {} {}: {}", s.status, s.error_code, s.message),
                EXIT_FAILED,
            ),
        };
        self.fail(kind, &message, code)
    }

    fn fail(&self, kind: &str, message: &str, code: u8) -> ExitCode {
        if self.json {
            println!("{}", json!({"error": {"kind": kind, "message": message}}));
        } else {
            eprintln!("error ({kind}): {message}");
        }
        ExitCode::from(code)
    }
}
