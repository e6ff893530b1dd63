//! Why a command failed: an exit [`Kind`], a message for people, and details for `--json`.

use std::io::Write as _;

use dapr_session_host::{CallError, SessionError};
use serde_json::{Map, Value, json};

use crate::connect::Target;
use crate::exit::Kind;

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    /// What kind of failure; decides the exit code.
    pub kind: Kind,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Extra fields of the JSON error (e.g. `item_index`, `imported`).
    pub details: Map<String, Value>,
    /// Print nothing (stdout was closed by its reader: not worth a message).
    silent: bool,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            details: Map::new(),
            silent: false,
        }
    }

    /// Adds a field to the JSON error.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// An I/O error while `doing` something (e.g. "reading items.json").
    pub fn io(doing: &str, e: &std::io::Error) -> Self {
        Failure::new(Kind::Other, format!("{doing}: {e}"))
    }

    /// A write to stdout failed; a closed pipe (`dapr-session get … | head`) ends the
    /// command quietly and successfully.
    pub fn stdout(e: &std::io::Error) -> Self {
        let mut failure = Failure::io("writing to stdout", e);
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            failure.kind = Kind::Success;
            failure.silent = true;
        }
        failure
    }

    /// The host failed (the component could not be loaded or instantiated).
    pub fn internal(e: &dyn std::error::Error) -> Self {
        Failure::new(Kind::Other, e.to_string())
    }

    /// A failed call into the component, explained for `target`.
    pub fn from_call(e: &CallError, target: &Target) -> Self {
        match e {
            CallError::Session(e) => Failure::from_session(e, target),
            CallError::Trap(e) => Failure::new(Kind::Other, format!("the component failed: {e:#}")),
        }
    }

    /// The component's typed error, explained for `target`.
    pub fn from_session(e: &SessionError, target: &Target) -> Self {
        let at = &target.endpoint;
        match e {
            SessionError::InvalidInput(ii) => match ii.item_index {
                Some(i) => Failure::new(
                    Kind::InvalidInput,
                    format!("invalid input: item {i}: {}", ii.message),
                )
                .with("item_index", i),
                None => Failure::new(Kind::InvalidInput, format!("invalid input: {}", ii.message)),
            },
            SessionError::Conflict(n) => Failure::new(
                Kind::Conflict,
                format!(
                    "gave up after {n} attempts: other writers kept changing the session; try again"
                ),
            )
            .with("attempts", *n),
            SessionError::Unavailable(m) if m.contains("not ready") => Failure::new(
                Kind::Unavailable,
                format!(
                    "the Dapr sidecar at {at} is not ready ({m}). Wait for daprd to finish starting, \
                     or set --endpoint or DAPR_HTTP_ENDPOINT/DAPR_HTTP_PORT."
                ),
            ),
            SessionError::Unavailable(m) => Failure::new(
                Kind::Unavailable,
                format!(
                    "cannot reach the Dapr sidecar at {at} ({m}). Is daprd running? \
                     Set --endpoint or DAPR_HTTP_ENDPOINT/DAPR_HTTP_PORT."
                ),
            ),
            SessionError::Timeout => Failure::new(
                Kind::Timeout,
                format!(
                    "the Dapr sidecar at {at} did not answer within {} ms. Is daprd overloaded? \
                     Raise --timeout-ms to wait longer.",
                    target.timeout_ms
                ),
            ),
            SessionError::Unauthorized if target.token_given => Failure::new(
                Kind::Unauthorized,
                format!(
                    "the Dapr sidecar at {at} refused the API token (HTTP 401). \
                     Pass the token daprd expects with --token or DAPR_API_TOKEN."
                ),
            ),
            SessionError::Unauthorized => Failure::new(
                Kind::Unauthorized,
                format!(
                    "the Dapr sidecar at {at} requires an API token (HTTP 401). \
                     Pass it with --token or DAPR_API_TOKEN."
                ),
            ),
            SessionError::StoreNotFound(m) => Failure::new(
                Kind::StoreNotFound,
                format!(
                    "the Dapr sidecar at {at} has no state store named '{}' ({m}). \
                     Name an existing state store component with --store.",
                    target.store
                ),
            )
            .with("store", target.store.clone()),
            SessionError::Corrupt(m) => Failure::new(
                Kind::Corrupt,
                format!(
                    "the session's stored data is not in the expected shape (left untouched): {m}"
                ),
            ),
            SessionError::Changed => Failure::new(
                Kind::Changed,
                "the session changed since the expected version; read it again".to_string(),
            ),
            SessionError::Interrupted(m) => Failure::new(
                Kind::Interrupted,
                format!(
                    "the connection to the Dapr sidecar at {at} broke after the request was sent \
                     ({m}); a write may have been applied: read the session before retrying"
                ),
            ),
            SessionError::Unsupported(m) => Failure::new(
                Kind::Unsupported,
                format!(
                    "the state store '{}' cannot hold this layout: {m}",
                    target.store
                ),
            ),
            SessionError::TooManyItems(n) => Failure::new(
                Kind::TooManyItems,
                format!("the session holds {n} items, more than one read returns; pass --limit"),
            )
            .with("items", *n),
            SessionError::Protocol(m) => Failure::new(
                Kind::Protocol,
                format!("the sidecar's answer was not understood: {m}"),
            ),
            SessionError::Internal(m) => Failure::new(
                Kind::Internal,
                format!("the component hit a bug (please report it): {m}"),
            ),
            SessionError::Store(s) => Failure::new(
                Kind::Store,
                format!(
                    "the state store reported an error: HTTP {} {}: {}",
                    s.status, s.error_code, s.message
                ),
            )
            .with("status", s.status)
            .with("error_code", s.error_code.clone()),
        }
    }

    /// Prints the failure on stderr (as JSON when `json`) and returns its exit code.
    pub fn report(&self, json: bool) -> std::process::ExitCode {
        if !self.silent {
            let text = if json {
                let mut fields = Map::new();
                fields.insert("error".into(), json!(self.kind.name()));
                fields.insert("message".into(), json!(self.message));
                fields.insert("exit_code".into(), json!(self.kind.code()));
                fields.extend(self.details.clone());
                Value::Object(fields).to_string()
            } else {
                format!("error: {}", self.message)
            };
            // Nothing better to do if stderr is gone too.
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
        self.kind.exit_code()
    }
}

