//! The error type of every session operation.
//!
//! [`Error`] mirrors the WIT `error` variant one to one; `export.rs` converts it at the boundary.

use crate::dapr::DaprError;

/// Why a session operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A caller-supplied argument was rejected before anything was sent.
    #[error("invalid input{}: {message}", item_index.map(|i| format!(" (item {i})")).unwrap_or_default())]
    InvalidInput {
        /// Index of the offending item in a batch, if an item is at fault.
        item_index: Option<u32>,
        /// What is wrong.
        message: String,
    },
    /// Concurrent writers kept winning; the operation gave up after this many attempts.
    #[error("gave up after {0} attempts: other writers kept changing the session")]
    Conflict(u32),
    /// The session was written since the expected version; nothing was written.
    #[error("the session changed since the expected version")]
    Changed,
    /// The sidecar could not be reached (nothing was sent) or is not ready.
    #[error("sidecar unavailable: {0}")]
    Unavailable(String),
    /// A request exceeded the configured timeout; a write may have been applied.
    #[error("request to the sidecar timed out")]
    Timeout,
    /// The connection broke after a request was sent; a write may have been applied.
    #[error("connection to the sidecar broke: {0}")]
    Interrupted(String),
    /// The sidecar refused the API token.
    #[error("the sidecar refused the API token")]
    Unauthorized,
    /// The sidecar has no state store of this name.
    #[error("state store not found: {0}")]
    StoreNotFound(String),
    /// The state store lacks a feature the layout needs; nothing was written.
    #[error("state store unsupported: {0}")]
    Unsupported(String),
    /// Stored data is not in the expected shape; nothing was written.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The session holds more items (this many) than one read returns.
    #[error("the session holds {0} items, more than one get-items returns: pass a limit")]
    TooManyItems(u64),
    /// The sidecar answered, but not in Dapr's format, or with more bytes than allowed.
    #[error("unexpected answer from the sidecar: {0}")]
    Protocol(String),
    /// Any other error the sidecar reported.
    #[error("state store error {status} {code}: {message}")]
    Store {
        /// HTTP status.
        status: u16,
        /// Dapr `errorCode`, empty if none.
        code: String,
        /// Dapr's message.
        message: String,
    },
    /// A bug in this component.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An invalid argument not tied to one item.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput {
            item_index: None,
            message: message.into(),
        }
    }

    /// An invalid item at `index` of a batch.
    pub fn invalid_item(index: usize, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            item_index: Some(u32::try_from(index).unwrap_or(u32::MAX)),
            message: message.into(),
        }
    }

    /// A bug: something this component made is not what it should be.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }
}

impl From<DaprError> for Error {
    fn from(e: DaprError) -> Self {
        match e {
            DaprError::Timeout => Error::Timeout,
            DaprError::Unauthorized => Error::Unauthorized,
            DaprError::Unreachable(m) => Error::Unavailable(m),
            DaprError::Interrupted(m) => Error::Interrupted(m),
            DaprError::Protocol(m) => Error::Protocol(m),
            DaprError::Status {
                status,
                code,
                message,
            } => {
                if code == "ERR_STATE_STORE_NOT_FOUND" || code == "ERR_STATE_STORE_NOT_CONFIGURED" {
                    Error::StoreNotFound(message)
                } else if code == "ERR_HEALTH_NOT_READY" || status == 503 {
                    Error::Unavailable(message)
                } else {
                    Error::Store {
                        status,
                        code,
                        message,
                    }
                }
            }
        }
    }
}

/// Result of a session operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
