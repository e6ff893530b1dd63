//! Errors: the session interface's `error` variant (0.2.0), which the middleware both receives
//! from the session it wraps and returns to its caller.

/// Why an operation failed (the WIT `error` variant, case for case).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad session id, config or item; nothing was sent or written.
    #[error("invalid input{}: {message}", item_index.map(|i| format!(" (item {i})")).unwrap_or_default())]
    InvalidInput {
        /// Index of the offending item in a batch, when an item is at fault.
        item_index: Option<u32>,
        /// What is wrong.
        message: String,
    },
    /// Other writers kept changing the session; gave up after this many attempts.
    #[error("conflict: gave up after {0} attempts")]
    Conflict(u32),
    /// The session changed since the expected version was read; nothing was written.
    #[error("the session changed since it was read")]
    Changed,
    /// The sidecar (or the configuration store) could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A request took longer than the timeout; a write may have been applied.
    #[error("timeout")]
    Timeout,
    /// The connection broke after a request was sent; a write may have been applied.
    #[error("interrupted: {0}")]
    Interrupted(String),
    /// The sidecar refused the API token.
    #[error("unauthorized")]
    Unauthorized,
    /// The sidecar has no state store of this name.
    #[error("no state store named {0}")]
    StoreNotFound(String),
    /// The state store lacks a feature the layout needs.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Stored data is not in the expected shape; it was left untouched.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// More items than one read may scan (the count scanned); pass a limit or raise the bound.
    #[error("too many items: {0}")]
    TooManyItems(u64),
    /// The sidecar answered, but not in Dapr's format.
    #[error("protocol: {0}")]
    Protocol(String),
    /// Any other failure the sidecar reported.
    #[error("store error {status} {error_code}: {message}")]
    Store {
        /// HTTP status.
        status: u16,
        /// Dapr's `errorCode`.
        error_code: String,
        /// Dapr's message.
        message: String,
    },
    /// A bug.
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// An `invalid-input` error about the whole call.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            item_index: None,
            message: message.into(),
        }
    }

    /// An `invalid-input` error naming one item of a batch.
    pub fn invalid_item(index: usize, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            item_index: Some(u32::try_from(index).unwrap_or(u32::MAX)),
            message: message.into(),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