#[cfg(test)]
mod tests {
    use dapr_session_host::{InvalidInput, SessionError, StoreError};

    use super::Failure;
    use crate::connect::Target;
    use crate::exit::Kind;

    fn target(token_given: bool) -> Target {
        Target {
            endpoint: "http://127.0.0.1:3500".into(),
            store: "mystore".into(),
            token_given,
            timeout_ms: 1500,
        }
    }

    #[test]
    fn every_session_error_has_its_kind_and_a_hint() {
        let cases = [
            (
                SessionError::InvalidInput(InvalidInput {
                    item_index: Some(4),
                    message: "bad".into(),
                }),
                Kind::InvalidInput,
                "item 4: bad",
            ),
            (
                SessionError::Conflict(64),
                Kind::Conflict,
                "after 64 attempts",
            ),
            (
                SessionError::Unavailable("connection refused".into()),
                Kind::Unavailable,
                "cannot reach the Dapr sidecar at http://127.0.0.1:3500 (connection refused)",
            ),
            (
                SessionError::Unavailable("sidecar not ready (HTTP 500): x".into()),
                Kind::Unavailable,
                "is not ready",
            ),
            (SessionError::Timeout, Kind::Timeout, "within 1500 ms"),
            (
                SessionError::Unauthorized,
                Kind::Unauthorized,
                "requires an API token",
            ),
            (
                SessionError::StoreNotFound("state store mystore is not found".into()),
                Kind::StoreNotFound,
                "no state store named 'mystore'",
            ),
            (
                SessionError::Corrupt("h".into()),
                Kind::Corrupt,
                "left untouched",
            ),
            (
                SessionError::Store(StoreError {
                    status: 500,
                    error_code: "ERR_STATE_SAVE".into(),
                    message: "boom".into(),
                }),
                Kind::Store,
                "HTTP 500 ERR_STATE_SAVE: boom",
            ),
        ];
        for (error, kind, hint) in cases {
            let f = Failure::from_session(&error, &target(false));
            assert_eq!(f.kind, kind, "{error:?}");
            assert_eq!(Kind::of_session(&error), kind, "{error:?}");
            assert!(f.message.contains(hint), "{error:?}: {}", f.message);
        }
        let f = Failure::from_session(&SessionError::Unauthorized, &target(true));
        assert!(f.message.contains("refused the API token"), "{}", f.message);
    }
}
