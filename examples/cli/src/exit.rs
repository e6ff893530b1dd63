//! Exit codes of `dapr-session`: one per outcome a script may want to tell apart.
//!
//! The codes are part of the command-line interface: they never change meaning. [`HELP`] is the
//! table `--help` shows; a unit test keeps it in step with [`Kind::code`].

use std::process::ExitCode;

use dapr_session_host::SessionError;

/// How a run ended, each kind with its own exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The command did what was asked.
    Success,
    /// Anything not listed below: the component could not run, a file could not be read or
    /// written.
    Other,
    /// The command line was wrong (clap's own code).
    Usage,
    /// Nothing to do: `pop` found the session empty.
    Empty,
    /// An item, the session id or an option value was rejected.
    InvalidInput,
    /// Other writers kept changing the session; the component gave up.
    Conflict,
    /// The sidecar is unreachable or not ready.
    Unavailable,
    /// A request to the sidecar took longer than `--timeout-ms`.
    Timeout,
    /// The sidecar refused the API token.
    Unauthorized,
    /// The sidecar has no state store of that name.
    StoreNotFound,
    /// The session's stored data is not in the expected shape.
    Corrupt,
    /// Any other error the state store or sidecar reported.
    Store,
    /// The session changed since the version `replace --expect` named.
    Changed,
    /// The connection broke after a request was sent: a write may have been applied.
    Interrupted,
    /// The state store lacks a feature the layout needs.
    Unsupported,
    /// The session holds more items than one read returns.
    TooManyItems,
    /// The sidecar's answer was not in Dapr's format.
    Protocol,
    /// A bug in the component.
    Internal,
}

impl Kind {
    /// Every kind, in exit-code order.
    #[cfg(test)]
    pub const ALL: [Kind; 18] = [
        Kind::Success,
        Kind::Other,
        Kind::Usage,
        Kind::Empty,
        Kind::InvalidInput,
        Kind::Conflict,
        Kind::Unavailable,
        Kind::Timeout,
        Kind::Unauthorized,
        Kind::StoreNotFound,
        Kind::Corrupt,
        Kind::Store,
        Kind::Changed,
        Kind::Interrupted,
        Kind::Unsupported,
        Kind::TooManyItems,
        Kind::Protocol,
        Kind::Internal,
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Kind::Success => 0,
            Kind::Other => 1,
            Kind::Usage => 2,
            Kind::Empty => 3,
            Kind::InvalidInput => 4,
            Kind::Conflict => 5,
            Kind::Unavailable => 6,
            Kind::Timeout => 7,
            Kind::Unauthorized => 8,
            Kind::StoreNotFound => 9,
            Kind::Corrupt => 10,
            Kind::Store => 11,
            Kind::Changed => 12,
            Kind::Interrupted => 13,
            Kind::Unsupported => 14,
            Kind::TooManyItems => 15,
            Kind::Protocol => 16,
            Kind::Internal => 17,
        }
    }

    /// The name used as `"error"` in JSON error output.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::Other => "failed",
            Kind::Usage => "usage",
            Kind::Empty => "empty",
            Kind::InvalidInput => "invalid-input",
            Kind::Conflict => "conflict",
            Kind::Unavailable => "unavailable",
            Kind::Timeout => "timeout",
            Kind::Unauthorized => "unauthorized",
            Kind::StoreNotFound => "store-not-found",
            Kind::Corrupt => "corrupt",
            Kind::Store => "store",
            Kind::Changed => "changed",
            Kind::Interrupted => "interrupted",
            Kind::Unsupported => "unsupported",
            Kind::TooManyItems => "too-many-items",
            Kind::Protocol => "protocol",
            Kind::Internal => "internal",
        }
    }

    /// The kind of a component error.
    pub fn of_session(e: &SessionError) -> Kind {
        match e {
            SessionError::InvalidInput(_) => Kind::InvalidInput,
            SessionError::Conflict(_) => Kind::Conflict,
            SessionError::Unavailable(_) => Kind::Unavailable,
            SessionError::Timeout => Kind::Timeout,
            SessionError::Unauthorized => Kind::Unauthorized,
            SessionError::StoreNotFound(_) => Kind::StoreNotFound,
            SessionError::Corrupt(_) => Kind::Corrupt,
            SessionError::Store(_) => Kind::Store,
            SessionError::Changed => Kind::Changed,
            SessionError::Interrupted(_) => Kind::Interrupted,
            SessionError::Unsupported(_) => Kind::Unsupported,
            SessionError::TooManyItems(_) => Kind::TooManyItems,
            SessionError::Protocol(_) => Kind::Protocol,
            SessionError::Internal(_) => Kind::Internal,
        }
    }

    /// The process exit code, as the `main` return value.
    pub fn exit_code(self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// The exit-status section of the top-level help.
pub const HELP: &str = "\
Exit status:
  0   success
  1   other failure (the component could not run, a file could not be read or written)
  2   usage error: bad command line
  3   empty: pop found no item
  4   invalid-input: a bad item, session id or option value (nothing of it was written)
  5   conflict: other writers kept changing the session; gave up
  6   unavailable: the Dapr sidecar is unreachable or not ready
  7   timeout: a request took longer than --timeout-ms
  8   unauthorized: the sidecar refused the API token
  9   store-not-found: the sidecar has no state store named --store
  10  corrupt: stored data is not in the expected shape (left untouched)
  11  store: any other error the state store reported
  12  changed: the session changed since the version given to replace --expect
  13  interrupted: the connection broke after a request was sent (a write may have landed)
  14  unsupported: the state store lacks a feature the layout needs (etags)
  15  too-many-items: the session holds more items than one read returns; pass --limit
  16  protocol: the sidecar's answer was not in Dapr's format, or too large
  17  internal: a bug in the component; please report it
With --json, errors are printed on stderr as {\"error\": NAME, \"message\": ..., \"exit_code\": N}.";

#[cfg(test)]
mod tests {
    use super::{HELP, Kind};

    #[test]
    fn help_lists_every_code_with_its_name() {
        for kind in Kind::ALL {
            let row = format!("\n  {:<4}", kind.code());
            let at = HELP.find(&row).map(|i| i + row.len());
            let rest = at.and_then(|i| HELP.get(i..)).unwrap_or_default();
            let named = match kind {
                Kind::Success | Kind::Other | Kind::Usage => true,
                _ => rest.starts_with(kind.name()),
            };
            assert!(
                at.is_some() && named,
                "HELP lacks the row of {kind:?} ({})",
                kind.code()
            );
        }
    }

    #[test]
    fn codes_are_distinct_and_in_order() {
        for (i, kind) in Kind::ALL.iter().enumerate() {
            assert_eq!(usize::from(kind.code()), i);
        }
    }
}
